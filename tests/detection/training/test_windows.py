"""Labelled windows of one image: ground truths first, overlaps per class, difficult objects."""

from pathlib import Path

import numpy as np
import torch

from data.records import ImageRecord
from detection.training.windows import build_windows


def record(boxes, labels, difficult=None):
    g = len(boxes)
    return ImageRecord("img", Path("img.jpg"), (100, 200), np.array(boxes, np.float32).reshape(-1, 4),
                       np.array(labels, np.int64), np.array(difficult or [False] * g), np.zeros(g, bool))


def test_windows_put_non_difficult_gt_first():
    rec = record([[0, 0, 10, 10], [50, 50, 90, 90]], [2, 1], difficult=[False, True])
    props = np.array([[0, 0, 10, 20], [50, 50, 90, 90], [150, 0, 190, 40]], np.float32)
    w = build_windows(rec, props, num_classes=3)
    assert len(w) == 4  # one non-difficult GT + three proposals
    assert w.gt_labels.tolist() == [2, -1, -1, -1]
    assert torch.allclose(w.overlaps[:, 2], torch.tensor([1.0, 0.5, 0.0, 0.0]))
    # the difficult object still shields its window from being a negative of class 1
    assert w.overlaps[2, 1] == 1.0 and w.gt_class[2] == 1
    assert w.max_iou[3] == 0.0
