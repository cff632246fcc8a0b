"""Linear SVMs on whole-image vectors, one per class against the rest (SPP-net sec. 3.2 and 3.3).

SPP-net classifies VOC 2007 and Caltech101 images without fine-tuning: one vector per image from
the frozen network, then linear SVMs (sec. 3.2: "We l2-normalize the features for SVM training";
no data augmentation). Each class's SVM is trained on its positives against every other image;
images a class marks as ignored (VOC's difficult-only images, label 0) are left out of that class's
training, as the devkit leaves them out of its scoring. A multi-class decision (Caltech101) is the
class of the highest score.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from data.errors import check_config
from svm.solver import check_scores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageSVMConfig:
    """The whole-image SVMs."""

    # SPP-net sec. 3.2: "We l2-normalize the features for SVM training" (and at test time, so both
    # sides see vectors of norm 1).
    l2_normalise: bool = True
    # The paper states no C for these SVMs. On vectors of norm 1 a C does not depend on the trunk's
    # feature length or scale; 1 is liblinear's default. MobileNetV2 pool5 at 224 (2026-12-07, 2-core
    # CPU): C 0.1 / 1 / 10 gave mAP 42.7 / 56.9 / 55.7 on a voc07-preset set (120 trainval, 80 test)
    # and mean class accuracy 49.8 / 51.3 / 51.8 on the embedded folder (40 per class, 10 splits).
    C: float = 1.0
    max_iter: int = 10000  # liblinear's iterations; a few hundred images converge in far fewer

    def __post_init__(self) -> None:
        check_config([(self.C > 0, "--C must be > 0"), (self.max_iter >= 1, "max_iter must be >= 1")])


@dataclass(frozen=True)
class ImageSVMs:
    """K linear SVMs: score = x @ weights.T + bias on (l2-normalised) vectors.

    Attributes:
        weights: (K, D) float32.
        bias: (K,) float32.
        l2_normalise: whether inputs are l2-normalised before scoring.
    """

    weights: np.ndarray
    bias: np.ndarray
    l2_normalise: bool

    def scores(self, x: np.ndarray) -> np.ndarray:
        """(N, D) vectors -> (N, K) scores."""
        x = l2_normalise(x) if self.l2_normalise else np.asarray(x, np.float32)
        return x @ self.weights.T + self.bias


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, D) float32 rows of norm 1 (an all-zero row stays zero)."""
    x = np.asarray(x, np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _fit_one(x: np.ndarray, y: np.ndarray, cfg: ImageSVMConfig, seed: int, name: str) -> tuple[np.ndarray, float]:
    """One class's hinge-loss SVM on (M, D) ``x`` and (M,) labels +-1: (D,) weights and the bias."""
    clf = LinearSVC(C=cfg.C, loss="hinge", dual=True, max_iter=cfg.max_iter, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(x, y)
    if any(issubclass(c.category, ConvergenceWarning) for c in caught):
        log.warning("%s: liblinear stopped at max_iter %d before converging", name, cfg.max_iter)
    w, b = clf.coef_[0].astype(np.float32), float(clf.intercept_[0])
    check_scores(x @ w + b, clf.decision_function(x), name)
    return w, b


def fit_one_vs_rest(x: np.ndarray, targets: np.ndarray, cfg: ImageSVMConfig, seed: int = 0) -> ImageSVMs:
    """Train one SVM per class.

    Args:
        x: (N, D) image vectors.
        targets: (N, K) int, 1 positive, -1 negative, 0 left out of that class's training.
        seed: liblinear's random order of the dual coordinates.
    Raises:
        ValueError: a class has no positive or no negative image to train on.
    """
    x = l2_normalise(x) if cfg.l2_normalise else np.asarray(x, np.float32)
    weights, bias = np.zeros((targets.shape[1], x.shape[1]), np.float32), np.zeros(targets.shape[1], np.float32)
    for k in range(targets.shape[1]):
        used = targets[:, k] != 0
        y = targets[used, k].astype(np.int64)
        if not ((y > 0).any() and (y < 0).any()):
            raise ValueError(
                f"class {k} has {int((y > 0).sum())} positive and {int((y < 0).sum())} negative "
                "training images; an SVM needs both"
            )
        weights[k], bias[k] = _fit_one(x[used], y, cfg, seed, f"image SVM of class {k}")
    return ImageSVMs(weights, bias, cfg.l2_normalise)


def one_hot_targets(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(N,) class ids -> (N, K) int8 targets: 1 for the image's class, -1 for every other."""
    out = np.full((len(labels), num_classes), -1, np.int8)
    out[np.arange(len(labels)), labels] = 1
    return out
