"""Hard-negative selection, de-duplication and eviction, against hand-checked cases and a slow loop."""

import numpy as np
import torch

from data.boxes import box_iou
from svm.mining import dedupe_negatives, hard_negatives, negatives_to_keep


def _slow_dedupe(boxes, scores, thr):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    iou = box_iou(torch.tensor(boxes), torch.tensor(boxes)).numpy()
    kept = []
    for i in order:
        if all(iou[i, j] <= thr for j in kept):
            kept.append(i)
    return sorted(kept)


def test_dedupe_hand_made_boxes():
    boxes = np.array([[0, 0, 10, 10],     # A, IoU with B = 100/110 = 0.91
                      [0, 0, 10, 11],     # B, the hardest
                      [0, 0, 10, 13.5],   # C, IoU with B = 110/135 = 0.81
                      [20, 20, 30, 30],   # D, far away
                      [20, 20, 30, 36]],  # E, IoU with D = 100/160 = 0.62: kept
                     np.float32)
    scores = np.array([0.5, 0.9, 0.1, -0.5, -0.6], np.float32)
    assert dedupe_negatives(boxes, scores, 0.7).tolist() == [1, 3, 4]


def test_dedupe_ties_keep_the_earlier_window():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 11], [0, 0, 10, 10.5]], np.float32)
    assert dedupe_negatives(boxes, np.zeros(3, np.float32), 0.7).tolist() == [0]
    assert dedupe_negatives(boxes[::-1].copy(), np.zeros(3, np.float32), 0.7).tolist() == [0]


def test_dedupe_matches_slow_loop():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (60, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (60, 2))], 1).astype(np.float32)
    scores = rng.integers(-3, 3, 60).astype(np.float32)  # many ties on purpose
    expected = _slow_dedupe(boxes, scores.tolist(), 0.7)
    assert dedupe_negatives(boxes, scores, 0.7).tolist() == expected
    assert dedupe_negatives(boxes[:0], scores[:0], 0.7).tolist() == []


def test_hard_negatives_thresholds():
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(5)], np.float32)  # disjoint
    overlaps = np.array([0.0, 0.29, 0.3, 0.1, 0.0], np.float32)
    scores = np.array([-1.0, 0.5, 2.0, -1.0002, -1.00005], np.float32)
    # 2: overlap 0.3 is not < 0.3; 3: easy (score <= -1.0001); 0, 1, 4: hard negatives
    assert hard_negatives(scores, overlaps, boxes, 0.3, -1.0001, 0.7).tolist() == [0, 1, 4]


def test_hard_negatives_are_deduped():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 11], [50, 50, 60, 60]], np.float32)
    out = hard_negatives(np.array([0.0, 1.0, 0.0]), np.zeros(3), boxes, 0.3, -1.0001, 0.7)
    assert out.tolist() == [1, 2]


def test_negatives_to_keep_evicts_easy_and_caps():
    scores = np.array([-1.3, -1.1, 0.2, -1.2, 0.5, -2.0], np.float32)
    assert negatives_to_keep(scores, -1.2, 10).tolist() == [1, 2, 3, 4]
    assert negatives_to_keep(scores, -1.2, 2).tolist() == [2, 4]  # the two hardest, in order
