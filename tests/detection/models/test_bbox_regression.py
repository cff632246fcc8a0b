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


def test_the_chunked_fit_of_a_class_with_more_rows_than_dims_is_sklearns_ridge(tmp_path, monkeypatch):
    """A class with more samples than dimensions is fitted from its normal equations, a few rows at a
    time, from a memory map: the same regressors as sklearn's Ridge on all of them in memory."""
    from sklearn.linear_model import Ridge

    import detection.models.bbox_regression as br

    monkeypatch.setattr(br, "ROW_CHUNK", 37)  # several chunks, the last one short
    rng = np.random.default_rng(3)
    n, d = 300, 12
    x = (rng.normal(2.0, 1.0, (n, d))).astype(np.float16)  # far from centred: the intercept matters
    np.save(tmp_path / "x.npy", x)
    boxes = np.tile(np.asarray([[10, 10, 50, 60]], np.float32), (n, 1)) + rng.uniform(-4, 4, (n, 4)).astype(np.float32)
    gts = np.tile(np.asarray([[12, 8, 52, 63]], np.float32), (n, 1))
    labels, ious, cfg = np.zeros(n, np.int64), np.ones(n, np.float32), BBoxRegConfig(ridge_lambda=3.0)
    regs = fit_bbox_regressors(np.load(tmp_path / "x.npy", mmap_mode="r"), boxes, gts, labels, ious, 1, cfg, 0.5)
    t = encode(torch.as_tensor(boxes, dtype=torch.float64), torch.as_tensor(gts, dtype=torch.float64)).numpy()
    mean, std = t.mean(0), t.std(0)
    ref = Ridge(alpha=3.0).fit(x.astype(np.float64) * 0.5, (t - mean) / std)
    assert np.allclose(regs.weights[0], ref.coef_.T * std, rtol=1e-3, atol=1e-5)
    assert np.allclose(regs.bias[0], ref.intercept_ * std + mean, rtol=1e-3, atol=1e-5)
    # the in-memory path (rows <= dims) on the first 10 rows agrees with the chunked one's formula too
    few = fit_bbox_regressors(x[:10], boxes[:10], gts[:10], labels[:10], ious[:10], 1, cfg, 0.5)
    w, b = br._fit_one_chunked(x[:10], np.arange(10), 0.5, t[:10], cfg)
    assert np.allclose(few.weights[0], w, rtol=1e-3, atol=1e-5) and np.allclose(few.bias[0], b, rtol=1e-3, atol=1e-5)
