"""LinearSVMs scoring, saving and the feature scale."""

import numpy as np
import pytest

from data.errors import InputError
from svm.model import LinearSVMs, compute_feature_scale


def test_score_formula():
    m = LinearSVMs(np.array([[1, 0], [0, 2]], np.float32), np.array([0.5, -1], np.float32), 2.0)
    out = m.score(np.array([[1, 1], [3, 0]], np.float32))
    np.testing.assert_allclose(out, [[2.5, 3.0], [6.5, -1.0]])


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    m = LinearSVMs(rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32), 0.37)
    m.save(tmp_path / "svm.npz")
    back = LinearSVMs.load(tmp_path / "svm.npz")
    np.testing.assert_array_equal(back.weights, m.weights)
    np.testing.assert_array_equal(back.bias, m.bias)
    assert back.feature_scale == m.feature_scale
    with pytest.raises(InputError, match="missing"):
        LinearSVMs.load(tmp_path / "nope.npz")


def test_corrupt_model_is_reported_and_kept(tmp_path):
    """A trained model is the user's: unreadable means a one-line error, never a deleted file."""
    path = tmp_path / "svms.npz"
    path.write_bytes(b"PK\x03\x04 half a zip")
    with pytest.raises(InputError, match="unreadable") as err:
        LinearSVMs.load(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert path.read_bytes() == b"PK\x03\x04 half a zip"


def test_feature_scale_hand_checked():
    sample = np.array([[3, 4], [0, 6]], np.float32)  # norms 5 and 6, mean 5.5
    assert compute_feature_scale(sample, target_norm=11.0) == pytest.approx(2.0)
    with pytest.raises(InputError):
        compute_feature_scale(np.zeros((2, 3), np.float32))
