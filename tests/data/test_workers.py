"""A run killed with SIGKILL (the OOM killer, ``kill -9``) leaves no worker process behind.

Each test starts a real pool of ours in a child Python, waits until a worker has answered, lists
every process under the child (forkserver, workers, resource tracker), SIGKILLs the child, and
checks that all of them end. Without ``data.workers.exit_with_parent`` in its initializer an SVM
worker (``ProcessPoolExecutor``) waits for its next task forever and keeps the forkserver alive;
the proposal workers (``multiprocessing.Pool``) end by themselves, and the test keeps it so.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SVM_POOL = """
import time
import numpy as np
from svm.config import SVMConfig
from svm.pool import SolverPool
if __name__ == "__main__":
    pool = SolverPool(2, min_entries=0)  # every fit in a worker
    x = np.ones((4, 3), np.float32)
    pool.submit(x, -x, SVMConfig(), "toy").result()
    print("ready", flush=True)
    time.sleep(300)
"""

PROPOSAL_POOL = """
import sys, time
from pathlib import Path
from proposals.config import ProposalConfig
from proposals.workers import iter_proposals
from tests.proposals.conftest import make_image, make_record, write_image
if __name__ == "__main__":
    out = Path(sys.argv[1])
    records = [make_record(str(i), write_image(out / f"{i}.png", make_image(i))) for i in range(8)]
    next(iter_proposals(records, ProposalConfig(), workers=2))  # the pool stays open, images queued
    print("ready", flush=True)
    time.sleep(300)
"""


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process on the machine (from /proc)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        except (OSError, IndexError):
            continue  # ended while we read
        table[int(stat.parent.name)] = int(fields[1])
    return table


def _descendants(pid: int) -> set[int]:
    parents, found, todo = _parents(), set(), [pid]
    while todo:
        parent = todo.pop()
        children = [p for p, pp in parents.items() if pp == parent]
        found.update(children)
        todo.extend(children)
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its parent's bookkeeping is left


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="lists processes through Linux's /proc")
@pytest.mark.parametrize("script", [SVM_POOL, PROPOSAL_POOL], ids=["svm", "proposals"])
def test_sigkilled_run_leaves_no_worker(script: str, tmp_path: Path) -> None:
    # stderr to a file: a pipe would stay open in any worker left over, and reading it would hang.
    with open(tmp_path / "stderr.txt", "w") as err:
        child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=err, text=True)
    left: list[int] = []
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready", (tmp_path / "stderr.txt").read_text()
        under = _descendants(child.pid)
        assert len([p for p in under if _running(p)]) >= 2  # at least the forkserver and a worker
        child.send_signal(signal.SIGKILL)
        child.wait()
        deadline = time.monotonic() + 30
        while any(map(_running, under)) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = sorted(p for p in under if _running(p))
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
        for pid in left:  # clean up after a failure, then report it
            subprocess.run(["kill", "-9", str(pid)], check=False)
    assert not left, f"processes still running after their parent was killed: {left}"
