"""Fitting classes in worker processes gives the SVMs of fitting them one after another, bit for bit."""

import numpy as np

from svm.config import SVMConfig
from svm.pool import FIT_BYTES_PER_ENTRY, SolverPool
from svm.solver import fit_class
from svm.train import train_svms
from tests.svm.test_svm_train import K, _scale, background, make_regions


def test_pool_fits_equal_serial_fits():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1, 1, (20, 5)).astype(np.float32), rng.normal(-1, 1, (60, 5)).astype(np.float32)
    cfg = SVMConfig(C=1.0)
    with SolverPool(2, min_entries=0) as pool:  # every fit in a worker
        futures = [pool.submit(pos, neg[i:], cfg, f"toy {i}") for i in range(3)]
        results = [f.result() for f in futures]
    for i, (w, b, neg_scores, stats) in enumerate(results):
        w1, b1, s1, stats1 = fit_class(pos, neg[i:], cfg, f"toy {i}")
        np.testing.assert_array_equal(w, w1)
        np.testing.assert_array_equal(neg_scores, s1)
        assert b == b1 and stats == stats1


def test_mining_with_workers_is_bit_identical_to_serial():
    images = [make_regions(i, extra=background(np.random.default_rng(i), 6)) for i in range(16)]
    cfg = SVMConfig(retrain_every=4, max_negatives_per_class=8)  # retrains often, evicts, caps
    ids = [str(i) for i in range(len(images))]
    runs = {}
    for workers in (1, 2):
        calls: list[str] = []

        def load(image_id: str, calls: list[str] = calls) -> object:
            calls.append(image_id)
            return images[int(image_id)]

        runs[workers] = (train_svms(ids, load, K, cfg, _scale(images), False, workers=workers,
                                      min_pooled_entries=0), calls)
    (serial, serial_calls), (pooled, pooled_calls) = runs[1], runs[2]
    assert serial_calls == pooled_calls == ids  # each image loaded once, in order
    np.testing.assert_array_equal(serial.weights, pooled.weights)
    np.testing.assert_array_equal(serial.bias, pooled.bias)
    assert serial.feature_scale == pooled.feature_scale


def test_small_fits_start_no_process():
    pos, neg = np.ones((2, 3), np.float32), -np.ones((4, 3), np.float32)
    with SolverPool(2, min_entries=100) as pool:
        assert pool.submit(pos, neg, SVMConfig(), "small").done()
        assert pool._executor is None


def test_fits_in_flight_are_bounded_by_the_workers_and_the_budget_with_the_same_results():
    rng = np.random.default_rng(1)
    pos, neg = rng.normal(1, 1, (20, 5)).astype(np.float32), rng.normal(-1, 1, (60, 5)).astype(np.float32)
    cfg = SVMConfig(C=1.0)
    one_fit = FIT_BYTES_PER_ENTRY * (pos.size + neg.size)
    for budget, most in ((None, 2), (one_fit + one_fit // 2, 1)):  # the workers bound; the budget's, tighter
        with SolverPool(2, min_entries=0, budget_bytes=budget) as pool:
            futures = [pool.submit(pos, neg[i:], cfg, f"toy {i}") for i in range(4)]
            results = [f.result() for f in futures]
        assert pool.peak_in_flight == most
        for i, (w, _, neg_scores, _) in enumerate(results):
            np.testing.assert_array_equal(w, fit_class(pos, neg[i:], cfg, f"toy {i}")[0])


def test_a_fit_larger_than_the_budget_still_runs():
    pos, neg = np.ones((2, 3), np.float32), -np.ones((4, 3), np.float32)
    with SolverPool(2, min_entries=0, budget_bytes=1) as pool:
        fits = [pool.submit(pos, neg, SVMConfig(), f"big {i}") for i in range(2)]
        assert all(np.isfinite(f.result()[1]) for f in fits) and pool.peak_in_flight == 1
