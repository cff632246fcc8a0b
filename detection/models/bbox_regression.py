"""Per-class bounding-box regression on pool5 features (R-CNN appendix C, reused by SPP-net).

For each class k, a ridge regression maps the scaled pool5 feature of a proposal to the deltas
(dx, dy, dw, dh) = data.boxes.encode(proposal, matched GT), trained on the proposals whose
IoU with a GT of class k is >= ``min_iou``. Like R-CNN, features are scaled as for the SVMs and
the targets are normalised before the fit (R-CNN whitens them; we standardise each of the four
coordinates, as Fast R-CNN does), so that lambda = 1000 means the same for every coordinate. The
normalisation is folded back into the stored weights, so prediction is one affine map. Unlike
R-CNN's solver, the intercept is not penalised (sklearn Ridge centres the data).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
from sklearn.linear_model import Ridge

from data.boxes import decode, encode
from data.errors import InputError, check_config
from data.linear_model import load_linear_model, save_linear_model
from data.progress import track

log = logging.getLogger(__name__)
ROW_CHUNK = 4096  # rows read at once by the chunked fit (4096 x 16,000 float32: 260 MB)


@dataclass(frozen=True)
class BBoxRegConfig:
    min_iou: float = 0.5  # SPP-net: proposals with IoU >= 0.5 with a GT (R-CNN used 0.6)
    ridge_lambda: float = 1000.0  # R-CNN rcnn_train_bbox_regressor 'lambda'
    normalize_targets: bool = True  # R-CNN whitens the targets; we standardise them (see module doc)

    def __post_init__(self) -> None:
        check_config([
            (0 < self.min_iou <= 1, f"bbox.min_iou must lie in (0, 1], got {self.min_iou}"),
            (self.ridge_lambda > 0, f"bbox.ridge_lambda must be > 0, got {self.ridge_lambda}"),
        ])


@dataclass(frozen=True)
class BBoxRegressors:
    """Per-class linear box regressors: deltas = (features * feature_scale) @ weights[k] + bias[k].

    Attributes:
        weights: (K, D, 4) float32, target normalisation already folded in.
        bias: (K, 4) float32.
        feature_scale: the SVMs' feature scale.
    """

    weights: np.ndarray
    bias: np.ndarray
    feature_scale: float

    def save(self, path: Path) -> None:
        save_linear_model(path, self.weights, self.bias, self.feature_scale)

    @classmethod
    def load(cls, path: Path) -> BBoxRegressors:
        """Read regressors written by :meth:`save`; InputError if missing, corrupt or malformed."""
        w, b, scale = load_linear_model(path, "box-regression")
        if w.ndim != 3 or w.shape[2] != 4 or b.shape != (w.shape[0], 4):
            raise InputError(path, f"box-regression weights {w.shape} and bias {b.shape} do not fit")
        return cls(w, b, scale)

def _check_inputs(features: np.ndarray, boxes: np.ndarray, gt_boxes: np.ndarray, labels: np.ndarray,
                  ious: np.ndarray, num_classes: int) -> None:
    n = features.shape[0]
    where = "box-regression training data"
    if features.ndim != 2 or boxes.shape != (n, 4) or gt_boxes.shape != (n, 4):
        raise InputError(where, f"need features (N, D), boxes and gt_boxes (N, 4); got "
                         f"{features.shape}, {boxes.shape}, {gt_boxes.shape}")
    if labels.shape != (n,) or ious.shape != (n,):
        raise InputError(where, f"labels and ious must be ({n},), got {labels.shape}, {ious.shape}")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise InputError(where, f"labels must lie in 0..{num_classes - 1}")


def _target_scale(targets: np.ndarray, cfg: BBoxRegConfig) -> tuple[np.ndarray, np.ndarray]:
    """(4,) mean and std the (M, 4) targets are standardised by (0 and 1 without normalisation)."""
    mean, std = np.zeros(4), np.ones(4)
    if cfg.normalize_targets:
        mean, std = targets.mean(0), targets.std(0)
        std = np.where(std > 1e-6, std, 1.0)  # a constant coordinate (e.g. one sample) stays as is
    return mean, std


def _fit_one(x: np.ndarray, targets: np.ndarray, cfg: BBoxRegConfig) -> tuple[np.ndarray, np.ndarray]:
    """Ridge fit of (M, 4) targets on (M, D) scaled features -> weights (D, 4), bias (4,)."""
    mean, std = _target_scale(targets, cfg)
    ridge = Ridge(alpha=cfg.ridge_lambda, fit_intercept=True).fit(x, (targets - mean) / std)
    return ridge.coef_.T * std, ridge.intercept_ * std + mean


def _chunks(sel: np.ndarray) -> list[np.ndarray]:
    return [sel[i:i + ROW_CHUNK] for i in range(0, len(sel), ROW_CHUNK)]


def _fit_one_chunked(features: np.ndarray, sel: np.ndarray, scale: float, targets: np.ndarray,
                     cfg: BBoxRegConfig) -> tuple[np.ndarray, np.ndarray]:
    """The ridge fit of :func:`_fit_one` (intercept unpenalised: centred data) from its normal
    equations, (Xc^T Xc + lambda I) w = Xc^T yc, reading the rows ``sel`` of the (N, D) ``features``
    (an array, or rows read on demand) ROW_CHUNK at a time: D x D floats in memory instead of M x D, for a
    class with more samples than dimensions (VOC 2007's largest, at pool5's 16,000)."""
    mean, std = _target_scale(targets, cfg)
    y = (targets - mean) / std
    y_bar = y.mean(0)
    x_bar = np.zeros(features.shape[1])
    for part in _chunks(sel):
        x_bar += (features[part].astype(np.float64) * scale).sum(0)
    x_bar = (x_bar / len(sel)).astype(np.float32)
    gram = np.zeros((features.shape[1],) * 2, np.float32)
    xty = np.zeros((features.shape[1], 4))
    for i, part in zip(range(0, len(sel), ROW_CHUNK), _chunks(sel)):
        xc = features[part].astype(np.float32) * np.float32(scale) - x_bar  # (C, D)
        gram += xc.T @ xc
        xty += xc.T.astype(np.float64) @ (y[i:i + len(part)] - y_bar)
    gram[np.diag_indices_from(gram)] += np.float32(cfg.ridge_lambda)
    w = scipy.linalg.solve(gram, xty.astype(np.float32), assume_a="pos", overwrite_a=True)
    return w * std, (y_bar - x_bar @ w) * std + mean


def _mean_abs_residual(features: np.ndarray, sel: np.ndarray, scale: float, w: np.ndarray, b: np.ndarray,
                       targets: np.ndarray) -> float:
    """Mean |x w + b - target| over the rows ``sel`` (read ROW_CHUNK at a time)."""
    total = 0.0
    for i, part in zip(range(0, len(sel), ROW_CHUNK), _chunks(sel)):
        x = features[part].astype(np.float32) * np.float32(scale)
        total += float(np.abs(x @ w + b - targets[i:i + len(part)]).sum())
    return total / (4 * len(sel))


def fit_bbox_regressors(
    features: np.ndarray,
    boxes: np.ndarray,
    gt_boxes: np.ndarray,
    labels: np.ndarray,
    ious: np.ndarray,
    num_classes: int,
    cfg: BBoxRegConfig,
    feature_scale: float,
    progress: bool = False,
) -> BBoxRegressors:
    """Fit one ridge regressor per class (R-CNN appendix C).

    Args:
        features: (N, D) raw pool5 features of the proposals (an array, or any object with
            ``shape`` that returns rows for an index array, such as rows read from disk on demand:
            a class's rows are read when it is fitted, in chunks where it has more than D).
        boxes: (N, 4) the proposals. gt_boxes: (N, 4) each proposal's matched GT (highest IoU).
        labels: (N,) class of the matched GT. ious: (N,) IoU of each proposal with it.
        num_classes: K. cfg: the recipe. feature_scale: the SVMs' feature scale.
        progress: a tqdm bar over the classes (a class of VOC 2007 fits in minutes).
    Returns:
        the regressors; a class without any training proposal gets zero deltas (boxes unchanged).
    """
    _check_inputs(features, boxes, gt_boxes, labels, ious, num_classes)
    dim = features.shape[1]
    weights = np.zeros((num_classes, dim, 4), np.float32)
    bias = np.zeros((num_classes, 4), np.float32)
    for k in track(range(num_classes), desc="box regression", show=progress):
        sel = np.flatnonzero((labels == k) & (ious >= cfg.min_iou))
        if sel.size == 0:
            log.warning("box regression: class %d has no proposal with IoU >= %.2f; left as identity",
                        k, cfg.min_iou)
            continue
        src, dst = boxes[sel], gt_boxes[sel]
        if (src[:, 2:] <= src[:, :2]).any() or (dst[:, 2:] <= dst[:, :2]).any():
            raise InputError("box-regression training data", f"class {k} has an empty box")
        targets = encode(torch.as_tensor(src, dtype=torch.float64),
                         torch.as_tensor(dst, dtype=torch.float64)).numpy()  # (M, 4)
        if sel.size > dim:  # more rows than dimensions: the normal equations, D x D in memory
            w, b = _fit_one_chunked(features, sel, feature_scale, targets, cfg)
        else:  # at most D x D rows in memory (float32: half of float64's)
            w, b = _fit_one(features[sel].astype(np.float32) * np.float32(feature_scale), targets, cfg)
        weights[k], bias[k] = w, b
        residual = _mean_abs_residual(features, sel, feature_scale, weights[k], bias[k], targets)
        log.info("box regression class %d: %d proposals, mean |target| %.4f, mean |residual| %.4f",
                 k, sel.size, np.abs(targets).mean(), residual)
    return BBoxRegressors(weights, bias, float(feature_scale))


def predict_deltas(regs: BBoxRegressors, features: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Per-class deltas (dx, dy, dw, dh). features: (R, D) raw pool5 -> (R, K, 4) float32.

    A tensor is computed on its own device (a GPU at test time) and a tensor is returned; an array
    gives an array."""
    k, dim, _ = regs.weights.shape
    if features.ndim != 2 or features.shape[1] != dim:
        raise InputError("box regression", f"need features (R, {dim}), got {tuple(features.shape)}")
    if not isinstance(features, torch.Tensor):
        return predict_deltas(regs, torch.from_numpy(np.asarray(features, dtype=np.float32))).numpy()
    x = features.float()  # no copy of float32 input: (R, D) can be ~100 MB
    w = torch.as_tensor(regs.weights, device=x.device).transpose(0, 1).reshape(dim, k * 4)  # (D, K*4)
    bias = torch.as_tensor(regs.bias, device=x.device)
    # (x * s) @ w computed as (x @ w) * s: the scale goes on the small product, not on x
    return ((x @ w) * float(regs.feature_scale)).reshape(x.shape[0], k, 4) + bias  # (R, K, 4)


def apply_deltas(deltas: np.ndarray | torch.Tensor, boxes: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """(R, K, 4) deltas applied to (R, 4) boxes -> (R, K, 4) float32 boxes (not clipped); tensors in,
    a tensor out on their device, arrays in, an array out."""
    r, k, _ = deltas.shape
    if tuple(boxes.shape) != (r, 4):
        raise InputError("box regression", f"need boxes ({r}, 4), got {tuple(boxes.shape)}")
    if not isinstance(deltas, torch.Tensor):
        return apply_deltas(torch.from_numpy(np.asarray(deltas, dtype=np.float32)),
                            torch.from_numpy(np.asarray(boxes, dtype=np.float32))).numpy()
    src = boxes.float().repeat_interleave(k, 0)  # (R*K, 4), row-major
    return decode(deltas.float().reshape(r * k, 4), src).reshape(r, k, 4)


def predict(regs: BBoxRegressors, features: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Refine every box for every class.

    Args:
        regs: fitted regressors (K classes). features: (R, D) raw pool5 features. boxes: (R, 4).
    Returns:
        (R, K, 4) float32 refined boxes, one per class (not clipped to the image).
    """
    return apply_deltas(predict_deltas(regs, features), boxes)
