"""Detections in COCO's results format, for a dataset read from a COCO json.

One json list for the whole split, one entry per detection::

    {"image_id": <COCO image id>, "category_id": <COCO category id>, "bbox": [x, y, w, h], "score": s}

the json's own ids (mapped back through ``Dataset.coco``) and our continuous 0-based boxes as
COCO's ``[x, y, width, height]`` (no +1 anywhere). This is what ``pycocotools``'s ``COCO.loadRes``
and the COCO evaluation server read, so a results file can be scored by anyone's COCO tooling.
Scores are written exactly (json keeps a float64 repr, and a float32 converts to float64 exactly).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from data.cache import atomic_write_text
from data.errors import InputError
from data.records import Dataset, Detections

log = logging.getLogger(__name__)


def results_path(out_dir: Path, split: str) -> Path:
    """COCO's naming, ``detections_<split>_results.json`` (e.g. ``detections_val2017_results.json``)."""
    return Path(out_dir) / f"detections_{split}_results.json"


def coco_results(detections: Mapping[str, Detections], dataset: Dataset) -> list[dict[str, Any]]:
    """Detections as COCO result entries, images in the mapping's order, then detection order.

    Args:
        detections: image_id -> Detections (0-based x1, y1, x2, y2; labels index ``dataset.classes``).
        dataset: a dataset read from a COCO json (``dataset.coco`` set).
    Raises:
        InputError: the dataset is not a COCO one, or an image id is not in it.
    """
    if dataset.coco is None:
        raise InputError(dataset.root, "COCO results need a dataset read from a COCO json (--ann-file)")
    image_ids, category_ids = dataset.coco.image_ids, dataset.coco.category_ids
    out = []
    for image_id, det in detections.items():
        if image_id not in image_ids:
            raise InputError(dataset.coco.ann_file, f"detections for image id {image_id!r}, which is not in the json")
        boxes = np.asarray(det.boxes, np.float64).reshape(-1, 4)
        for box, score, label in zip(boxes, np.asarray(det.scores), np.asarray(det.labels)):
            out.append({
                "image_id": image_ids[image_id],
                "category_id": category_ids[int(label)],
                "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])],
                "score": float(score),
            })  # fmt: skip
    return out


def write_coco_results(path: Path, detections: Mapping[str, Detections], dataset: Dataset) -> Path:
    """Write :func:`coco_results` as json to ``path`` (atomically); returns ``path``."""
    entries = coco_results(detections, dataset)
    atomic_write_text(Path(path), json.dumps(entries) + "\n")
    log.info("wrote %d COCO results to %s", len(entries), path)
    return Path(path)
