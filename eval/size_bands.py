"""mAP per object size: where a detector loses its AP (COCO's small / medium / large, by VOC's rules).

For a band ``low <= shorter side < high`` (the object box's shorter side in pixels), the objects
outside the band are treated like VOC's difficult ones: a detection on one of them is neither a
true nor a false positive, and they are not missed. AP is then the devkit's
(``eval.voc_ap.evaluate_voc``). VOC has no size for a detection on nothing, so those count as false
positives in every band: compare one band across detectors rather than read it as an absolute.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from data.boxes import as_tensor, shorter_side
from data.errors import InputError
from data.records import Detections, ImageRecord
from eval.voc_ap import evaluate_voc


@dataclass(frozen=True)
class SizeBand:
    """mAP over the objects whose shorter side is in [low, high) pixels."""

    low: float
    high: float
    num_objects: int  # non-difficult objects in the band
    map: float  # NaN when no class has an object in the band


def map_by_size(detections: Mapping[str, Detections], records: Sequence[ImageRecord], classes: Sequence[str],
                edges: Sequence[float], metric: str = "voc07") -> list[SizeBand]:
    """One :class:`SizeBand` per interval of ``[0, *edges, inf)``.

    Args:
        detections: image_id -> Detections (0-based boxes, class ids into ``classes``).
        records: the split's ground truth (difficult objects stay ignored in every band).
        edges: increasing inner band edges in pixels, e.g. (32, 64, 128).
    """
    bounds = [0.0, *map(float, edges), float("inf")]
    if any(a >= b for a, b in zip(bounds[:-1], bounds[1:])):
        raise InputError("size bands", f"edges must be positive and increasing, got {list(edges)}")
    sides = [shorter_side(as_tensor(r.boxes)).numpy() for r in records]  # (G_i,) per image
    bands = []
    for low, high in zip(bounds[:-1], bounds[1:]):
        banded, count = [], 0
        for r, side in zip(records, sides):
            inside = (side >= low) & (side < high)
            difficult = np.asarray(r.difficult, bool) | ~inside
            count += int((~difficult).sum())
            banded.append(dataclasses.replace(r, difficult=difficult))
        bands.append(SizeBand(low, high, count, evaluate_voc(detections, banded, classes, metric=metric).map))
    return bands
