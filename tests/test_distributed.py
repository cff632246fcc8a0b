"""torchrun with 2 processes (gloo, CPU) on the tiny set trains and tests what 1 process does.

Both runs use one torch thread per process: the thread count alone changes the last bits of
conv5 (oneDNN splits the convolution differently), which is not what is tested here. With it
fixed, proposals, conv5 maps, box-regression samples and regressors are bit-identical, and the
fine-tuned head, SVMs and detection scores differ only by float summation order (DDP sums the
two ranks' gradients instead of one batch's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import TINY_TRAIN
from tools import test_det, train_det

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TRAIN = [a for a in TINY_TRAIN if a not in ("--workers", "2")] + ["--threads", "1"]
TINY_CLS = ["--sizes", "64", "52", "--set", "data.train_per_class=3", "--set", "data.test_per_class=1",
            "--set", "train.epochs=2", "--set", "train.batch_size=8", "--set", "model.fc6=16",
            "--set", "model.fc7=16", "--no-progress", "--threads", "1"]  # tests/tools/test_train_cls.py's TINY


def torchrun(tool: str, *argv: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "tools" / tool), *argv]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def in_process(main, argv: list[str]) -> None:
    threads = torch.get_num_threads()
    try:
        assert main(argv) == 0
    finally:
        torch.set_num_threads(threads)  # --threads 1 must not slow the rest of the session


def detections(work: Path) -> dict[str, dict[str, np.ndarray]]:
    (folder,) = (work / "detections").iterdir()
    return {p.stem: dict(np.load(p)) for p in sorted(folder.glob("*.npz"))}


@pytest.fixture(scope="module")
def one_and_two(tiny_voc, tmp_path_factory) -> tuple[Path, Path]:
    """The same training and test, by 1 process and by torchrun with 2 (separate caches)."""
    one, two = tmp_path_factory.mktemp("one") / "w", tmp_path_factory.mktemp("two") / "w"
    in_process(train_det.main, ["--data-root", str(tiny_voc), "--work-dir", str(one), "--workers", "1", *TRAIN])
    in_process(test_det.main, ["--work-dir", str(one), "--threads", "1", "--workers", "1", "--no-progress"])
    torchrun("train_det.py", "--data-root", str(tiny_voc), "--work-dir", str(two), *TRAIN)
    torchrun("test_det.py", "--work-dir", str(two), "--threads", "1", "--no-progress")
    return one, two


def test_two_processes_train_the_single_process_model(one_and_two):
    one, two = one_and_two
    assert json.loads((two / "meta.json").read_text())["stages_done"] == \
        json.loads((one / "meta.json").read_text())["stages_done"]
    assert not (two / "mining_features").exists()  # the sharded feature pass cleans up
    for a, b in zip(sorted((one / "cache").rglob("*.npz")), sorted((two / "cache").rglob("*.npz")), strict=True):
        assert a.relative_to(one) == b.relative_to(two)  # proposals and conv5 maps, same keys
        x, y = np.load(a), np.load(b)
        for key in set(x.files) - {"seconds"}:  # a proposal entry's compute time differs, of course
            np.testing.assert_array_equal(y[key], x[key], err_msg=f"{a.name}: {key}")
    heads = [torch.load(w / "head.pt", weights_only=True) for w in (one, two)]
    for key in heads[0]:
        torch.testing.assert_close(heads[1][key], heads[0][key], rtol=0, atol=1e-6)
    for name, atol in (("svms.npz", 1e-5), ("bbox_samples.npz", 0), ("bbox.npz", 1e-6)):
        a, b = np.load(one / name), np.load(two / name)
        for key in a.files:
            np.testing.assert_allclose(b[key], a[key], rtol=0, atol=atol, err_msg=f"{name}: {key}")
    assert (one / "bbox_samples_x.npy").read_bytes() == (two / "bbox_samples_x.npy").read_bytes()  # their pool5 rows


def test_two_processes_detect_what_one_does(one_and_two):
    one, two = one_and_two
    a, b = detections(one), detections(two)
    assert a.keys() == b.keys() and a
    for image_id in a:
        np.testing.assert_array_equal(b[image_id]["labels"], a[image_id]["labels"])
        np.testing.assert_allclose(b[image_id]["boxes"], a[image_id]["boxes"], rtol=0, atol=1e-3)
        np.testing.assert_allclose(b[image_id]["scores"], a[image_id]["scores"], rtol=0, atol=1e-5)
    scores = [json.loads((w / "results" / "map_test_voc07.json").read_text()) for w in (one, two)]
    assert scores[1]["map"] == pytest.approx(scores[0]["map"], abs=1e-6)
    assert scores[1]["ap"] == pytest.approx(scores[0]["ap"], abs=1e-6)


def test_two_processes_train_the_single_process_classifier(tmp_path):
    """tools/train_cls.py: each rank takes every other image of a batch, same crops and masks."""
    from tools import train_cls
    # batch norm's statistics are each rank's own (no SyncBatchNorm): without it the ranks' sum is the batch's

    one, two = tmp_path / "one", tmp_path / "two"
    plain = [*TINY_CLS, "--set", "model.batch_norm=false"]
    in_process(train_cls.main, ["--work-dir", str(one), *plain])
    torchrun("train_cls.py", "--work-dir", str(two), *plain)
    a, b = (torch.load(w / "classifier.pt", weights_only=True) for w in (one, two))
    a, b = a.get("model", a), b.get("model", b)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-5)
    losses = [[h["train_loss"] for h in json.loads((w / "history.json").read_text())] for w in (one, two)]
    assert losses[1] == pytest.approx(losses[0], abs=1e-5)
