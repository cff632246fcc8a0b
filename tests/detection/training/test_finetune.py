"""Fine-tuning pieces: window labels by IoU band, mini-batches with a quarter positives."""

from pathlib import Path

import numpy as np
import torch

from data.records import ImageRecord
from detection.models.head import BACKGROUND
from detection.training.finetune import FinetuneConfig, sample_batch, window_labels
from detection.training.windows import build_windows


def record(boxes, labels, difficult=None):
    g = len(boxes)
    return ImageRecord("img", Path("img.jpg"), (100, 200), np.array(boxes, np.float32).reshape(-1, 4),
                       np.array(labels, np.int64), np.array(difficult or [False] * g), np.zeros(g, bool))


def test_window_labels_follow_the_iou_bands():
    rec = record([[0, 0, 100, 100]], [4])
    props = np.array([[0, 0, 100, 60], [0, 0, 100, 45], [0, 0, 100, 5], [0, 0, 100, 55]], np.float32)
    w = build_windows(rec, props, 5)  # IoUs: 1 (gt), .6, .45, .05, .55
    labels = window_labels(w, FinetuneConfig())
    assert labels.tolist() == [5, 5, BACKGROUND, -1, 5]


def test_batches_hold_a_quarter_positives():
    labels = torch.tensor([1] * 50 + [0] * 500 + [-1] * 20)
    idx = sample_batch(labels, FinetuneConfig(), np.random.default_rng(0))
    assert len(idx) == 128 and len(set(idx.tolist())) == 128
    assert (labels[idx] > 0).sum() == 32 and (labels[idx] == 0).sum() == 96
    few = sample_batch(torch.tensor([1] * 5 + [0] * 500), FinetuneConfig(), np.random.default_rng(0))
    assert (few < 5).sum() == 5 and len(few) == 128  # short of positives: negatives fill in
