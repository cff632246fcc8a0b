"""R-CNN's pool5 disk cache: the source's numbers, read back exactly, keyed by what produced them."""

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from data.records import ImageRecord
from detection.features.rcnn_cache import CachedRCNNSource
from detection.features.rcnn_source import RCNNSource
from detection.models.backbones import TrunkInfo

INFO = TrunkInfo("tiny", 2, 4, 32, 1.5)
LEVELS = (4, 2, 1)
CPU = torch.device("cpu")
BOXES = torch.tensor([[10.0, 5.0, 50.0, 40.0], [0.0, 0.0, 80.0, 60.0], [70.0, 50.0, 79.0, 59.0],
                      [3.5, 7.25, 33.0, 41.0]])


def _record(tmp_path, name="a", seed=1):
    image = np.random.default_rng(seed).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    path = tmp_path / f"{name}.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return ImageRecord(name, path, (60, 80), np.zeros((0, 4), np.float32), np.zeros(0, np.int64),
                       np.zeros(0, bool), np.zeros(0, bool))


def _trunk(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 2, 4, stride=4), nn.ReLU()).eval()


def _cached(root, trunk, dtype="float32"):
    return CachedRCNNSource(RCNNSource(trunk, INFO, LEVELS, 4, 2, CPU), root, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_cached_vectors_are_the_sources_and_are_read_back_exactly(tmp_path, dtype):
    record, trunk = _record(tmp_path), _trunk()
    want = RCNNSource(trunk, INFO, LEVELS, 4, 2, CPU).pool5(record, BOXES)
    first = _cached(tmp_path / "cache", trunk, dtype)
    got = first.pool5(record, BOXES)
    assert first.computed == 4
    tol = 1e-5 if dtype == "float32" else 2e-3
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)
    # A new run on the same folder: a permuted subset with a repeat, all read back, bit for bit.
    again = _cached(tmp_path / "cache", trunk, dtype)
    order = [3, 1, 1, 0]
    assert torch.equal(again.pool5(record, BOXES[order]), got[order])
    assert again.computed == 0


def test_an_entry_grows_by_the_missing_windows_only(tmp_path):
    record, trunk = _record(tmp_path), _trunk()
    cache = _cached(tmp_path / "cache", trunk)
    part = cache.pool5(record, BOXES[:2])
    assert cache.computed == 2
    whole = cache.pool5(record, BOXES)
    assert cache.computed == 4  # only the two new windows
    assert torch.equal(whole[:2], part)
    assert cache.pool5(record, torch.zeros(0, 4)).shape == (0, whole.shape[1])


def test_another_image_under_the_same_id_or_another_trunk_is_recomputed(tmp_path):
    trunk = _trunk()
    cache = _cached(tmp_path / "cache", trunk)
    before = cache.pool5(_record(tmp_path, seed=1), BOXES)
    changed = _cached(tmp_path / "cache", trunk)
    after = changed.pool5(_record(tmp_path, seed=2), BOXES)  # same id "a", other pixels
    assert changed.computed == 4 and not torch.equal(before, after)
    other = _cached(tmp_path / "cache", _trunk(seed=1))
    assert other.folder != cache.folder
    other.pool5(_record(tmp_path, seed=2), BOXES)
    assert other.computed == 4


def test_an_image_in_memory_is_pooled_by_the_source_and_never_cached(tmp_path):
    """ImageRecord.from_array has no file to key an entry by: its vectors are the source's, nothing stored."""
    from data.images import read_image

    record, trunk = _record(tmp_path), _trunk()
    want = RCNNSource(trunk, INFO, LEVELS, 4, 2, CPU).pool5(record, BOXES)
    cached = _cached(tmp_path / "cache", trunk)
    assert torch.equal(cached.pool5(ImageRecord.from_array(read_image(record.path), "a"), BOXES), want)
    assert cached.computed == 0 and not any((tmp_path / "cache").rglob("*.npz"))
