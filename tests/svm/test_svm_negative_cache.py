"""The shared negative store: rows shared between classes, freed when no class uses them."""

import numpy as np

from svm.negative_cache import NegativeCache


def _features(image, r=6, d=3):
    return (np.arange(r * d, dtype=np.float32).reshape(r, d) + 100 * image)


def test_add_shares_rows_and_gathers_in_key_order():
    cache = NegativeCache(num_classes=2, dim=3)
    f0, f1 = _features(0), _features(1)
    assert cache.add(1, f1, [np.array([4, 2]), np.array([2])]) == [2, 1]
    assert cache.add(0, f0, [np.array([5]), np.array([], np.int64)]) == [1, 0]
    assert cache.num_rows == 3  # (1, 2) is shared by both classes
    assert cache.keys(0).tolist() == [[0, 5], [1, 2], [1, 4]]
    np.testing.assert_array_equal(cache.features(0), np.stack([f0[5], f1[2], f1[4]]))
    np.testing.assert_array_equal(cache.features(1), f1[[2]])
    assert cache.add(1, f1, [np.array([2]), np.array([2, 3])]) == [0, 1]  # duplicates skipped
    assert cache.count(0) == 3 and cache.count(1) == 2 and cache.num_rows == 4


def test_keep_frees_rows_only_when_no_class_uses_them():
    cache = NegativeCache(num_classes=2, dim=3)
    f = _features(0)
    cache.add(0, f, [np.array([0, 1, 2]), np.array([1])])
    cache.keep(0, np.array([2]))
    assert cache.keys(0).tolist() == [[0, 2]]
    assert cache.num_rows == 2  # row 0 freed, row 1 still used by class 1
    np.testing.assert_array_equal(cache.features(1), f[[1]])
    np.testing.assert_array_equal(cache.features(0), f[[2]])
    cache.keep(1, np.array([], np.int64))
    cache.keep(0, np.array([], np.int64))
    assert cache.num_rows == 0 and cache.nbytes == 0
