"""Window labelling, fine-tuning batches and the detection read-out, on hand-made boxes."""

from pathlib import Path

import numpy as np
import pytest
import torch

from data.errors import InputError
from data.records import ImageRecord
from detection.config import FinetuneConfig
from detection.config import TestConfig as DetTestConfig
from detection.detect import _select
from detection.finetune import sample_batch, window_labels
from detection.head import BACKGROUND, FcHead, truncate_svd
from detection.windows import build_windows


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


def test_select_nms_per_class_threshold_and_cap():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float32)
    per_class = boxes[:, None, :].repeat(1, 2, 1)  # (R, K=2, 4)
    scores = torch.tensor([[0.9, 0.8], [0.7, -2.0], [-3.0, 0.1]])
    det = _select(per_class, scores, (100, 100), DetTestConfig(score_threshold=-1.5, max_per_image=10))
    # class 0: boxes 0 and 1 overlap (IoU .68 > .3): only 0 survives; box 2 is below threshold.
    # class 1: box 0 (.8) and box 2 (.1); box 1 is below threshold.
    assert sorted((int(k), round(float(s), 3)) for k, s in zip(det.labels, det.scores)) == [(0, 0.9), (1, 0.1), (1, 0.8)]
    assert det.scores.tolist() == sorted(det.scores.tolist(), reverse=True)
    capped = _select(per_class, scores, (100, 100), DetTestConfig(max_per_image=1))
    assert len(capped) == 1 and capped.scores[0] == np.float32(0.9)


def test_select_clips_to_the_image():
    per_class = torch.tensor([[[-5.0, -5.0, 150.0, 60.0]]])
    det = _select(per_class, torch.tensor([[1.0]]), (50, 100), DetTestConfig())
    assert det.boxes.tolist() == [[0.0, 0.0, 100.0, 50.0]]


def test_truncated_svd_keeps_the_layer_at_full_rank():
    head = FcHead(40, 30, 20, 3)
    x = torch.randn(5, 40)
    full = head.features(x, "fc6")
    head.fc6 = truncate_svd(head.fc6, 30)
    assert torch.allclose(head.features(x, "fc6"), full, atol=1e-5)


def test_int8_head_is_close_to_float32_and_refused_on_gpu():
    from detection.head import apply_test_levers, quantize_int8

    torch.manual_seed(0)
    head = FcHead(64, 48, 32, 3).eval()
    x = torch.relu(torch.randn(200, 64))
    full = head.features(x, "fc7")
    q = quantize_int8(head)
    assert type(q.fc6).__module__.startswith("torch.ao.nn.quantized")  # really int8 layers
    approx = q.features(x, "fc7")
    assert ((approx - full).norm() / full.norm()).item() < 0.05
    assert head.fc6.weight.dtype == torch.float32  # the float head is left as it was
    with pytest.raises(InputError, match="CPU"):
        apply_test_levers(head, None, None, True, torch.device("cuda"))
