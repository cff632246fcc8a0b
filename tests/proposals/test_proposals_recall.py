"""Recall of hand-made proposals against hand-made ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from proposals.recall import best_overlaps, proposal_recall


def test_best_overlaps_by_hand():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    props = np.array([[0, 0, 10, 5], [20, 20, 30, 30], [100, 100, 110, 110]], np.float32)
    # gt 0: best is the half box, IoU 50/100; gt 1: exact match
    assert np.allclose(best_overlaps(props, gt), [0.5, 1.0])
    assert np.array_equal(best_overlaps(np.zeros((0, 4)), gt), [0, 0])
    assert best_overlaps(props, np.zeros((0, 4))).shape == (0,)


def test_recall_counts_non_difficult_gt_and_skips_failed_images(make_record):
    gt_a = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], np.float32)
    a = make_record("a", Path("a.png"), boxes=gt_a, difficult=[False, False, True])
    b = make_record("b", Path("b.png"), boxes=np.array([[0, 0, 100, 100]], np.float32))
    failed = make_record("c", Path("c.png"), boxes=np.array([[0, 0, 5, 5]], np.float32))
    proposals = {
        # a: gt0 covered at IoU 0.8 (box 0..10 x 0..8), gt1 at 0.6 (20..30 x 20..26), difficult gt ignored
        "a": np.array([[0, 0, 10, 8], [20, 20, 30, 26], [40, 40, 50, 50]], np.float32),
        # b: one box of IoU 0.49 only (0..70 x 0..70 = 4900 / 10000)
        "b": np.array([[0, 0, 70, 70]], np.float32),
    }
    report = proposal_recall([a, b, failed], proposals)
    assert report.images == 2 and report.num_gt == 3
    assert report.recall[0.5] == pytest.approx(2 / 3)
    assert report.recall[0.7] == pytest.approx(1 / 3)
    assert report.mean_boxes == pytest.approx(2.0)
