"""Precision and recall of the detections scoring above one threshold: what a demo draws.

mAP ranks every detection and never asks where to cut; a picture cuts at one score. Over a split,
the detections with score > ``threshold`` are matched per class by the devkit's rules
(``eval.matching.match_class``, IoU >= 0.5, difficult objects neither found nor missed), and the
counts are pooled over classes:

    precision = TP / (TP + FP)        recall = TP / (non-difficult ground truths)

Each false positive is also given the type of error it is, after Hoiem, Chodpathumwan and Dai
(ECCV 2012), the analysis of R-CNN's paper (fig. 5); the first that
applies, with overlaps against every object (difficult ones included):

    localisation   IoU >= 0.1 with an object of its own class (a duplicate, or a box that is off)
    other class    IoU >= 0.1 with an object of another class (Hoiem's "similar" + "other")
    background     IoU < 0.1 with every object

Two more figures say how much of the error is the classifier's: which class pairs are confused
(a box that touches no object of its own class, IoU < 0.1, but covers one of another class at
IoU >= 0.5), and the precision and recall if every such box carried the class of the object it
covers (:func:`relabel_confusions`, Hoiem et al.'s "fix this error type" oracle).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from data.records import Detections, ImageRecord
from eval.matching import best_matches, match_class
from eval.voc_ap import _check_inputs, _class_detections

ERROR_IOU = 0.1  # Hoiem et al.'s overlap below which a false positive is on background


@dataclass(frozen=True)
class ThresholdPR:
    """Counts and rates of the detections above ``threshold``, pooled over classes."""

    threshold: float
    tp: int
    fp: int
    num_gt: int  # non-difficult ground truths
    fp_localisation: int  # fp = fp_localisation + fp_other_class + fp_background
    fp_other_class: int
    fp_background: int
    # (drawn class, class of the object covered, count) of the confused boxes, most frequent first
    confusions: tuple[tuple[int, int, int], ...]

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 1.0 when nothing is above the threshold (no wrong box is drawn)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / self.num_gt if self.num_gt else 0.0


def precision_recall_above(detections: Mapping[str, Detections], records: Sequence[ImageRecord],
                           num_classes: int, threshold: float, iou_threshold: float = 0.5) -> ThresholdPR:
    """Precision and recall over ``records`` of the detections whose score is > ``threshold``,
    with the false positives' error types.

    Args:
        detections: image_id -> Detections (0-based boxes, class ids 0..K-1).
        records: the split's ground truth (difficult objects included).
        num_classes: K.
    """
    _check_inputs(detections, records, num_classes)
    order = [r.image_id for r in records]
    tp = fp = num_gt = 0
    errors = np.zeros(3, np.int64)  # localisation, other class, background
    for k in range(num_classes):
        det_image, det_boxes, det_scores = _class_detections(detections, order, k)
        keep = det_scores > threshold
        ranking = np.argsort(-det_scores[keep], kind="stable")
        det_image, det_boxes = det_image[keep][ranking], det_boxes[keep][ranking]
        gt_boxes = [r.boxes[np.asarray(r.labels) == k] for r in records]
        gt_difficult = [np.asarray(r.difficult, bool)[np.asarray(r.labels) == k] for r in records]
        t, f = match_class(det_image, det_boxes, gt_boxes, gt_difficult, iou_threshold)
        tp, fp = tp + int(t.sum()), fp + int(f.sum())
        num_gt += int(sum(int((~d).sum()) for d in gt_difficult))
        errors += error_types(det_image[f], det_boxes[f], records, k)
    return ThresholdPR(float(threshold), tp, fp, num_gt, *(int(e) for e in errors),
                       confusions(detections, records, threshold, iou_threshold))


def error_types(det_image: np.ndarray, det_boxes: np.ndarray, records: Sequence[ImageRecord],
                k: int) -> np.ndarray:
    """Counts of (localisation, other class, background) among false positives of class ``k``.

    Args:
        det_image: (R,) int, index into ``records`` of each false positive's image.
        det_boxes: (R, 4) 0-based continuous boxes.
    """
    counts = np.zeros(3, np.int64)
    for i in np.unique(det_image):
        own_iou, other_iou, _ = own_and_other(det_boxes[det_image == i], k, records[i])
        own, other = own_iou >= ERROR_IOU, other_iou >= ERROR_IOU
        counts += [int(own.sum()), int((~own & other).sum()), int((~own & ~other).sum())]
    return counts


def own_and_other(boxes: np.ndarray, k: int, record: ImageRecord) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each box of class ``k`` against one image's objects (the devkit's overlap, difficult ones too).

    Returns:
        own (R,): the best IoU with an object of class ``k``; other (R,): the best IoU with an
        object of another class, other_class (R,): that object's class (-1 when none); IoU -inf
        when nothing overlaps.
    """
    gt_labels = np.asarray(record.labels, np.int64)
    others = np.flatnonzero(gt_labels != k)
    own = best_matches(boxes, record.boxes[gt_labels == k])[0]
    other, j = best_matches(boxes, record.boxes[others])
    other_class = np.full(len(j), -1, np.int64)
    other_class[j >= 0] = gt_labels[others[j[j >= 0]]]
    return own, other, other_class


def confusions(detections: Mapping[str, Detections], records: Sequence[ImageRecord], threshold: float,
               iou_threshold: float = 0.5) -> tuple[tuple[int, int, int], ...]:
    """(drawn class, covered object's class, count) of the confused boxes scoring > ``threshold``
    (:func:`covered_other_class`), most frequent first."""
    pairs: Counter[tuple[int, int]] = Counter()
    for r in records:
        det = detections.get(r.image_id)
        if det is None or not len(det):
            continue
        above = np.asarray(det.scores) > threshold
        drawn = np.asarray(det.labels, np.int64)[above]
        covered = covered_other_class(np.asarray(det.boxes)[above], drawn, r, iou_threshold)
        pairs.update(zip(drawn[covered >= 0].tolist(), covered[covered >= 0].tolist()))
    return tuple((a, b, n) for (a, b), n in sorted(pairs.items(), key=lambda item: (-item[1], item[0])))


def covered_other_class(boxes: np.ndarray, labels: np.ndarray, record: ImageRecord,
                        iou_threshold: float = 0.5) -> np.ndarray:
    """For each box of one image: the class of the object of another class it covers at IoU >=
    ``iou_threshold`` while touching no object of its own class (IoU < 0.1), else -1.

    Args:
        boxes: (R, 4) 0-based continuous. labels: (R,) class ids.

    Returns:
        (R,) int64 class id or -1.
    """
    boxes, labels = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(labels, np.int64)
    out = np.full(len(labels), -1, np.int64)
    for k in np.unique(labels):
        sel = np.flatnonzero(labels == k)
        own, other, other_class = own_and_other(boxes[sel], int(k), record)
        hit = (own < ERROR_IOU) & (other >= iou_threshold)
        out[sel[hit]] = other_class[hit]
    return out


def relabel_confusions(detections: Mapping[str, Detections], records: Sequence[ImageRecord],
                       iou_threshold: float = 0.5) -> dict[str, Detections]:
    """The detections with every confused box (:func:`covered_other_class`) given the class of the
    object it covers: what a perfect classifier of the found objects would draw."""
    out = {}
    for r in records:
        det = detections.get(r.image_id)
        if det is None:
            continue
        covered = covered_other_class(det.boxes, det.labels, r, iou_threshold)
        out[r.image_id] = Detections(det.boxes, det.scores, np.where(covered >= 0, covered, det.labels))
    return out
