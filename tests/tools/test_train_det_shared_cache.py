"""Two tools/train_det.py runs at once on one --cache-dir: each entry computed once, results as alone.

The run alone is the session's ``tiny_workdir`` (same data, same settings, its own cache, trained
in the test process), so the comparison is also the determinism check: the same seed and inputs
give bit-identical SVMs, box regressors, detections and mAP in another process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY_TRAIN
from tools import test_det

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
NUM_TRAIN_IMAGES = 8  # tiny_voc's trainval


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _same_arrays(a: Path, b: Path) -> bool:
    x, y = _arrays(a), _arrays(b)
    return x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)


def _computed(log: str, cache: str) -> int:
    found = re.findall(rf"{cache} cache: computed (\d+), reused (\d+)", log)
    assert len(found) == 1, f"expected one '{cache} cache: computed' line"
    return int(found[0][0])


@pytest.fixture(scope="module")
def two_runs(tiny_voc, tmp_path_factory) -> tuple[Path, Path, Path]:
    """Work dirs a and b, trained at the same time by two processes sharing one cache dir."""
    root = tmp_path_factory.mktemp("shared_cache")
    cache, works = root / "cache", (root / "a", root / "b")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, str(REPO / "tools" / "train_det.py"), "--data-root", str(tiny_voc),
                               "--work-dir", str(work), "--cache-dir", str(cache), *TINY_TRAIN],
                              env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for work in works]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    return (*works, cache)


def test_each_cache_entry_is_computed_once_and_nothing_is_corrupt(two_runs):
    a, b, cache = two_runs
    logs = [(w / "train.log").read_text() for w in (a, b)]
    for name in ("proposals", "conv5"):
        assert sum(_computed(log, name) for log in logs) == NUM_TRAIN_IMAGES, name
    assert not any("is corrupt" in log for log in logs)
    entries = sorted(cache.rglob("*.npz"))
    assert len(entries) == 2 * NUM_TRAIN_IMAGES  # proposals + conv5, and no temporary file left
    assert not list(cache.rglob("*.tmp"))
    for entry in entries:
        assert _arrays(entry)  # every entry loads


def test_both_runs_give_the_results_of_a_run_alone(two_runs, tiny_workdir):
    a, b, _ = two_runs
    for work in (a, b):
        for name in ("svms.npz", "bbox.npz"):
            assert _same_arrays(work / name, tiny_workdir / name), (work, name)


def test_detections_and_map_are_identical_across_runs(two_runs, tiny_workdir, tmp_path):
    a, _, _ = two_runs
    scores = []
    for work in (a, tiny_workdir):
        out = tmp_path / f"{work.name}.json"
        assert test_det.main(["--work-dir", str(work), "--json", str(out), "--no-progress", "--workers", "1"]) == 0
        scores.append(json.loads(out.read_text()))
    assert scores[0]["map"] == scores[1]["map"] and scores[0]["ap"] == scores[1]["ap"]
    (dets_a,) = (a / "detections").iterdir()
    dets_alone = tiny_workdir / "detections" / dets_a.name  # same config and trained files: same model key
    names = sorted(p.name for p in dets_a.glob("*.npz"))
    assert names and names == sorted(p.name for p in dets_alone.glob("*.npz"))
    assert all(_same_arrays(dets_a / n, dets_alone / n) for n in names)
