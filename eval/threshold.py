"""Precision and recall of the detections scoring above one threshold: what a demo draws.

mAP ranks every detection and never asks where to cut; a picture cuts at one score. Over a split,
the detections with score > ``threshold`` are matched per class by the devkit's rules
(``eval.matching.match_class``, IoU >= 0.5, difficult objects neither found nor missed), and the
counts are pooled over classes:

    precision = TP / (TP + FP)        recall = TP / (non-difficult ground truths)

Each false positive is also given the type of error it is, after Hoiem, Chodpathumwan and Dai
(ECCV 2012), the analysis R-CNN's paper (fig. 5) and SPP-net's predecessors use; the first that
applies, with overlaps against every object (difficult ones included):

    localisation   IoU >= 0.1 with an object of its own class (a duplicate, or a box that is off)
    other class    IoU >= 0.1 with an object of another class (Hoiem's "similar" + "other")
    background     IoU < 0.1 with every object
"""

from __future__ import annotations

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
    return ThresholdPR(float(threshold), tp, fp, num_gt, *(int(e) for e in errors))


def error_types(det_image: np.ndarray, det_boxes: np.ndarray, records: Sequence[ImageRecord],
                k: int) -> np.ndarray:
    """Counts of (localisation, other class, background) among false positives of class ``k``.

    Args:
        det_image: (R,) int, index into ``records`` of each false positive's image.
        det_boxes: (R, 4) 0-based continuous boxes.
    """
    counts = np.zeros(3, np.int64)
    for i in np.unique(det_image):
        boxes = det_boxes[det_image == i]
        labels = np.asarray(records[i].labels)
        own = best_matches(boxes, records[i].boxes[labels == k])[0] >= ERROR_IOU  # (R_i,)
        other = best_matches(boxes, records[i].boxes[labels != k])[0] >= ERROR_IOU
        counts += [int(own.sum()), int((~own & other).sum()), int((~own & ~other).sum())]
    return counts
