"""Several classes' SVMs fitted at once, in worker processes, with the results of fitting them in turn.

Why processes, not threads: liblinear releases the GIL, but sklearn's copy of it draws its
coordinate-descent order from ONE process-wide Mersenne Twister (``sklearn/svm/src/newrand``),
reseeded by every fit, so two fits in threads of one process would interleave their draws and
give different weights from run to run. In a process of its own each fit is exactly the serial
one: same inputs, same seed, same single-threaded solver, so its weights are bit-identical.
Workers are forkserver processes (as the proposal workers are): a child forked from a process
whose torch / OpenMP thread pools have run can deadlock.

Memory: a fit in flight holds its (P + M, D) float32 matrix in this process until it returns and
about FIT_BYTES_PER_ENTRY per entry in its worker. So that the fits of a retrain round (every class
at once) do not all sit in memory together, :meth:`SolverPool.submit` waits, before it starts
another, until fewer than ``workers`` fits are in flight and their estimated bytes fit
``budget_bytes`` (one fit always runs, whatever its size). Waiting changes no result: each fit is
the same function of the same inputs.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from types import TracebackType

import numpy as np
from threadpoolctl import threadpool_limits

from data.workers import exit_with_parent
from svm.config import SVMConfig
from svm.solver import FitStats, fit_class

FitResult = tuple[np.ndarray, float, np.ndarray, FitStats]  # what svm.solver.fit_class returns
# Fits of fewer feature entries ((P + M) x D) run here: on the embedded set a class fits in ~0.1 s,
# less than sending it to a worker, and a run whose fits are all small starts no process at all.
# Measured 2026-11-26: 12 classes of ~2,300 x 512 entries fit in ~1 s together. VOC's 4096-d fc7
# with thousands of cached negatives is 10-100x above this.
MIN_POOLED_ENTRIES = 1 << 22
# Bytes a fit takes per entry: the float32 matrix sent to the worker (4), sklearn's float64 copy
# (8) and liblinear's sparse copy (16 per non-zero) (svm.solver.fit_class).
FIT_BYTES_PER_ENTRY = 28


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which shuts the pool
    exit_with_parent()  # a SIGKILLed parent (OOM killer) cannot shut it: the worker ends itself
    # One of ``workers`` processes sharing the cores: numpy's BLAS on one thread, as in the
    # parent's mining pass (svm.train), so no idle BLAS thread spins on another process's core.
    threadpool_limits(limits=1, user_api="blas")


class SolverPool:
    """Fits per-class SVMs (``svm.solver.fit_class``), in ``workers`` processes or, with 1, here.

    A fit of fewer than ``min_entries`` feature entries runs here at once (see MIN_POOLED_ENTRIES).
    At most ``workers`` fits are in flight, and no more than ``budget_bytes`` of them by
    FIT_BYTES_PER_ENTRY (None: no bound but the workers): :meth:`submit` waits for earlier ones.

    Usage::

        with SolverPool(2) as pool:
            futures = [pool.submit(pos[k], neg[k], cfg, f"class {k}") for k in due]
            results = [f.result() for f in futures]  # in submission order, whatever finished first
    """

    def __init__(self, workers: int = 1, min_entries: int = MIN_POOLED_ENTRIES,
                 budget_bytes: int | None = None) -> None:
        self.workers, self.min_entries, self.budget = max(1, int(workers)), int(min_entries), budget_bytes
        self._executor: ProcessPoolExecutor | None = None
        self._in_flight: dict[Future[FitResult], int] = {}  # fit -> its estimated bytes
        self.peak_in_flight = 0  # the most fits in flight at once (what the bound allowed)

    def _make_room(self, need: int) -> None:
        """Wait until one more fit of ``need`` bytes may start (see the class doc)."""
        def full() -> bool:
            held = sum(self._in_flight.values())
            return len(self._in_flight) >= self.workers or (self.budget is not None and held + need > self.budget)
        while self._in_flight and full():
            done, _ = wait(list(self._in_flight), return_when=FIRST_COMPLETED)
            for fit in done:
                del self._in_flight[fit]

    def submit(self, positives: np.ndarray, negatives: np.ndarray, cfg: SVMConfig, name: str) -> Future[FitResult]:
        """Start one fit; (P, D) positives and (M, D) negatives are float32 scaled features."""
        if self.workers == 1 or positives.size + negatives.size < self.min_entries:  # here, at once: the serial path
            done: Future[FitResult] = Future()
            done.set_result(fit_class(positives, negatives, cfg, name))
            return done
        if self._executor is None:  # started on first use: a run with nothing to fit starts no process
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(["svm.solver"])
            self._executor = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker)
        need = FIT_BYTES_PER_ENTRY * (positives.size + negatives.size)
        self._make_room(need)
        fit = self._executor.submit(fit_class, positives, negatives, cfg, name)
        self._in_flight[fit] = need
        self.peak_in_flight = max(self.peak_in_flight, len(self._in_flight))
        return fit

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
            self._in_flight.clear()

    def __enter__(self) -> SolverPool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
