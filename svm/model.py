"""Trained per-class linear SVMs: scoring and feature scaling (saved by ``data.linear_model``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from data.errors import InputError
from data.linear_model import load_linear_model, save_linear_model


@dataclass(frozen=True)
class LinearSVMs:
    """One linear SVM per class, applied to features multiplied by ``feature_scale``.

    Attributes:
        weights: (D, K) float32.
        bias: (K,) float32.
        feature_scale: the factor that brings the features to the training mean norm (R-CNN: 20).
    """

    weights: np.ndarray
    bias: np.ndarray
    feature_scale: float

    @property
    def num_classes(self) -> int:
        return int(self.weights.shape[1])

    def score(self, features: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Scores of raw (unscaled) features. features: (R, D) -> (R, K) float32; a tensor is scored
        on its own device (detection keeps its windows on the GPU) and gives a tensor."""
        if isinstance(features, torch.Tensor):
            w = torch.as_tensor(self.weights, device=features.device)
            return (features.float() * self.feature_scale) @ w + torch.as_tensor(self.bias, device=features.device)
        x = np.asarray(features, dtype=np.float32) * np.float32(self.feature_scale)
        return x @ self.weights + self.bias

    def save(self, path: Path) -> None:
        """Write the model to ``path`` (.npz, atomically)."""
        save_linear_model(path, self.weights, self.bias, self.feature_scale)

    @classmethod
    def load(cls, path: Path) -> LinearSVMs:
        """Read a model written by :meth:`save`; InputError if it is missing, corrupt or malformed."""
        w, b, scale = load_linear_model(path, "SVM model")
        if w.ndim != 2 or b.shape != (w.shape[1],):
            raise InputError(path, f"SVM weights {w.shape} and bias {b.shape} do not fit together")
        return cls(w, b, scale)

def compute_feature_scale(sample: np.ndarray, target_norm: float = 20.0) -> float:
    """The factor that makes the mean L2 norm of ``sample``'s rows equal ``target_norm``.

    R-CNN (rcnn_scale_features / rcnn_feature_stats) estimates the mean norm on a sample of
    training windows and scales every feature by target / mean, so that one SVM C suits pool5,
    fc6 and fc7 alike.

    Args:
        sample: (N, D) raw features.
        target_norm: the wanted mean norm (R-CNN: 20).
    Returns:
        the scale factor.
    """
    if sample.ndim != 2 or sample.shape[0] == 0:
        raise InputError("feature sample", f"need a non-empty (N, D) array, got shape {sample.shape}")
    mean_norm = float(np.linalg.norm(sample.astype(np.float64), axis=1).mean())
    if not np.isfinite(mean_norm) or mean_norm <= 0:
        raise InputError("feature sample", f"mean feature norm is {mean_norm}; cannot scale")
    return target_norm / mean_norm
