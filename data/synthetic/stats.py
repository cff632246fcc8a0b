"""What a detection set looks like, in the figures that make it like PASCAL VOC 2007 or not.

:func:`set_statistics` measures annotations as users get them (records read back by
:func:`data.voc.load_voc`); :data:`VOC07_REFERENCE` holds VOC 2007's values with the source of each;
:func:`format_table` prints sets side by side with that reference.

Sizes: "relative side" is sqrt(box area) / sqrt(image area), so 0.5 is a box covering a quarter of
the image whatever its shape; "under 32 / 64 px" counts boxes whose sqrt(area) is below 32 / 64
pixels (COCO's "small" is area < 32^2). Aspect is box width / height.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

from data.records import ImageRecord


@dataclass(frozen=True)
class SetStatistics:
    """Statistics of a set of annotated images (all objects, difficult ones included, unless named)."""

    images: int
    objects: int
    objects_per_image: float
    non_difficult_per_image: float  # what VOC's devkit table counts
    one_object_images: float  # fraction of images holding exactly one object
    rel_side_q1: float  # quartiles of sqrt(box area) / sqrt(image area)
    rel_side_median: float
    rel_side_q3: float
    aspect_p10: float  # 10th / 50th / 90th percentile of box width / height
    aspect_median: float
    aspect_p90: float
    aspect_half_to_two: float  # fraction of boxes with 0.5 <= width / height <= 2
    truncated: float  # fraction of objects flagged truncated
    difficult: float  # fraction of objects flagged difficult
    under_32px: float  # fraction of objects with sqrt(area) < 32 px
    under_64px: float  # fraction of objects with sqrt(area) < 64 px


# (field, row label, format) in table order; ``images`` and ``objects`` are printed as counts.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("images", "images", "{:.0f}"),
    ("objects", "objects (difficult included)", "{:.0f}"),
    ("objects_per_image", "objects / image", "{:.2f}"),
    ("non_difficult_per_image", "non-difficult objects / image", "{:.2f}"),
    ("one_object_images", "images with 1 object", "{:.0%}"),
    ("rel_side_q1", "rel. side sqrt(a/A) q1", "{:.2f}"),
    ("rel_side_median", "rel. side sqrt(a/A) median", "{:.2f}"),
    ("rel_side_q3", "rel. side sqrt(a/A) q3", "{:.2f}"),
    ("aspect_p10", "aspect w/h p10", "{:.2f}"),
    ("aspect_median", "aspect w/h median", "{:.2f}"),
    ("aspect_p90", "aspect w/h p90", "{:.2f}"),
    ("aspect_half_to_two", "aspect w/h in [0.5, 2]", "{:.0%}"),
    ("truncated", "truncated", "{:.0%}"),
    ("difficult", "difficult", "{:.0%}"),
    ("under_32px", "sqrt(area) < 32 px", "{:.0%}"),
    ("under_64px", "sqrt(area) < 64 px", "{:.0%}"),
)

# PASCAL VOC 2007 (trainval unless said): field -> (value, source). "devkit" is the VOC2007
# development kit documentation's statistics table (also the challenge's online "database
# statistics" page), which counts only non-difficult objects: trainval 5,011 images / 12,608
# objects, test 4,952 images / 12,032 objects. Values marked "approx." or "estimate" are NOT from a
# published table; the note says how each was obtained. Treat them as targets, not as facts.
VOC07_REFERENCE: Mapping[str, tuple[float, str]] = {
    "images": (5011, "devkit table, trainval"),
    "non_difficult_per_image": (12608 / 5011, "devkit table, trainval: 12,608 / 5,011 (test: 12,032 / 4,952 = 2.43)"),
    # The devkit table leaves difficult objects out. Counting them, loaders that keep them (e.g.
    # detectron2's per-category instance table) report about 15,662 trainval and 14,976 test
    # objects; quoted from memory, hence approx.
    "objects": (15662, "approx.: trainval with difficult objects (loader counts, from memory)"),
    "objects_per_image": (15662 / 5011, "approx.: 15,662 / 5,011 (see objects)"),
    "difficult": (
        (15662 - 12608) / 15662,
        "approx.: 1 - 12,608 / 15,662 (test: 1 - 12,032 / 14,976 = 0.20)",
    ),
    "one_object_images": (0.45, "estimate: VOC is dominated by single-object photos; not from a table"),
    # Size note: we cannot cite a published VOC table of these quantiles here. They are estimates
    # from the COCO paper's comparison (Lin et al. 2014, Fig. 5: VOC's objects are large, COCO's
    # small) and the COCO-style size split usually quoted for VOC07 (on the order of 5-10 % small,
    # 30 % medium, 60 % large). Derived check: a log-normal relative side with median 0.33 and
    # lower quartile 0.17 (sigma of log = ln(0.33 / 0.17) / 0.674 = 0.98) on a 500x375 image
    # (sqrt(area) 433 px) puts 6 % below 32 px (0.074), 21 % below 64 px (0.148) and 66 % above
    # 96 px (0.222), in line with that split.
    "rel_side_q1": (0.17, "estimate (see the size note in stats.py)"),
    "rel_side_median": (0.33, "estimate (see the size note in stats.py)"),
    "rel_side_q3": (0.55, "estimate (size note; below the log-normal's 0.64: no box exceeds its image)"),
    "under_32px": (0.07, "estimate, derived: the log-normal of the size note puts ~6 % below 32 px"),
    "under_64px": (0.21, "estimate, derived: the log-normal of the size note puts ~21 % below 64 px"),
    # Aspect: persons (~40 % of VOC objects) give tall boxes, vehicles wide ones; detectors tuned
    # on VOC cover it with anchors of aspect 0.5, 1, 2 (Faster R-CNN). Estimates, not a table.
    "aspect_p10": (0.45, "estimate: tall boxes (standing persons, bottles)"),
    "aspect_median": (0.95, "estimate: persons pull the median slightly below 1"),
    "aspect_p90": (2.1, "estimate: wide boxes (cars, buses, trains, sofas)"),
    "aspect_half_to_two": (0.80, "estimate: anchors of aspect 0.5-2 cover most VOC boxes"),
    # VOC's 'truncated' flag: the object extends beyond its box (mostly the image border). Persons
    # cut at the waist or legs and vehicles cut by the frame are common, so tens of percent.
    "truncated": (0.40, "estimate: tens of percent; not from a table"),
}


def _quantiles(values: np.ndarray, qs: Sequence[float]) -> list[float]:
    return [float(v) for v in np.quantile(values, qs)] if values.size else [float("nan")] * len(qs)


def set_statistics(records: Sequence[ImageRecord]) -> SetStatistics:
    """The statistics of ``records`` (e.g. ``load_voc(root, split).records``; N images, G objects).

    Raises:
        ValueError: for an empty ``records``.
    """
    if not records:
        raise ValueError("no images to measure")
    boxes = np.concatenate([r.boxes.reshape(-1, 4) for r in records]).astype(np.float64)  # (G, 4)
    image_area = np.concatenate([np.full(r.num_objects, r.size[0] * r.size[1], np.float64) for r in records])
    difficult = np.concatenate([r.difficult for r in records]).astype(bool)
    truncated = np.concatenate([r.truncated for r in records]).astype(bool)
    counts = np.array([r.num_objects for r in records])  # (N,)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.sqrt(w * h)  # (G,) pixels
    rel = side / np.sqrt(image_area)
    aspect = w / np.maximum(h, 1e-6)
    g = max(len(boxes), 1)  # fractions of zero objects read 0, not nan
    q1, med, q3 = _quantiles(rel, (0.25, 0.5, 0.75))
    a10, a50, a90 = _quantiles(aspect, (0.1, 0.5, 0.9))
    return SetStatistics(
        images=len(records),
        objects=len(boxes),
        objects_per_image=float(counts.mean()),
        non_difficult_per_image=float((~difficult).sum() / len(records)),
        one_object_images=float((counts == 1).mean()),
        rel_side_q1=q1,
        rel_side_median=med,
        rel_side_q3=q3,
        aspect_p10=a10,
        aspect_median=a50,
        aspect_p90=a90,
        aspect_half_to_two=float(((aspect >= 0.5) & (aspect <= 2.0)).sum() / g),
        truncated=float(truncated.sum() / g),
        difficult=float(difficult.sum() / g),
        under_32px=float((side < 32).sum() / g),
        under_64px=float((side < 64).sum() / g),
    )


def format_table(columns: Mapping[str, SetStatistics],
                 reference: Mapping[str, tuple[float, str]] = VOC07_REFERENCE) -> str:  # fmt: skip
    """A Markdown table: one row per statistic, one column per set, then the reference and its source."""
    assert {f.name for f in fields(SetStatistics)} == {r[0] for r in ROWS}
    names = list(columns)
    lines = [
        "| statistic | " + " | ".join(names) + " | VOC 2007 | VOC 2007 source |",
        "|---|" + "---:|" * len(names) + "---:|---|",
    ]
    for field, label, fmt in ROWS:
        cells = [fmt.format(getattr(columns[n], field)) for n in names]
        ref, source = reference.get(field, (None, ""))
        ref_cell = "" if ref is None else fmt.format(ref)
        if ref is not None and not source.startswith("devkit"):
            ref_cell = "~" + ref_cell  # not from a published table
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {ref_cell} | {source} |")
    return "\n".join(lines)
