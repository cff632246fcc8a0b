"""Fine-tuning pieces: window labels by IoU band, mini-batches with a quarter positives."""

from pathlib import Path

import numpy as np
import pytest
import torch

from data.errors import InputError
from data.records import ImageRecord
from detection.models.head import BACKGROUND, FcHead
from detection.training.finetune import FinetuneConfig, finetune, sample_batch, window_labels
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


@pytest.mark.parametrize("corrupt, problem", [
    (lambda p: p.write_bytes(b"garbage, not a checkpoint"), "fine-tuning checkpoint file is unreadable"),
    (lambda p: torch.save({"head": {}, "step": torch.tensor(3)}, p), "fine-tuning checkpoint does not fit"),
])
def test_a_corrupt_checkpoint_is_reported_by_name_and_left_alone(tmp_path, corrupt, problem):
    ckpt = tmp_path / "finetune_ckpt.pt"
    corrupt(ckpt)
    before = ckpt.read_bytes()
    head = FcHead(10, 8, 8, 2, 0.5)
    with pytest.raises(InputError, match=problem) as err:
        finetune(head, [], [], None, FinetuneConfig(), 0, ckpt, progress=False)
    assert str(ckpt) in str(err.value) and ckpt.read_bytes() == before
