"""COCO-style AP@[.5:.95] and AP50 of VOC detections, through pycocotools (in memory).

Not part of the papers' protocol; a second view of localisation quality. The COCO ground truth and
detections are built in memory: our continuous 0-based boxes map directly to COCO's
[x, y, width, height] (no +1 anywhere), VOC "difficult" objects become ``iscrowd`` (COCO ignores
detections matched to a crowd region, close to VOC's "neither TP nor FP"). COCOeval's own limits
apply: at most 100 detections per image (its default maxDets) and area range "all".
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Mapping, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from data.errors import InputError
from data.records import Detections, ImageRecord

log = logging.getLogger(__name__)


def _xywh(boxes: np.ndarray) -> np.ndarray:
    """(R, 4) x1, y1, x2, y2 -> (R, 4) x, y, w, h (float64)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)


def build_coco_gt(records: Sequence[ImageRecord], classes: Sequence[str]) -> COCO:
    """A pycocotools COCO object holding the ground truth (image ids 1..N, category ids 1..K)."""
    images, annotations = [], []
    for n, rec in enumerate(records, start=1):
        images.append({"id": n, "height": int(rec.size[0]), "width": int(rec.size[1]), "file_name": rec.image_id})
        for box, label, diff in zip(_xywh(rec.boxes), np.asarray(rec.labels), np.asarray(rec.difficult)):
            annotations.append(
                {
                    "id": len(annotations) + 1,  # COCOeval uses id 0 as "unmatched": start at 1
                    "image_id": n,
                    "category_id": int(label) + 1,
                    "bbox": [float(v) for v in box],
                    "area": float(box[2] * box[3]),
                    "iscrowd": int(bool(diff)),
                }
            )
    gt = COCO()
    gt.dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": k + 1, "name": name} for k, name in enumerate(classes)],
    }
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress to stdout
        gt.createIndex()
    return gt


def coco_ap(
    detections: Mapping[str, Detections], records: Sequence[ImageRecord], classes: Sequence[str]
) -> dict[str, float]:
    """COCO AP over IoU 0.50:0.05:0.95 and AP at IoU 0.5, over all classes.

    Args:
        detections: image_id -> Detections (0-based boxes; labels index ``classes``).
        records: ground truth of the split.
        classes: the K class names.

    Returns:
        {"AP": float, "AP50": float}, fractions in [0, 1] (0 when there are no detections; COCO
        reports -1 when there is no ground truth, kept as is).
    """
    gt = build_coco_gt(records, classes)
    image_number = {r.image_id: n for n, r in enumerate(records, start=1)}
    results = []
    for image_id, det in detections.items():
        if image_id not in image_number:
            raise InputError("detections", f"image id {image_id!r} is not in the ground-truth split")
        for box, score, label in zip(_xywh(det.boxes), np.asarray(det.scores), np.asarray(det.labels)):
            results.append(
                {
                    "image_id": image_number[image_id],
                    "category_id": int(label) + 1,
                    "bbox": [float(v) for v in box],
                    "score": float(score),
                }
            )
    if not results:  # loadRes cannot take an empty list
        log.warning("no detections: COCO AP is 0")
        return {"AP": 0.0, "AP50": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"AP": float(ev.stats[0]), "AP50": float(ev.stats[1])}
