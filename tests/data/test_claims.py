"""Claims on cache entries: exclusive across threads and processes, released on exit and on death."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time

from data.claims import claim, lock_path, try_claim, wait_for


def _hold(entry, ready, seconds):
    held = try_claim(entry)
    ready.set()
    time.sleep(seconds)
    held.release()


def _hold_until_killed(entry, ready):
    held = try_claim(entry)
    assert held is not None
    ready.set()
    time.sleep(60)


def test_a_claim_excludes_other_claims_until_released(tmp_path):
    entry = tmp_path / "im0.npz"
    first = try_claim(entry)
    assert first is not None and lock_path(entry).is_file() and not entry.exists()
    assert try_claim(entry) is None  # another open file description: even this process is excluded
    assert try_claim(tmp_path / "im1.npz") is not None  # per entry
    first.release()
    with claim(entry) as again:
        assert again is not None and try_claim(entry) is None
    assert try_claim(entry) is not None


def test_a_claim_held_in_a_forkserver_process_makes_others_wait(tmp_path, caplog):
    entry = tmp_path / "im0.npz"
    ctx = mp.get_context("forkserver")
    ready = ctx.Event()
    proc = ctx.Process(target=_hold, args=(entry, ready, 1.0))
    proc.start()
    assert ready.wait(30)
    assert try_claim(entry) is None
    start = time.perf_counter()
    with caplog.at_level("INFO"):
        wait_for(entry, "test entry")
    assert time.perf_counter() - start > 0.3
    assert "waiting for another run" in caplog.text
    proc.join(10)


def test_a_killed_process_leaves_no_stale_claim(tmp_path):
    entry = tmp_path / "im0.npz"
    ctx = mp.get_context("forkserver")
    ready = ctx.Event()
    proc = ctx.Process(target=_hold_until_killed, args=(entry, ready))
    proc.start()
    assert ready.wait(30) and try_claim(entry) is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    assert try_claim(entry) is not None  # the kernel released the dead process's lock


def test_threads_computing_one_entry_compute_it_once(tmp_path):
    entry, computed = tmp_path / "im0.npz", []

    def get():
        if entry.exists():
            return
        with claim(entry):
            if not entry.exists():  # step 2 of the protocol: look again once claimed
                computed.append(1)
                time.sleep(0.2)
                entry.write_text("done")

    threads = [threading.Thread(target=get) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(computed) == 1
