"""PASCAL VOC detection AP and mAP, scored exactly as the official devkit (VOCevaldet, VOCap).

Per class: all detections of the class over the split are sorted by descending score with a
STABLE sort (the devkit's ``sort(-confidence)`` in MATLAB is stable). Ties therefore keep input
order, which here is: images in the order of ``records`` (the split file), then detections in the
order of each image's :class:`~data.records.Detections`. A result file written by
:mod:`eval.result_files` lists detections in that same order, so the MATLAB devkit breaks ties the
same way. Matching is in :mod:`eval.matching`. Then

    rec = cumsum(tp) / npos        (npos = number of non-difficult GTs of the class)
    prec = cumsum(tp) / (cumsum(tp) + cumsum(fp))

- voc07 (11-point, VOC2007 devkit): AP = mean over t in MATLAB's ``0:0.1:1`` of the max precision
  at recall >= t (0 if none). MATLAB's colon builds the first half as k*0.1 and the second half as
  1 - (10-k)*0.1, so t[3] is 0.30000000000000004 (a recall of exactly 0.3 does NOT reach it) while
  t[6], t[7] are exactly 0.6, 0.7 (``np.arange(0, 1.1, 0.1)`` differs there); we reproduce MATLAB.
- voc10 (VOC2010+ ``VOCap``): area under the precision envelope made monotone from the right,
  summed where recall changes.

Where tp + fp = 0 (only detections matched to difficult GTs so far) MATLAB's precision is NaN and
its ``max`` skips NaN; we store 0 there, which gives the same AP because precision is never < 0.
A class with no non-difficult GT has no AP (None): it is logged and left out of the mAP.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from data.errors import InputError
from data.records import Detections, ImageRecord
from eval.matching import match_class

log = logging.getLogger(__name__)

METRICS = ("voc07", "voc10")


def matlab_colon(start: float, step: float, stop: float) -> np.ndarray:
    """MATLAB's ``start:step:stop`` bit for bit (first half from ``start``, second from ``stop``)."""
    n = int(math.floor((stop - start) / step + 1e-10))
    out = np.empty(n + 1, np.float64)
    half = n // 2
    for k in range(half + 1):
        out[k] = start + k * step
        out[n - k] = stop - k * step
    if n % 2 == 0:
        out[half] = (start + stop) / 2.0
    return out


VOC07_THRESHOLDS = matlab_colon(0.0, 0.1, 1.0)  # VOCevaldet (VOC2007): for t=0:0.1:1


def voc07_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """11-point AP: mean over t of max(precision[recall >= t]), 0 where no recall reaches t.

    Args:
        recall: (R,) recall after each ranked detection.
        precision: (R,) precision after each ranked detection.
    """
    points = []
    for t in VOC07_THRESHOLDS:
        reached = precision[recall >= t]
        points.append(float(reached.max()) if reached.size else 0.0)
    # The devkit accumulates ap += p / 11, which leaves a perfect class at 1.0000000000000002;
    # an exact sum then one division gives 1.0 (a difference of about 1e-16, never visible).
    return math.fsum(points) / 11.0


def voc10_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOCap: area under the monotone (from the right) precision envelope.

    Args:
        recall: (R,) recall after each ranked detection (non-decreasing).
        precision: (R,) precision after each ranked detection.
    """
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # mpre(i) = max(mpre(i), mpre(i+1)) from the end
    i = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[i] - mrec[i - 1]) * mpre[i]))


@dataclass(frozen=True, eq=False)
class VOCResult:
    """Per-class VOC scores.

    Attributes:
        metric: "voc07" or "voc10".
        iou_threshold: the overlap a TP needs (0.5 in VOC).
        classes: the K class names, in class-id order.
        ap: class -> AP in [0, 1], or None for a class with no non-difficult GT.
        map: mean of the non-None APs (NaN when every class is None).
        curves: class -> (recall (R,), precision (R,)) over the ranked detections of the class.
        num_gt: class -> number of non-difficult GTs (the devkit's npos).
        num_det: class -> number of detections scored.
    """

    metric: str
    iou_threshold: float
    classes: tuple[str, ...]
    ap: dict[str, float | None]
    map: float
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False)
    num_gt: dict[str, int]
    num_det: dict[str, int]

    def to_json(self) -> dict:
        """{"metric": ..., "map": float | None, "ap": {class: float | None}} (fractions in [0, 1])."""
        return {
            "metric": self.metric,
            "map": None if math.isnan(self.map) else float(self.map),
            "ap": {c: (None if a is None else float(a)) for c, a in self.ap.items()},
        }


def _class_detections(
    detections: Mapping[str, Detections], order: Sequence[str], k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections of class ``k`` in split order: (image index (R,), boxes (R, 4), scores (R,))."""
    images, boxes, scores = [], [], []
    for i, image_id in enumerate(order):
        det = detections.get(image_id)
        if det is None or len(det) == 0:
            continue
        sel = np.asarray(det.labels) == k
        images.append(np.full(int(sel.sum()), i, np.int64))
        boxes.append(np.asarray(det.boxes, np.float64).reshape(-1, 4)[sel])
        scores.append(np.asarray(det.scores, np.float64)[sel])
    if not images:
        return np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0)
    return np.concatenate(images), np.concatenate(boxes), np.concatenate(scores)


def _check_inputs(detections: Mapping[str, Detections], records: Sequence[ImageRecord], k: int) -> None:
    known = {r.image_id for r in records}
    for image_id, det in detections.items():
        if image_id not in known:  # VOCevaldet: error('unrecognized image "%s"')
            raise InputError("detections", f"image id {image_id!r} is not in the ground-truth split")
        labels = np.asarray(det.labels)
        if labels.size and (labels.min() < 0 or labels.max() >= k):
            raise InputError("detections", f"image {image_id!r} has class ids outside 0..{k - 1}")


def score_class(
    detections: Mapping[str, Detections],
    records: Sequence[ImageRecord],
    k: int,
    iou_threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, int]:
    """VOCevaldet for class id ``k``: (recall (R,), precision (R,), npos)."""
    order = [r.image_id for r in records]
    det_image, det_boxes, det_scores = _class_detections(detections, order, k)
    ranking = np.argsort(-det_scores, kind="stable")  # MATLAB sort(-confidence) is stable
    gt_boxes = [r.boxes[np.asarray(r.labels) == k] for r in records]
    gt_difficult = [np.asarray(r.difficult, bool)[np.asarray(r.labels) == k] for r in records]
    npos = int(sum(int((~d).sum()) for d in gt_difficult))
    tp, fp = match_class(det_image[ranking], det_boxes[ranking], gt_boxes, gt_difficult, iou_threshold)
    tp_cum = np.cumsum(tp).astype(np.float64)
    fp_cum = np.cumsum(fp).astype(np.float64)
    recall = tp_cum / npos if npos > 0 else np.zeros_like(tp_cum)
    denom = tp_cum + fp_cum
    precision = np.divide(tp_cum, denom, out=np.zeros_like(tp_cum), where=denom > 0)
    return recall, precision, npos


def evaluate_voc(
    detections: Mapping[str, Detections],
    records: Sequence[ImageRecord],
    classes: Sequence[str],
    metric: str = "voc07",  # the SPP-net and R-CNN papers report VOC 2007 test, 11-point AP
    iou_threshold: float = 0.5,  # VOCopts.minoverlap in the devkit
) -> VOCResult:
    """Score detections against ground truth like the VOC devkit.

    Args:
        detections: image_id -> Detections (0-based boxes, labels are class ids into ``classes``);
            an image without an entry has no detections.
        records: the ground-truth images of the split (difficult GTs included).
        classes: the K class names.
        metric: "voc07" (11-point) or "voc10" (area under the envelope).
        iou_threshold: minimum devkit overlap for a true positive.

    Returns:
        a :class:`VOCResult`.

    Raises:
        InputError: unknown metric, an image id not in ``records``, or a class id out of range.
    """
    if metric not in METRICS:
        raise InputError("metric", f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    _check_inputs(detections, records, len(classes))
    ap_fn = voc07_ap if metric == "voc07" else voc10_ap
    ap: dict[str, float | None] = {}
    curves, num_gt, num_det = {}, {}, {}
    total = sum(len(d) for d in detections.values())
    # about 8 s per million detections on one CPU core: show progress only for big runs
    bar = tqdm(list(enumerate(classes)), desc="scoring classes", disable=total < 100_000, leave=False)
    for k, name in bar:
        recall, precision, npos = score_class(detections, records, k, iou_threshold)
        curves[name], num_gt[name], num_det[name] = (recall, precision), npos, int(recall.shape[0])
        if npos == 0:
            log.warning("class %r has no non-difficult ground truth: no AP, left out of the mAP", name)
            ap[name] = None
        else:
            ap[name] = ap_fn(recall, precision)
    scored = [a for a in ap.values() if a is not None]
    mean = float(np.mean(scored)) if scored else float("nan")
    return VOCResult(metric, iou_threshold, tuple(classes), ap, mean, curves, num_gt, num_det)
