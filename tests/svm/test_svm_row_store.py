"""The SVM stage's row store: entries in memory up to a budget, on disk past it, with the same rows."""

import numpy as np
import pytest

from svm.config import SVMConfig
from svm.row_store import RowStore, memory_budget_bytes
from svm.train import HardNegativeMiner, train_svms
from tests.svm.test_svm_train import K, _scale, background, make_regions


def _rows(n, d=3, start=0):
    return np.arange(start, start + n * d, dtype=np.float32).reshape(n, d)


def test_entries_past_the_budget_go_to_disk_and_come_back_the_same(tmp_path):
    store = RowStore(3, budget_bytes=_rows(2).nbytes, folder=tmp_path / "spill")
    store.put("a", _rows(2))  # fits exactly
    store.append("b", _rows(1, start=50))  # over the budget: on disk
    store.append("b", _rows(2, start=90))  # appended to its file
    assert store.ram_bytes == _rows(2).nbytes and store.disk_bytes == _rows(3).nbytes and store.spills == 1
    np.testing.assert_array_equal(store.get("a"), _rows(2))
    np.testing.assert_array_equal(store.get("b"), np.concatenate([_rows(1, start=50), _rows(2, start=90)]))
    assert store.rows("b") == 3 and "b" in store and store.rows("c") == 0
    store.drop("a")
    store.put("b", _rows(1))  # replaced: fits in memory again
    assert store.disk_bytes == 0 and store.ram_bytes == _rows(1).nbytes
    store.append("c", _rows(1))
    store.append("c", _rows(1))  # the entry outgrows the budget: all of it moves to disk
    assert store.ram_bytes == _rows(1).nbytes and store.rows("c") == 2 and store.disk_bytes == _rows(2).nbytes
    np.testing.assert_array_equal(store.get("c"), np.concatenate([_rows(1), _rows(1)]))
    store.close()
    assert not (tmp_path / "spill").exists()
    with pytest.raises(ValueError):
        store.append("d", np.zeros((1, 4), np.float32))


def test_taking_rows_reads_the_rows_a_whole_entry_read_gives(tmp_path):
    """A few rows of an entry (fine-tuning's batches): the same bytes from memory and from its file."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((7, 5)).astype(np.float16), rng.standard_normal((9, 5)).astype(np.float16)
    store = RowStore(5, budget_bytes=a.nbytes, folder=tmp_path / "spill", dtype=np.float16)
    store.put("a", a)
    store.put("b", b)  # past the budget: on disk
    assert store.spills == 1
    for key, rows in (("a", a), ("b", b)):
        index = np.array([6, 0, 3, 3]) if key == "a" else np.array([8, 1, 4])
        taken = store.take(key, index)
        assert taken.dtype == np.float16 and np.array_equal(taken.view(np.uint16), rows[index].view(np.uint16))
    assert store.take("b", np.array([], np.int64)).shape == (0, 5)
    with pytest.raises(IndexError):
        store.take("b", np.array([9]))
    store.close()


def test_no_budget_keeps_everything_in_memory():
    store = RowStore(3)
    for i in range(5):
        store.append("a", _rows(4))
    assert store.disk_bytes == 0 and store.rows("a") == 20 and store.get("a").shape == (20, 3)


def test_the_budget_is_the_flag_or_a_share_of_the_available_memory(monkeypatch):
    assert memory_budget_bytes(1.5) == 3 * 2**29
    monkeypatch.setattr("svm.row_store.available_memory_bytes", lambda: 8 * 2**30)
    assert memory_budget_bytes(None) == 4 * 2**30
    monkeypatch.setattr("svm.row_store.available_memory_bytes", lambda: None)
    assert memory_budget_bytes(None) is None


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])  # 2: fits in worker processes
def test_svms_trained_with_a_tiny_budget_equal_the_unbounded_ones_bit_for_bit(tmp_path, workers):
    """Retraining, eviction and the cap all run while most rows live on disk."""
    images = [make_regions(i, extra=background(np.random.default_rng(i), 6)) for i in range(16)]
    cfg, scale, ids = SVMConfig(retrain_every=4, max_negatives_per_class=7), _scale(images), [str(i) for i in range(16)]
    load = images.__getitem__
    unbounded = train_svms(ids, lambda s: load(int(s)), K, cfg, scale, False, workers=workers, min_pooled_entries=0)
    spill = tmp_path / "spill"
    tiny = train_svms(ids, lambda s: load(int(s)), K, cfg, scale, False, workers=workers, min_pooled_entries=0,
                      memory_budget=100, spill_dir=spill)
    np.testing.assert_array_equal(tiny.weights, unbounded.weights)
    np.testing.assert_array_equal(tiny.bias, unbounded.bias)
    assert not spill.exists()  # the spilled rows are deleted after the pass


def test_a_tiny_budget_really_spills_and_keeps_memory_under_it(tmp_path):
    images = [make_regions(i, extra=background(np.random.default_rng(i), 6)) for i in range(10)]
    budget = 3 * images[0].features.nbytes
    miner = HardNegativeMiner(K, SVMConfig(retrain_every=4), _scale(images), memory_budget=budget,
                              spill_dir=tmp_path / "spill")
    for i, regions in enumerate(images):
        miner.visit(i, str(i), regions)
        assert miner.store.ram_bytes <= budget
    assert miner.store.spills > 0 and miner.store.disk_bytes > 0 and any((tmp_path / "spill").iterdir())
    miner.finish()
    miner.close()
    assert not (tmp_path / "spill").exists()
