"""Training with --overlap (conv5 maps computed here while the workers run selective search) gives
the model of the stage-by-stage run, bit for bit.

The stage-by-stage run is the session's ``tiny_workdir`` (--workers 2: selective search in
workers, then the conv5 maps; SVM fits of several classes in workers while features load).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import TINY_TRAIN
from tools import train_det

pytestmark = pytest.mark.slow  # a second training of the tiny set (~1 min)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def test_overlapped_training_equals_stage_by_stage(tiny_voc, tiny_workdir, tmp_path):
    overlapped = tmp_path / "overlapped"
    assert TINY_TRAIN[-2:] == ["--workers", "2"]
    argv = [*TINY_TRAIN[:-2], "--workers", "2", "--overlap"]  # conv5 while selective search runs
    assert train_det.main(["--data-root", str(tiny_voc), "--work-dir", str(overlapped), *argv]) == 0
    for name in ("svms.npz", "bbox.npz"):
        want, got = _arrays(tiny_workdir / name), _arrays(overlapped / name)
        assert want.keys() == got.keys() and all(np.array_equal(want[k], got[k]) for k in want), name
    want, got = (torch.load(w / "head.pt", weights_only=True) for w in (tiny_workdir, overlapped))
    assert all(torch.equal(want[k], got[k]) for k in want)
    # the overlapped run's own cache (the shared tiny work dir's may also hold other tests' folders)
    maps = sorted((overlapped / "cache" / "conv5").glob("*/*.npz"))
    assert len(maps) == 8
    for path in maps:
        twin = tiny_workdir / "cache" / "conv5" / path.parent.name / path.name
        want, got = _arrays(twin), _arrays(path)
        assert all(np.array_equal(want[k], got[k]) for k in want), path.name
