"""R-CNN with ``features.rcnn_cache``: a second seed on the same --cache-dir runs no window through the
trunk, and its test, which reads every vector back, is not timed as R-CNN's.

The per-window trunk is R-CNN's whole cost (README, accuracy table); with the conv layers frozen
its pool5 vectors do not depend on the seed, so seed 1's training reads seed 0's. (Test time goes
through the same ``make_source``: ``tests/detection/test_workdir.py``.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY_TRAIN
from tools import test_det, train_det

pytestmark = pytest.mark.slow

RCNN = [*TINY_TRAIN, "--set", "method=rcnn", "--set", "features.rcnn_cache=true", "--set", "proposals.max_proposals=20"]


def _train(tiny_voc: Path, work: Path, cache: Path, seed: int) -> tuple[int, int]:
    """(windows computed, windows read back) of one training run."""
    assert train_det.main(["--data-root", str(tiny_voc), "--work-dir", str(work), "--cache-dir", str(cache),
                           *RCNN, "--set", f"seed={seed}"]) == 0
    found = re.findall(r"R-CNN pool5 cache \S+: computed (\d+) windows, read back (\d+)",
                       (work / "train.log").read_text())
    assert len(found) == 1
    return int(found[0][0]), int(found[0][1])


def _timing(work: Path, out: Path) -> dict:
    """test_det's timing of the test split (its record's ``timing``)."""
    assert test_det.main(["--work-dir", str(work), "--split", "test", "--out", str(out / "results"),
                          "--json", str(out / "record.json"), "--no-progress"]) == 0
    return json.loads((out / "record.json").read_text())["timing"]


def test_a_second_seed_reads_every_window_back(tiny_voc, tmp_path):
    cache = tmp_path / "cache"
    computed, read = _train(tiny_voc, tmp_path / "s0", cache, 0)
    assert computed > 0
    entries = {p: p.read_bytes() for p in (cache / "rcnn_pool5").rglob("*.npz")}
    assert len(entries) == 8  # tiny_voc's trainval images, one entry each
    assert _train(tiny_voc, tmp_path / "s1", cache, 1) == (0, computed + read)
    assert all(p.read_bytes() == b for p, b in entries.items())  # nothing rewritten
    w0, w1 = (np.load(tmp_path / s / "svms.npz")["weights"] for s in ("s0", "s1"))
    assert not np.array_equal(w0, w1)  # another seed did train another model
    # R-CNN's test seconds are the trunk's per window: the first test computes the test images' vectors
    # and is timed; the second seed's test reads them all back, and a file read is not R-CNN's speed
    first = _timing(tmp_path / "s0", tmp_path / "t0")
    assert first["detected_images"] > 0 and first["median_s_per_image"] > 0
    second = _timing(tmp_path / "s1", tmp_path / "t1")
    assert second["detected_images"] == 0 and second["median_s_per_image"] is None


def _timed_images(work: Path, out: Path) -> dict:
    assert test_det.main(["--work-dir", str(work), "--split", "test", "--out", str(out / "results"),
                          "--json", str(out / "record.json"), "--no-progress"]) == 0
    return json.loads((out / "record.json").read_text())["timing"]

