"""The disk check before training: the caches' bytes estimated, compared with the free space."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from data.errors import InputError
from data.records import ImageRecord
from detection.config import DetectorConfig
from detection.models.backbones import TrunkInfo
from detection.pipeline.disk import ENTRY_OVERHEAD, CacheEstimate, check_disk_space, conv5_bytes, training_estimates

INFO = TrunkInfo("t", channels=10, stride=16, warp_size=224, centre_offset=0.0)
Usage = namedtuple("Usage", "total used free")


def _record(image_id: str, size=(300, 500)) -> ImageRecord:
    return ImageRecord(image_id, Path(f"{image_id}.jpg"), size, np.zeros((2, 4), np.float32), np.zeros(2, np.int64),
                       np.zeros(2, bool), np.zeros(2, bool))


def test_conv5_bytes_by_hand():
    # 300 x 500 at shorter side 320: 320 x 533 -> 20 x 34 cells of 10 channels, 2 bytes each
    assert conv5_bytes((300, 500), [320], INFO, 2) == 10 * 20 * 34 * 2
    assert conv5_bytes((300, 500), [320, 160], INFO, 4) == 10 * (20 * 34 + 10 * 17) * 4


def test_only_images_without_an_entry_are_counted(tmp_path):
    cfg = DetectorConfig()
    (tmp_path / "conv5").mkdir()
    (tmp_path / "conv5" / "a-0123456789abcdef.npz").write_bytes(b"")  # a's maps are cached
    records = [_record("a"), _record("b")]
    folders = {"conv5": tmp_path / "conv5", "proposals": tmp_path / "none", "mining_features": tmp_path / "m",
               "work": tmp_path}
    est = {e.name: e for e in training_estimates(cfg, INFO, records, folders, sharded=False)}
    assert "mining_features" not in est  # written only by a torchrun job
    assert est["conv5"].images == 1
    assert est["conv5"].nbytes == conv5_bytes((300, 500), cfg.features.scales, INFO, 2) + ENTRY_OVERHEAD
    assert est["proposals"].images == 2 and est["proposals"].nbytes == 2 * (2000 * 16 + ENTRY_OVERHEAD)
    assert "mining_features" in {e.name for e in training_estimates(cfg, INFO, records, folders, sharded=True)}


def test_a_disk_too_small_stops_with_the_estimate_and_the_free_space(tmp_path, monkeypatch):
    estimates = [CacheEstimate("conv5", tmp_path / "cache" / "conv5", 10, 3 * 2**30),
                 CacheEstimate("proposals", tmp_path / "cache" / "proposals", 10, 2**30)]
    monkeypatch.setattr("shutil.disk_usage", lambda path: Usage(0, 0, 5 * 2**30))
    check_disk_space(estimates)  # 4 GiB in 5 GiB
    monkeypatch.setattr("shutil.disk_usage", lambda path: Usage(0, 0, 2**30))
    with pytest.raises(InputError, match=r"need about 4.00 GiB \(conv5 3.00 GiB \(10 images\).*1.00 GiB free"):
        check_disk_space(estimates)


def test_train_det_stops_before_any_work_when_the_disk_is_full(tiny_voc, tmp_path, monkeypatch):
    from tests.conftest import TINY_TRAIN
    from tools import train_det

    monkeypatch.setattr("shutil.disk_usage", lambda path: Usage(0, 0, 1000))
    work = tmp_path / "w"
    with pytest.raises(InputError, match="caches need about .* GiB .* free"):
        train_det.main(["--data-root", str(tiny_voc), "--work-dir", str(work), *TINY_TRAIN])
    assert not (work / "cache").exists()  # no proposal, no map was computed
