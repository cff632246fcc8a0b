"""Whole-image linear SVMs, one per class against the rest, on l2-normalised vectors."""

from __future__ import annotations

import numpy as np
import pytest

from svm.image_svm import ImageSVMConfig, fit_one_vs_rest, l2_normalise, one_hot_targets


def _clusters(n=60, k=3, d=8, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % k
    centres = rng.normal(size=(k, d)) * 3
    return (centres[labels] + rng.normal(size=(n, d)) + 10).astype(np.float32), labels  # + 10: not centred


def test_l2_normalise_gives_rows_of_norm_one_and_keeps_a_zero_row():
    x = np.array([[3, 4], [0, 0], [1e-3, 0]], np.float32)
    out = l2_normalise(x)
    assert np.allclose(out, [[0.6, 0.8], [0, 0], [1, 0]])


def test_one_vs_rest_separates_clusters_and_scores_are_the_linear_functions():
    x, labels = _clusters()
    svms = fit_one_vs_rest(x, one_hot_targets(labels, 3), ImageSVMConfig())
    scores = svms.scores(x)
    assert scores.shape == (60, 3) and (scores.argmax(1) == labels).mean() > 0.95
    assert np.allclose(scores, l2_normalise(x) @ svms.weights.T + svms.bias, atol=1e-5)
    assert np.allclose(svms.scores(x * 7), scores, atol=1e-4)  # normalised: the vectors' scale is gone


def test_ignored_images_are_left_out_of_their_class_only():
    x, labels = _clusters()
    targets = one_hot_targets(labels, 3)
    outlier = np.vstack([x, np.full((1, x.shape[1]), -50, np.float32)])
    marked = np.vstack([targets, [[0, -1, -1]]]).astype(np.int8)  # ignored by class 0, a negative of 1 and 2
    with_outlier = fit_one_vs_rest(outlier, marked, ImageSVMConfig())
    without = fit_one_vs_rest(x, targets, ImageSVMConfig())
    np.testing.assert_allclose(with_outlier.weights[0], without.weights[0], atol=1e-6)
    assert not np.allclose(with_outlier.weights[1], without.weights[1], atol=1e-6)


def test_a_class_without_negatives_is_refused():
    x, labels = _clusters(n=6)
    targets = one_hot_targets(labels, 3)
    targets[:, 0] = 1
    with pytest.raises(ValueError, match="class 0 has 6 positive and 0 negative"):
        fit_one_vs_rest(x, targets, ImageSVMConfig())
