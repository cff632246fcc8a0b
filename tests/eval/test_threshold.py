"""Precision / recall above a score threshold, against counts worked out by hand."""

from pathlib import Path

import numpy as np

from data.records import Detections, ImageRecord
from eval.threshold import precision_recall_above


def rec(image_id, boxes, labels, difficult):
    n = len(boxes)
    return ImageRecord(image_id, Path(f"{image_id}.jpg"), (100, 100), np.array(boxes, np.float32).reshape(-1, 4),
                       np.array(labels, np.int64), np.array(difficult, bool), np.zeros(n, bool))


def dets(boxes, scores, labels):
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32),
                      np.array(labels, np.int64))


def test_counts_by_hand():
    records = [rec("a", [[0, 0, 50, 50], [60, 60, 90, 90]], [0, 1], [False, False]),
               rec("b", [[10, 10, 40, 40], [50, 0, 80, 30]], [0, 0], [False, True])]
    detections = {
        "a": dets([[0, 0, 50, 50], [1, 1, 50, 50], [60, 60, 90, 90]], [0.9, 0.8, -0.5], [0, 0, 1]),
        # b: a hit, a hit on a difficult object (neither), a miss placed nowhere, all of class 0
        "b": dets([[10, 10, 40, 40], [50, 0, 80, 30], [0, 60, 20, 80]], [0.7, 0.6, 0.1], [0, 0, 0]),
    }
    # above 0: class 0 -> TP (a), duplicate FP (a), TP (b), difficult (neither), FP (b); class 1 dropped
    pr = precision_recall_above(detections, records, 2, threshold=0.0)
    assert (pr.tp, pr.fp, pr.num_gt) == (2, 2, 3)
    assert pr.precision == 0.5 and pr.recall == 2 / 3
    low = precision_recall_above(detections, records, 2, threshold=-1.0)
    assert (low.tp, low.fp) == (3, 2)
    none = precision_recall_above(detections, records, 2, threshold=5.0)
    assert (none.tp, none.fp, none.precision, none.recall) == (0, 0, 1.0, 0.0)
