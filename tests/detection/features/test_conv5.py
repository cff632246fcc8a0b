"""conv5 once per image: the per-image cache, and pooling windows across scales."""

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from data.boxes import project_to_cells
from data.cache import file_digest, save_arrays
from data.records import ImageRecord
from detection.features.conv5 import CONV5_CACHE_VERSION, Conv5Cache, Conv5Maps, image_scales
from detection.features.spp_source import pool_windows
from detection.models.spp import spatial_pyramid_pool


def tiny_trunk(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=4, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, stride=4, padding=1)).eval()


def image_record(tmp_path: Path, name: str = "a", seed: int = 0) -> ImageRecord:
    img = np.random.default_rng(seed).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    path = tmp_path / f"{name}.png"
    cv2.imwrite(str(path), img)
    z = np.zeros((0, 4), np.float32)
    return ImageRecord(name, path, (60, 80), z, np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, bool))


def test_cache_round_trip_and_invalidation(tmp_path):
    rec = image_record(tmp_path)
    cache = Conv5Cache(tmp_path / "c", tiny_trunk(), (64, 96), torch.device("cpu"))
    first = cache.get(rec)
    assert [m.shape[0] for m in first.maps] == [5, 5]
    assert first.scales == (64 / 60, 96 / 60)
    entry = cache.path("a", file_digest(rec.path))
    stamp = entry.stat().st_mtime_ns
    again = cache.get(rec)
    assert entry.stat().st_mtime_ns == stamp  # loaded, not recomputed
    assert all(torch.equal(a, b) for a, b in zip(first.maps, again.maps))
    assert all(m.dtype == torch.float16 for m in first.maps + again.maps)  # as stored: pooled exactly
    # another image under the same id (another dataset): an entry of its own, the first one kept
    image_record(tmp_path, "a", seed=1)
    other = cache.get(rec)
    assert not torch.equal(other.maps[0], first.maps[0]) and entry.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in cache.folder.glob("*.npz")) == sorted([entry.name, cache.path(
        "a", file_digest(rec.path)).name])
    image_record(tmp_path, "a", seed=0)  # the first image again: its entry is still there
    cache.ensure([rec], progress=False)
    assert cache.computed == 2 and torch.equal(cache.get(rec).maps[0], first.maps[0])
    # a corrupt entry is recomputed, not used
    entry.write_bytes(b"garbage")
    assert all(torch.equal(a, b) for a, b in zip(cache.get(rec).maps, Conv5Cache(
        tmp_path / "c", tiny_trunk(), (64, 96), torch.device("cpu")).get(rec).maps))


def test_cache_folder_is_keyed_by_weights_and_scales(tmp_path):
    dev = torch.device("cpu")
    a = Conv5Cache(tmp_path, tiny_trunk(0), (64,), dev).folder
    assert a == Conv5Cache(tmp_path, tiny_trunk(0), (64,), dev).folder
    assert a != Conv5Cache(tmp_path, tiny_trunk(1), (64,), dev).folder
    assert a != Conv5Cache(tmp_path, tiny_trunk(0), (96,), dev).folder


def test_pool_windows_uses_each_windows_best_scale():
    gen = torch.Generator().manual_seed(0)
    maps = Conv5Maps((torch.randn(3, 20, 20, generator=gen), torch.randn(3, 40, 40, generator=gen)), (1.0, 2.0))
    boxes = torch.tensor([[0.0, 0.0, 300.0, 300.0], [10.0, 10.0, 60.0, 60.0], [10.0, 10.0, 60.0, 60.0]])
    got = pool_windows(maps, boxes, 16, 0.0, (2, 1))
    # 300 px at scale 1 (300^2 vs 600^2: closer to 224^2); 50 px at scale 2 (100^2 vs 50^2)
    want0 = spatial_pyramid_pool(maps.maps[0], project_to_cells(boxes[:1], 1.0, 16, (20, 20)), (2, 1))
    want1 = spatial_pyramid_pool(maps.maps[1], project_to_cells(boxes[1:2], 2.0, 16, (40, 40)), (2, 1))
    assert torch.equal(got[0], want0[0]) and torch.equal(got[1], want1[0]) and torch.equal(got[2], got[1])
    assert torch.equal(pool_windows(maps, boxes, 16, 0.0, (2, 1), share_identical=False), got)


def _rewrite(path: Path, version: int | None = None, **override) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != "cache_version"}
    save_arrays(path, version=version, **{**arrays, **override})


CORRUPT = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:300]),
    "garbage": lambda p: p.write_bytes(b"\x93NUMPY garbage" * 40),
    "wrong shape": lambda p: _rewrite(p, map1=np.zeros((3, 2, 2), np.float16)),  # C differs between scales
    "wrong dtype": lambda p: _rewrite(p, map0=np.zeros((5, 2, 2), np.int8)),
    "other version": lambda p: _rewrite(p, version=CONV5_CACHE_VERSION + 1),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_a_corrupt_entry_is_reported_once_and_recomputed_to_the_same_maps(tmp_path, caplog, case):
    rec = image_record(tmp_path)
    cache = Conv5Cache(tmp_path / "c", tiny_trunk(), (64, 96), torch.device("cpu"))
    first = cache.get(rec)
    CORRUPT[case](cache.path("a", file_digest(rec.path)))
    fresh = Conv5Cache(tmp_path / "c", tiny_trunk(), (64, 96), torch.device("cpu"))
    again = [fresh.get(rec), fresh.get(rec)]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and f"{cache.path('a', file_digest(rec.path)).name} is corrupt" in warnings[0]
    assert fresh.computed == 1
    assert all(torch.equal(x, y) for maps in again for x, y in zip(first.maps, maps.maps))


def test_two_runs_at_once_compute_each_image_once(tmp_path):
    records = [image_record(tmp_path, f"im{i}", seed=i) for i in range(6)]
    caches = [Conv5Cache(tmp_path / "c", tiny_trunk(), (64, 96), torch.device("cpu")) for _ in range(2)]
    threads = [threading.Thread(target=c.ensure, args=(records, False)) for c in caches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert caches[0].computed + caches[1].computed == len(records)
    assert all(cache.path(r.image_id, file_digest(r.path)).is_file() for r in records for cache in caches)


def test_long_images_are_resized_by_their_longer_side():
    """VOC shapes keep the paper's shorter side; a 10:1 panorama or a 1:25 sliver is capped at 3:1."""
    assert image_scales((375, 500), (688,)) == [688 / 375]
    assert image_scales((100, 300), (688, 1200)) == [688 / 100, 1200 / 100]  # 3:1 exactly: not capped
    assert image_scales((375, 4000), (688,)) == [3 * 688 / 4000]
    (scale,) = image_scales((1500, 60), (688,))
    assert round(1500 * scale) == 3 * 688 and round(60 * scale) < 688
