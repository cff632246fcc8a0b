"""The one-pass hard-negative mining trainer on hand-made RegionSets (two classes, Gaussian features)."""

import numpy as np
import pytest

from data.errors import InputError
from svm.config import SVMConfig
from svm.model import compute_feature_scale
from svm.regions import RegionSet
from svm.train import HardNegativeMiner, train_svms

# --- synthetic images ----------------------------------------------------------------------

D = 6
K = 2
NUM_BACKGROUND = 8
# windows of every image: 0 = GT, 1 = a proposal on the GT (IoU 0.85), 2.. = background
GT_BOX = [10, 10, 60, 60]
NEAR_BOX = [12, 12, 62, 62]
BG_BOXES = [[100 + 30 * j, 100, 120 + 30 * j, 120] for j in range(NUM_BACKGROUND)]


def class_mean(k: int) -> np.ndarray:
    m = np.zeros(D, np.float32)
    m[k] = 3.0
    return m


def background(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(0, 0.3, (n, D)).astype(np.float32)
    x[:, 4] += 1.0
    return x


def make_regions(i: int, extra: np.ndarray | None = None, seed: int = 0) -> RegionSet:
    """Image i holds one object of class i % 2; ``extra`` (E, D) adds background windows."""
    rng = np.random.default_rng(seed * 1000 + i)
    c = i % K
    obj = class_mean(c) + rng.normal(0, 0.3, (2, D)).astype(np.float32)
    feats = [obj, background(rng, NUM_BACKGROUND)]
    boxes = [GT_BOX, NEAR_BOX] + BG_BOXES
    if extra is not None:
        feats.append(extra.astype(np.float32))
        boxes += [[400 + 30 * j, 300, 420 + 30 * j, 320] for j in range(len(extra))]
    features = np.concatenate(feats)
    r = len(boxes)
    gt_labels = np.full(r, -1, np.int64)
    gt_labels[0] = c
    overlaps = np.zeros((r, K), np.float32)
    overlaps[0, c], overlaps[1, c] = 1.0, 0.85
    return RegionSet(features, np.asarray(boxes, np.float32), gt_labels, overlaps)


def _scale(images):
    return compute_feature_scale(np.concatenate([r.features for r in images]))


def test_svms_separate_and_load_is_called_once_per_image():
    images = {str(i): make_regions(i) for i in range(12)}
    calls = []

    def load(image_id):
        calls.append(image_id)
        return images[image_id]

    model = train_svms(list(images), load, K, SVMConfig(retrain_every=10), _scale(images.values()), False)
    assert calls == list(images)
    for i in range(6):  # held-out images
        held = make_regions(i, seed=9)
        s = model.score(held.features)
        c = i % K
        assert s[0, c] > 0 > s[0, 1 - c]  # the object: its own class only
        assert (s[2:] < 0).all()  # background


def test_training_is_deterministic():
    images = [make_regions(i) for i in range(8)]
    cfg, scale = SVMConfig(retrain_every=10), _scale(images)
    a = train_svms([str(i) for i in range(8)], lambda s: images[int(s)], K, cfg, scale, False)
    b = train_svms([str(i) for i in range(8)], lambda s: images[int(s)], K, cfg, scale, False)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.bias, b.bias)


def test_easy_negative_evicted_after_first_training():
    easy = -3 * (class_mean(0) + class_mean(1))[None]  # far on the negative side of both classes
    images = [make_regions(0, extra=easy), make_regions(1)]
    miner = HardNegativeMiner(K, SVMConfig(retrain_every=5), _scale(images))
    miner.visit(0, "a", images[0])  # bootstrap: every negative is taken, then class 0 is trained
    easy_window = images[0].num_windows - 1
    assert [0, easy_window] not in miner.cache.keys(0).tolist()
    assert [0, easy_window] in miner.cache.keys(1).tolist()  # class 1 has no SVM yet: kept


def test_easy_negative_never_added_once_trained():
    images = [make_regions(i) for i in range(4)]
    easy = -3 * (class_mean(0) + class_mean(1))[None]
    late = make_regions(4, extra=easy)
    miner = HardNegativeMiner(K, SVMConfig(retrain_every=5), _scale(images))
    for i, r in enumerate(images):
        miner.visit(i, str(i), r)
    assert miner.weights.any(axis=0).all()  # both classes trained
    easy_scores = (late.features[-1] * miner.scale) @ miner.weights + miner.bias
    assert (easy_scores < -1.0001).all()  # it is a negative of both classes, but an easy one
    miner.visit(4, "4", late)
    for k in range(K):
        assert [4, late.num_windows - 1] not in miner.cache.keys(k).tolist()


def test_cache_stays_bounded():
    images = [make_regions(i, extra=background(np.random.default_rng(i), 6)) for i in range(30)]
    cfg = SVMConfig(retrain_every=4, max_negatives_per_class=5)
    miner = HardNegativeMiner(K, cfg, _scale(images))
    r = images[0].num_windows
    total_added = 0
    for i, regions in enumerate(images):
        before = [miner.cache.count(k) for k in range(K)]
        miner.visit(i, str(i), regions)
        total_added += sum(miner.cache.count(k) - before[k] for k in range(K))
        for k in range(K):
            assert miner.cache.count(k) <= cfg.max_negatives_per_class + cfg.retrain_every + r
        assert miner.cache.num_rows <= K * (cfg.max_negatives_per_class + cfg.retrain_every + r)
    assert miner.cache.num_rows < 30 * r / 4  # eviction really frees rows
    assert miner.finish().weights.shape == (D, K)


def test_bad_inputs_are_input_errors():
    bad = make_regions(0)
    bad = RegionSet(bad.features, bad.boxes[:-1], bad.gt_labels, bad.overlaps)
    with pytest.raises(InputError, match="image x"):
        train_svms(["x"], lambda _: bad, K, SVMConfig(), 1.0, False)
    only_class_0 = [make_regions(0), make_regions(2)]
    with pytest.raises(InputError, match="class 1 has no"):
        train_svms(["0", "2"], lambda s: only_class_0[int(s) // 2], K, SVMConfig(), 1.0, False)
    with pytest.raises(InputError):
        SVMConfig(C=0)


def test_classes_mined_apart_equal_classes_mined_together():
    """A distributed run mines each class on one rank: a subset must come out bit for bit."""
    images = [make_regions(i) for i in range(8)]
    cfg, scale, ids = SVMConfig(retrain_every=10), _scale(images), [str(i) for i in range(8)]
    together = train_svms(ids, lambda s: images[int(s)], K, cfg, scale, False)
    for k in range(K):
        alone = train_svms(ids, lambda s: images[int(s)], K, cfg, scale, False, classes=[k])
        np.testing.assert_array_equal(alone.weights[:, k], together.weights[:, k])
        assert alone.bias[k] == together.bias[k]
        others = [c for c in range(K) if c != k]
        assert not alone.weights[:, others].any() and not alone.bias[others].any()


def test_blas_runs_on_one_thread_during_the_pass_and_is_restored_after():
    """The pass's numpy products run on one BLAS thread, so that no spinning BLAS thread takes the cores
    ``load_regions`` computes features on (torch's, in the detector); the caller's setting comes back."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> set[int]:
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    images = [make_regions(i) for i in range(4)]
    seen = []

    def load(image_id):
        seen.append(blas_threads())
        return images[int(image_id)]

    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        train_svms([str(i) for i in range(4)], load, K, SVMConfig(retrain_every=10), _scale(images), False)
        assert blas_threads() == before
    assert seen and all(s == {1} for s in seen)
