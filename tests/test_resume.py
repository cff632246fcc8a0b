"""Exact resume: train_det / test_det interrupted in every stage and resumed give bit-identical models.

``tools/train_det.py`` runs as a subprocess on a small synthetic set. It is interrupted when a file
shows it is inside a stage (a proposal entry, a conv5 entry, a fine-tuning checkpoint, the SVM
stage's first log line, a detection entry): SIGKILL, and once Ctrl-C (SIGINT to its process group,
as a terminal sends it). Each time the same command runs again with --resume. The SVMs, box
regressors and head must equal an uninterrupted run's bit for bit, and so must the test mAP.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from tools import train_det

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# conftest.TINY_TRAIN, with fine-tuning long enough to be interrupted in (1,000 steps, a checkpoint
# every 10) and smaller batches so that it stays cheap; proposals in-process (no worker start-up).
TRAIN = [
    "--set", "proposals.max_proposals=150", "--set", "features.scales=[240]",
    "--set", "head.fc6=64", "--set", "head.fc7=64",
    "--set", "finetune.iterations=1000", "--set", "finetune.lr=0.001", "--set", "finetune.batch_size=32",
    "--set", "finetune.windows_per_image=32", "--checkpoint-every", "10", "--no-progress", "--workers", "1",
]


@pytest.fixture(scope="module")
def small_voc(tmp_path_factory) -> Path:
    """8 trainval + 3 test synthetic images of 188 x 250 pixels (cheap proposals and conv5)."""
    from data.synthetic import generate
    from data.synthetic.generate import SyntheticConfig

    root = tmp_path_factory.mktemp("resume_voc") / "voc"
    generate(root, num_trainval=8, num_test=3, seed=3, cfg=SyntheticConfig(sizes=((188, 250),), size_probs=(1.0,)))
    return root


def _start(tool: str, args: list[str], log: Path) -> subprocess.Popen:
    """``python tools/<tool>.py args`` in its own process group, output to ``log``(.out/.err)."""
    # One torch thread: the reference run goes alongside, and spinning OpenMP threads on a shared
    # 2-core machine made fine-tuning ten times slower. Both runs use the same setting.
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    with open(log.with_suffix(".out"), "ab") as out, open(log.with_suffix(".err"), "wb") as err:
        return subprocess.Popen([sys.executable, str(REPO / "tools" / f"{tool}.py"), *args], cwd=REPO, env=env,
                                stdout=out, stderr=err, start_new_session=True, preexec_fn=_default_sigint)


def _default_sigint() -> None:
    """Ctrl-C's default in the child. A shell starts background jobs (``make test &``, nohup in a
    script) with SIGINT ignored, the children inherit that, and Python then never raises
    KeyboardInterrupt: the Ctrl-C below would be lost and the run would end whole (seen twice)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_when(proc: subprocess.Popen, ready: Callable[[], bool], sig: int, timeout: float = 300) -> bool:
    """Send ``sig`` to ``proc``'s process group once ``ready()``; False if it ended first."""
    end = time.monotonic() + timeout
    while proc.poll() is None and not ready():
        if time.monotonic() > end:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"{proc.args} neither finished nor reached the interruption point in {timeout} s")
        time.sleep(0.01)
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, sig)
    proc.wait(timeout=60)
    return True


def _count(folder: Path, pattern: str) -> Callable[[], int]:
    return lambda: len(list(folder.glob(pattern)))


def _changes(path: Path, times: int) -> Callable[[], bool]:
    """True once ``path`` has been (re)written ``times`` times since this call."""
    seen = [path.stat().st_mtime_ns if path.exists() else None]

    def ready() -> bool:
        now = path.stat().st_mtime_ns if path.exists() else None
        if now is not None and now != seen[-1]:
            seen.append(now)
        return len(seen) > times

    return ready


def _stages_done(work: Path) -> list[str]:
    meta = work / "meta.json"
    return json.loads(meta.read_text()).get("stages_done", []) if meta.is_file() else []


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def test_interrupted_training_resumes_to_the_uninterrupted_model(small_voc, tmp_path):
    ref, work = tmp_path / "ref", tmp_path / "work"
    train = ["--data-root", str(small_voc), *TRAIN]
    reference = _start("train_det", [*train, "--work-dir", str(ref)], tmp_path / "ref")  # runs alongside
    ckpt, log = work / "finetune_ckpt.pt", work / "train.log"

    def svm_started() -> bool:  # the SVM stage logs its feature scales first; count this attempt's
        return log.read_text().count("feature scales") > svm_lines

    # 1. interruption points, each inside a stage: (what, when, signal, stages done by then)
    svm_lines = 0
    plan = [
        ("proposals", lambda: _count(work / "cache" / "proposals", "*/*.npz")() >= 2, signal.SIGKILL, 0),
        ("conv5", lambda: _count(work / "cache" / "conv5", "*/*.npz")() >= 2, signal.SIGKILL, 1),
        ("finetune", lambda: ckpt.exists(), signal.SIGKILL, 2),
        ("finetune again", None, signal.SIGINT, 2),
        ("svm", svm_started, signal.SIGKILL, None),
    ]
    attempt, landed = 0, []
    for what, ready, sig, expected in plan:
        if ready is None:
            ready = _changes(ckpt, 2)  # two checkpoints after the one it resumed from
        svm_lines = log.read_text().count("feature scales") if log.exists() else 0
        proc = _start("train_det", [*train, "--work-dir", str(work), *(["--resume"] if attempt else [])],
                      tmp_path / f"run{attempt}")
        attempt += 1
        if not _interrupt_when(proc, ready, sig):
            assert proc.returncode == 0, (tmp_path / f"run{attempt - 1}.err").read_text()[-2000:]
            continue
        landed.append((what, _stages_done(work)))
        if expected is not None:  # the stage was long enough for the interruption to fall inside it
            assert len(_stages_done(work)) == expected, landed
        if sig == signal.SIGINT:  # 2. Ctrl-C: exit 130, one line, no traceback
            err = (tmp_path / f"run{attempt - 1}.err").read_text()
            assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
            assert err.strip().splitlines()[-1] == f"interrupted; {train_det.RESUME_HINT}"
        else:
            assert proc.returncode == -signal.SIGKILL
    assert len(landed) >= 4, landed
    # 3. the last resume runs to the end
    proc = _start("train_det", [*train, "--work-dir", str(work), "--resume"], tmp_path / "last")
    assert proc.wait(timeout=300) == 0, (tmp_path / "last.err").read_text()[-2000:]
    assert reference.wait(timeout=300) == 0, (tmp_path / "ref.err").read_text()[-2000:]
    assert log.read_text().count("fine-tuning resumed at step") >= 2  # continued mid-way, not from 0
    assert not ckpt.exists() and not list(work.glob(".*.tmp"))
    runs = json.loads((work / "stages.json").read_text())  # every run's time, the killed ones' too
    assert len(runs) == attempt + 1 and sum(bool(r.get("interrupted")) for r in runs) == len(landed), runs

    # 4. bit-identical SVMs, box regressors and head
    for name in ("svms.npz", "bbox.npz", "bbox_samples.npz"):
        want, got = _arrays(ref / name), _arrays(work / name)
        assert want.keys() == got.keys()
        for key in want:
            assert want[key].dtype == got[key].dtype and np.array_equal(want[key], got[key]), f"{name}:{key}"
    assert (ref / "bbox_samples_x.npy").read_bytes() == (work / "bbox_samples_x.npy").read_bytes()
    want, got = (torch.load(w / "head.pt", weights_only=True) for w in (ref, work))
    assert all(torch.equal(want[k], got[k]) for k in want)

    # 5. test time: detection killed after its first image, resumed; the same mAP as the reference's
    test = ["--split", "test", "--no-progress", "--workers", "1"]
    reference = _start("test_det", [*test, "--work-dir", str(ref), "--json", str(ref / "map.json")], tmp_path / "tref")
    proc = _start("test_det", [*test, "--work-dir", str(work)], tmp_path / "t0")
    _interrupt_when(proc, lambda: _count(work / "detections", "*/*.npz")() >= 1, signal.SIGKILL)
    proc = _start("test_det", [*test, "--work-dir", str(work), "--json", str(work / "map.json")], tmp_path / "t1")
    assert proc.wait(timeout=300) == 0, (tmp_path / "t1.err").read_text()[-2000:]
    assert reference.wait(timeout=300) == 0, (tmp_path / "tref.err").read_text()[-2000:]
    want, got = (json.loads((w / "map.json").read_text()) for w in (ref, work))
    timing = got.pop("timing")
    assert want.pop("timing")["detected_images"] == 3 > timing["detected_images"]  # some were cached
    assert timing["runs"] == 2  # the killed test's time counted with the one that resumed it
    assert got == want


def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(tiny_voc, tiny_workdir, tmp_path, monkeypatch, capsys):
    """ENOSPC while the SVMs are saved: one line naming svms.npz, no partial file, and the next
    --resume redoes the stage to the same SVMs."""
    from tests.conftest import TINY_TRAIN

    work = tmp_path / "work"
    shutil.copytree(tiny_workdir, work, ignore=shutil.ignore_patterns("detections", "results"))
    meta = json.loads((work / "meta.json").read_text())
    meta["stages_done"] = ["proposals", "conv5", "finetune"]  # as if killed after fine-tuning
    (work / "meta.json").write_text(json.dumps(meta))
    (work / "svms.npz").unlink()
    savez = np.savez

    def full_disk(file, *args, **kwds):  # svms.npz is the first linear model the stage saves
        if "weights" in kwds:
            file.write(b"PK\x03\x04 half an archive")
            raise OSError(errno.ENOSPC, "No space left on device")
        return savez(file, *args, **kwds)

    monkeypatch.setattr(np, "savez", full_disk)
    argv = ["--data-root", str(tiny_voc), "--work-dir", str(work), "--resume", *TINY_TRAIN]
    capsys.readouterr()
    assert train_det.run_cli(train_det.main, argv, train_det.RESUME_HINT) == 1  # as its __main__ does
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err and len(errors) == 1 and err.strip().splitlines()[-1] == errors[0]
    assert str(work / "svms.npz") in errors[0] and "No space left on device" in errors[0] and "--resume" in errors[0]
    assert not (work / "svms.npz").exists() and not list(work.glob(".*.tmp"))
    assert json.loads((work / "meta.json").read_text())["stages_done"] == ["proposals", "conv5", "finetune"]

    monkeypatch.setattr(np, "savez", savez)  # space freed: the same command continues
    assert train_det.run_cli(train_det.main, argv) == 0
    for name in ("svms.npz", "bbox.npz"):
        want, got = _arrays(tiny_workdir / name), _arrays(work / name)
        assert all(np.array_equal(want[k], got[k]) for k in want), name


def test_training_again_forgets_the_old_runs_stages_first(tiny_voc, tiny_workdir, tmp_path, monkeypatch):
    """A new run (no --resume) stopped before its first stage must not leave the old stages listed,
    or a later --resume would take the old run's head and SVMs for its own."""
    from tests.conftest import TINY_TRAIN

    work = tmp_path / "work"
    shutil.copytree(tiny_workdir, work, ignore=shutil.ignore_patterns("detections", "results"))

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("detection.pipeline.train.sharded_proposals", stop)
    argv = ["--data-root", str(tiny_voc), "--work-dir", str(work), *TINY_TRAIN]
    assert train_det.run_cli(train_det.main, argv) == 130
    assert json.loads((work / "meta.json").read_text())["stages_done"] == []
