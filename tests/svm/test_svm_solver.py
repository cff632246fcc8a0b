"""One class's liblinear fit, the recomputed-score check and the objective."""

import numpy as np
import pytest

from svm.config import SVMConfig
from svm.solver import check_scores, fit_class, objective_stats


def _data():
    rng = np.random.default_rng(1)
    pos = (rng.normal(0, 0.5, (20, 4)) + [4, 0, 0, 0]).astype(np.float32)
    neg = (rng.normal(0, 0.5, (60, 4)) + [0, 4, 0, 0]).astype(np.float32)
    return pos, neg


def test_fit_separates_and_scores_match():
    pos, neg = _data()
    w, b, neg_scores, stats = fit_class(pos, neg, SVMConfig(C=1.0), "toy")
    assert (pos @ w + b > 0).all() and (neg_scores < 0).all()
    np.testing.assert_allclose(neg_scores, neg @ w + b, rtol=1e-6, atol=1e-6)
    assert stats.num_pos == 20 and stats.num_neg == 60
    assert stats.pos_above > 0.9 and stats.neg_below > 0.9


def test_check_scores_fires_on_a_wrong_bias():
    pos, neg = _data()
    w, b, neg_scores, _ = fit_class(pos, neg, SVMConfig(C=1.0), "toy")
    check_scores(neg @ w + b, neg_scores, "toy")
    with pytest.raises(RuntimeError, match="differ"):
        check_scores(neg @ w + (b + 0.05), neg_scores, "toy")
    with pytest.raises(RuntimeError):
        check_scores(-(neg @ w + b), neg_scores, "toy")  # a sign flip


def test_objective_hand_checked():
    cfg = SVMConfig(C=0.1, pos_weight=2.0, bias_multiplier=10.0)
    s = objective_stats(np.array([2.0, 0.5, -2.0, 0.0]), 2, np.array([3.0, 4.0]), 10.0, cfg)
    # reg 0.5 * (9 + 16 + (10/10)^2) = 13; pos 0.1 * 2 * 0.5 = 0.1; neg 0.1 * 1 = 0.1
    assert s.reg == pytest.approx(13.0) and s.pos_loss == pytest.approx(0.1)
    assert s.neg_loss == pytest.approx(0.1) and s.objective == pytest.approx(13.2)
    assert s.pos_above == 0.5 and s.neg_below == 0.5
