"""PASCAL VOC detection AP and mAP, scored exactly as the official devkit (VOCevaldet, VOCap).

Per class: all detections of the class over the split are sorted by descending score with a
STABLE sort (the devkit's ``sort(-confidence)`` in MATLAB is stable), so tied scores keep their
input order, and that order changes the AP (by up to a few points on coarse scores). The input
order is:

- for detections read from result files (:func:`eval.result_files.read_result_files`, which
  returns :class:`LineOrderedDetections`): each class file's LINE order, whatever it is, because
  the devkit reads ``comp4_det_test_<class>.txt`` with ``textread`` and sorts that. Scores and
  boxes are then the file's numbers as doubles (the devkit's ``%f``), not rounded to float32,
  which could create ties the devkit does not see.
- for our own in-memory detections (any other mapping): images in the order of ``records`` (the
  split file), then detections in the order of each image's :class:`~data.records.Detections`.
  :func:`eval.result_files.write_result_files` writes lines in that same order, so the MATLAB
  devkit, and this module reading those files back, break ties the same way.

Matching is in :mod:`eval.matching`. Then

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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from data.errors import InputError
from data.progress import track
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
        untrained: the classes the detector was trained without (no training object): no AP
            either, whatever the split holds, and left out of the mAP.
    """

    metric: str
    iou_threshold: float
    classes: tuple[str, ...]
    ap: dict[str, float | None]
    map: float
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False)
    num_gt: dict[str, int]
    num_det: dict[str, int]
    untrained: tuple[str, ...] = ()

    def to_json(self) -> dict:
        """{"metric": ..., "map": float | None, "ap": {class: float | None}} (fractions in [0, 1]),
        plus "untrained": [class, ...] when the detector was trained without some classes."""
        out = {
            "metric": self.metric,
            "map": None if math.isnan(self.map) else float(self.map),
            "ap": {c: (None if a is None else float(a)) for c, a in self.ap.items()},
        }
        if self.untrained:
            out["untrained"] = list(self.untrained)
        return out


@dataclass(frozen=True, eq=False)
class ClassDetections:
    """All detections of one class over a split, in the devkit's input order (a result file's lines).

    Attributes:
        image_ids: (R,) the image id of each detection.
        scores: (R,) float64, as written in the file.
        boxes: (R, 4) float64, 0-based x1, y1, x2, y2.
    """

    image_ids: tuple[str, ...]
    scores: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return len(self.image_ids)


@dataclass(frozen=True, eq=False)
class LineOrderedDetections(Mapping[str, Detections]):
    """image_id -> Detections, which also remembers each class's detections in input order.

    It reads like any detections mapping (``tools/eval_voc.py`` hands it to COCO AP and plots too);
    :func:`evaluate_voc` ranks ``by_class[k]`` instead of regrouping by image, as the devkit does.
    Built by :func:`eval.result_files.read_result_files`; both views hold the same detections.

    Attributes:
        per_image: image_id -> Detections (float32), in split order.
        by_class: K entries, class id order: the class's detections in line order.
    """

    per_image: Mapping[str, Detections]
    by_class: tuple[ClassDetections, ...]

    def __getitem__(self, image_id: str) -> Detections:
        return self.per_image[image_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.per_image)

    def __len__(self) -> int:
        return len(self.per_image)


def _class_detections(
    detections: Mapping[str, Detections], order: Sequence[str], k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections of class ``k`` in input order: (image index into ``order`` (R,), boxes (R, 4), scores (R,))."""
    if isinstance(detections, LineOrderedDetections):
        lines = detections.by_class[k]
        index = {image_id: i for i, image_id in enumerate(order)}
        images = np.fromiter((index[i] for i in lines.image_ids), np.int64, len(lines))
        return images, np.asarray(lines.boxes, np.float64).reshape(-1, 4), np.asarray(lines.scores, np.float64)
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
    if isinstance(detections, LineOrderedDetections):
        if len(detections.by_class) != k:
            raise InputError("detections", f"{len(detections.by_class)} classes of result lines, expected {k}")
        for lines in detections.by_class:
            unknown = set(lines.image_ids) - known
            if unknown:
                raise InputError("detections", f"image id {min(unknown)!r} is not in the ground-truth split")


def score_class(
    detections: Mapping[str, Detections],
    records: Sequence[ImageRecord],
    k: int,
    iou_threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, int]:
    """VOCevaldet for class id ``k``: (recall (R,), precision (R,), npos).

    Ranks the class's detections in input order (see the module docstring): a
    :class:`LineOrderedDetections` in its result file's line order, any other mapping in split order.
    """
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
    untrained: Sequence[str] = (),
) -> VOCResult:
    """Score detections against ground truth like the VOC devkit.

    Args:
        detections: image_id -> Detections (0-based boxes, labels are class ids into ``classes``);
            an image without an entry has no detections. A :class:`LineOrderedDetections` (from
            :func:`eval.result_files.read_result_files`) is ranked in its files' line order.
        records: the ground-truth images of the split (difficult GTs included).
        classes: the K class names.
        metric: "voc07" (11-point) or "voc10" (area under the envelope).
        iou_threshold: minimum devkit overlap for a true positive.
        untrained: classes the detector was trained without: reported with no AP (not 0).

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
    bar = track(list(enumerate(classes)), desc="scoring classes", show=total >= 100_000, leave=False)
    for k, name in bar:
        recall, precision, npos = score_class(detections, records, k, iou_threshold)
        curves[name], num_gt[name], num_det[name] = (recall, precision), npos, int(recall.shape[0])
        if name in untrained:
            log.warning("class %r was not trained (no training object): no AP, left out of the mAP", name)
            ap[name] = None
        elif npos == 0:
            log.warning("class %r has no non-difficult ground truth: no AP, left out of the mAP", name)
            ap[name] = None
        else:
            ap[name] = ap_fn(recall, precision)
    scored = [a for a in ap.values() if a is not None]
    mean = float(np.mean(scored)) if scored else float("nan")
    return VOCResult(metric, iou_threshold, tuple(classes), ap, mean, curves, num_gt, num_det,
                     tuple(c for c in classes if c in untrained))
