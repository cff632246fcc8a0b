"""Training one class's linear SVM with liblinear (through sklearn) and checking what it returns."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from svm.config import SVMConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitStats:
    """What R-CNN logs after each SVM update.

    Attributes:
        num_pos, num_neg: training set sizes.
        objective: liblinear's primal objective, reg + pos_loss + neg_loss.
        reg: 0.5 * |w|^2 with the bias weight (b / bias_multiplier) included, as liblinear has it.
        pos_loss, neg_loss: C * weighted hinge losses of positives and negatives.
        pos_above: fraction of positives with score >= 1. neg_below: of negatives with score <= -1.
        converged: False when liblinear stopped at max_iter.
    """

    num_pos: int
    num_neg: int
    objective: float
    reg: float
    pos_loss: float
    neg_loss: float
    pos_above: float
    neg_below: float
    converged: bool = True


def check_scores(ours: np.ndarray, solver: np.ndarray, where: str, atol: float = 1e-3) -> None:
    """Raise RuntimeError unless our recomputed scores match the solver's decision values.

    Guards against a wrong sign, a swapped class order or a mis-scaled intercept when the solver's
    coefficients are copied into our model (py-faster-rcnn's SVM trainer does the same check).

    Args:
        ours: (M,) scores from the weights we keep. solver: (M,) the solver's own decision values.
        where: names the model in the error.
        atol: tolerance, absolute and relative (float32 products over D terms).
    """
    if ours.shape != solver.shape or not np.allclose(ours, solver, rtol=atol, atol=atol):
        worst = float(np.max(np.abs(ours - solver))) if ours.shape == solver.shape else float("nan")
        raise RuntimeError(
            f"{where}: recomputed SVM scores differ from the solver's (max |diff| {worst:.3g})")


def objective_stats(scores: np.ndarray, num_pos: int, w: np.ndarray, b: float, cfg: SVMConfig) -> FitStats:
    """Primal objective and margin statistics; the first ``num_pos`` of (M,) ``scores`` are positives."""
    pos, neg = scores[:num_pos].astype(np.float64), scores[num_pos:].astype(np.float64)
    reg = 0.5 * (float(np.dot(w.astype(np.float64), w)) + (b / cfg.bias_multiplier) ** 2)
    pos_loss = cfg.C * cfg.pos_weight * float(np.maximum(0.0, 1.0 - pos).sum())
    neg_loss = cfg.C * float(np.maximum(0.0, 1.0 + neg).sum())
    return FitStats(num_pos, int(neg.size), reg + pos_loss + neg_loss, reg, pos_loss, neg_loss,
                    float((pos >= 1).mean()) if pos.size else 0.0,
                    float((neg <= -1).mean()) if neg.size else 0.0)


def fit_class(positives: np.ndarray, negatives: np.ndarray, cfg: SVMConfig, name: str
              ) -> tuple[np.ndarray, float, np.ndarray, FitStats]:
    """Train one class's SVM: liblinear's L1-loss (hinge) dual solver, like R-CNN's ``-s 3``.

    Memory: besides the (P + M, D) float32 training matrix, sklearn makes a float64 copy and
    liblinear its own sparse copy (16 bytes per non-zero), so at most about 28 bytes per entry.

    Args:
        positives: (P, D) float32 scaled features. negatives: (M, D) float32 scaled features.
        cfg: the recipe. name: names the class in logs and errors.
    Returns:
        weights (D,) float32, bias, the (M,) float32 scores of the negatives, and the stats
        (not logged here: see :func:`log_fit`).
    """
    x = np.concatenate([positives, negatives]).astype(np.float32, copy=False)
    y = np.concatenate([np.ones(len(positives), np.int64), -np.ones(len(negatives), np.int64)])
    clf = LinearSVC(C=cfg.C, loss="hinge", dual=True, class_weight={1: cfg.pos_weight, -1: 1.0},
                    intercept_scaling=cfg.bias_multiplier, fit_intercept=True, tol=cfg.tol,
                    max_iter=cfg.max_iter, random_state=cfg.seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(x, y)
    converged = not any(issubclass(c.category, ConvergenceWarning) for c in caught)
    if list(clf.classes_) != [-1, 1]:
        raise RuntimeError(f"{name}: unexpected SVM classes {clf.classes_}")
    w = clf.coef_[0].astype(np.float32)  # coef_ belongs to classes_[1], the positives
    b = np.float32(clf.intercept_[0])
    scores = x @ w + b
    check_scores(scores, clf.decision_function(x), name)
    stats = objective_stats(scores, len(positives), w, float(b), cfg)
    return w, float(b), scores[len(positives):], dataclasses.replace(stats, converged=converged)


def log_fit(name: str, stats: FitStats, cfg: SVMConfig) -> None:
    """Log one fit the way R-CNN does; done by the caller, since fits may run in worker processes."""
    if not stats.converged:
        log.warning("%s: liblinear did not converge in %d iterations", name, cfg.max_iter)
    log.info("%s: %d pos, %d neg, objective %.4f = %.4f reg + %.4f pos + %.4f neg; "
             "pos >= 1: %.3f, neg <= -1: %.3f", name, stats.num_pos, stats.num_neg, stats.objective,
             stats.reg, stats.pos_loss, stats.neg_loss, stats.pos_above, stats.neg_below)
