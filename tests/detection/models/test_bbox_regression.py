"""Per-class box regression: features that linearly determine the targets move boxes onto their GT."""

import numpy as np
import pytest
import torch

from data.boxes import box_iou, encode
from data.errors import InputError
from detection.models.bbox_regression import BBoxRegConfig, BBoxRegressors, fit_bbox_regressors, predict


def _jittered(rng, n, gt):
    """n proposals around one GT box (N, 4), and the (N, 4) GT repeated."""
    gts = np.repeat(np.asarray([gt], np.float32), n, 0)
    w, h = gt[2] - gt[0], gt[3] - gt[1]
    noise = rng.uniform(-0.1, 0.1, (n, 4)) * [w, h, w, h]
    return (gts + noise).astype(np.float32), gts


def _features(boxes, gts, rng, mix):
    """Features whose first 4 entries are a fixed linear mix of the true targets, then noise."""
    t = encode(torch.as_tensor(boxes), torch.as_tensor(gts)).numpy()
    return np.concatenate([t @ mix, rng.normal(0, 1, (len(t), 3))], 1).astype(np.float32)


def _iou(a, b):
    return np.diag(box_iou(torch.as_tensor(a), torch.as_tensor(b)).numpy())


def test_fitted_regressors_move_boxes_onto_their_gt():
    rng = np.random.default_rng(0)
    mix = [rng.normal(size=(4, 4)) + 3 * np.eye(4) for _ in range(2)]  # a different map per class
    gt = [[20, 30, 120, 90], [200, 50, 260, 200]]
    parts = [_jittered(rng, 80, gt[k]) for k in range(2)]
    feats = np.concatenate([_features(b, g, rng, mix[k]) for k, (b, g) in enumerate(parts)])
    boxes = np.concatenate([p[0] for p in parts])
    gts = np.concatenate([p[1] for p in parts])
    labels = np.repeat([0, 1], 80)
    regs = fit_bbox_regressors(feats, boxes, gts, labels, np.ones(160), 2,
                               BBoxRegConfig(ridge_lambda=1e-6), feature_scale=2.0)
    out = predict(regs, feats, boxes)  # (R, K, 4)
    assert out.shape == (160, 2, 4)
    refined = out[np.arange(160), labels]
    np.testing.assert_allclose(refined, gts, atol=0.05)
    # with the paper's lambda = 1000 the fit is shrunk but still improves every class on average
    regs = fit_bbox_regressors(feats, boxes, gts, labels, np.ones(160), 2, BBoxRegConfig(), 2.0)
    refined = predict(regs, feats, boxes)[np.arange(160), labels]
    for k in range(2):
        sel = labels == k
        assert _iou(refined[sel], gts[sel]).mean() > _iou(boxes[sel], gts[sel]).mean()


def test_min_iou_selects_training_proposals():
    rng = np.random.default_rng(1)
    mix = np.eye(4) * 5
    boxes, gts = _jittered(rng, 60, [20, 30, 120, 90])
    feats = _features(boxes, gts, rng, mix)
    # 20 more proposals with wrong "GT" and IoU 0.4: must not take part in the fit of class 0
    bad_boxes, _ = _jittered(rng, 20, [20, 30, 120, 90])
    bad_gts = bad_boxes + [40, 0, 40, 0]
    bad_feats = _features(bad_boxes, bad_boxes[::-1].copy(), rng, mix)
    labels = np.zeros(80, np.int64)
    labels[70:] = 1  # class 1 only has low-IoU proposals: it stays the identity
    ious = np.concatenate([np.full(60, 0.7), np.full(20, 0.4)]).astype(np.float32)
    regs = fit_bbox_regressors(np.concatenate([feats, bad_feats]), np.concatenate([boxes, bad_boxes]),
                               np.concatenate([gts, bad_gts]), labels, ious, 2,
                               BBoxRegConfig(min_iou=0.5, ridge_lambda=1e-6), 1.0)
    out = predict(regs, feats, boxes)
    np.testing.assert_allclose(out[:, 0], gts, atol=0.05)
    np.testing.assert_allclose(out[:, 1], boxes, atol=1e-4)


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    regs = BBoxRegressors(rng.normal(size=(3, 5, 4)).astype(np.float32),
                          rng.normal(size=(3, 4)).astype(np.float32), 0.5)
    regs.save(tmp_path / "bbox.npz")
    back = BBoxRegressors.load(tmp_path / "bbox.npz")
    np.testing.assert_array_equal(back.weights, regs.weights)
    np.testing.assert_array_equal(back.bias, regs.bias)
    assert back.feature_scale == 0.5
    with pytest.raises(InputError):
        BBoxRegressors.load(tmp_path / "missing.npz")


def test_bad_inputs_are_input_errors():
    f, b = np.zeros((3, 5), np.float32), np.zeros((3, 4), np.float32)
    with pytest.raises(InputError, match="labels"):
        fit_bbox_regressors(f, b, b, np.array([0, 1, 5]), np.ones(3), 2, BBoxRegConfig(), 1.0)
    with pytest.raises(InputError):
        fit_bbox_regressors(f, b[:2], b, np.zeros(3, np.int64), np.ones(3), 2, BBoxRegConfig(), 1.0)
    with pytest.raises(InputError):
        BBoxRegConfig(min_iou=0.0)
