"""The box-regression check: its figures against per-sample loops, its sample selection, its learning curve."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from data.boxes import box_iou, decode, encode
from data.records import ImageRecord
from detection.models.bbox_regression import BBoxRegConfig, BBoxRegressors
from detection.pipeline.bbox_check import RegressionSamples, held_out_samples, learning_curve, regression_effect


def _samples(n=400, dim=6, num_classes=2, seed=0, noise=0.0):
    """Proposals around ground truths whose offsets are a linear function of the features (per class)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    labels = rng.integers(0, num_classes, n)
    true_w = np.random.default_rng(99).normal(scale=0.03, size=(num_classes, dim, 4))
    deltas = np.einsum("nd,ndk->nk", x, true_w[labels]) + rng.normal(scale=noise, size=(n, 4))
    xy = rng.uniform(0, 200, (n, 2))
    gt = np.concatenate([xy, xy + rng.uniform(40, 120, (n, 2))], 1).astype(np.float32)
    # the proposal p with encode(p, gt) = deltas: invert decode for the source box
    boxes = np.empty_like(gt)
    w, h = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    sw, sh = w / np.exp(deltas[:, 2]), h / np.exp(deltas[:, 3])
    cx, cy = gt[:, 0] + w / 2 - deltas[:, 0] * sw, gt[:, 1] + h / 2 - deltas[:, 1] * sh
    boxes[:] = np.stack([cx - sw / 2, cy - sh / 2, cx + sw / 2, cy + sh / 2], 1)
    ious = np.diagonal(box_iou(torch.as_tensor(boxes), torch.as_tensor(gt)).numpy()).copy()
    return RegressionSamples(x, boxes, gt, labels, ious)


def test_effect_matches_a_loop_over_the_samples():
    s = _samples(60)
    rng = np.random.default_rng(1)
    regs = BBoxRegressors(rng.normal(scale=0.05, size=(2, 6, 4)).astype(np.float32),
                          rng.normal(scale=0.02, size=(2, 4)).astype(np.float32), 0.5)
    got = regression_effect(regs, s)
    targets, residuals, before, after = [], [], [], []
    for i in range(len(s)):
        box, gt = torch.tensor(s.boxes[i:i + 1], dtype=torch.float64), torch.tensor(s.gt[i:i + 1], dtype=torch.float64)
        t = encode(box, gt)[0].numpy()
        d = (s.x[i].astype(np.float64) * 0.5) @ regs.weights[s.labels[i]] + regs.bias[s.labels[i]]
        moved = decode(torch.tensor(d[None]), box)
        targets.append(np.abs(t).mean())
        residuals.append(np.abs(t - d).mean())
        before.append(box_iou(box, gt).item())
        after.append(box_iou(moved, gt).item())
    assert got.target == pytest.approx(np.mean(targets), rel=1e-5)
    assert got.residual == pytest.approx(np.mean(residuals), rel=1e-4)
    assert got.iou_before == pytest.approx(np.mean(before), rel=1e-5)
    assert got.iou_after == pytest.approx(np.mean(after), rel=1e-4)
    assert got.good_after == pytest.approx(np.mean(np.array(after) >= 0.7))
    assert got.reduction == pytest.approx(1 - got.residual / got.target)


def test_the_learning_curve_generalises_better_with_more_samples():
    training, held = _samples(800, noise=0.01), _samples(300, seed=5, noise=0.01)
    cfg = BBoxRegConfig(ridge_lambda=1.0)
    curve = learning_curve(training, held, 1.0, 2, cfg, [0.02, 0.1, 1.0])
    assert [p.samples for p in curve] == [16, 80, 800]
    held_out = [p.held_out.reduction for p in curve]
    assert held_out[0] < held_out[1] < held_out[2] and held_out[2] > 0.8  # learnable: close to the truth
    assert held_out[2] <= curve[2].on_training.reduction + 0.05  # no better on new samples than on seen ones
    assert curve[2].held_out.iou_after > curve[2].held_out.iou_before


def test_held_out_samples_keep_near_proposals_of_non_difficult_objects(tmp_path):
    record = ImageRecord("a", tmp_path / "a.jpg", (100, 100),
                         np.array([[10, 10, 50, 50], [60, 60, 90, 90]], np.float32), np.array([1, 0]),
                         np.array([False, True]), np.array([False, False]))
    proposals = {"a": np.array([[12, 12, 50, 50], [62, 62, 90, 90], [0, 0, 100, 100], [10, 10, 52, 48]],
                               np.float32)}
    pool5 = lambda rec, boxes: boxes.sum(1, keepdim=True).repeat(1, 3)  # noqa: E731  a feature per window
    detector = SimpleNamespace(source=SimpleNamespace(pool5=pool5))
    s = held_out_samples(detector, [record], proposals, 0.5)
    # proposal 1 sits on the difficult object only, proposal 2 overlaps nothing by 0.5
    assert s.boxes.tolist() == proposals["a"][[0, 3]].tolist()
    assert s.gt.tolist() == [[10, 10, 50, 50]] * 2 and s.labels.tolist() == [1, 1]
    assert s.x[:, 0].tolist() == proposals["a"][[0, 3]].sum(1).tolist() and s.num_objects() == 1
    assert len(held_out_samples(detector, [record], {}, 0.5)) == 0
