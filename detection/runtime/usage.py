"""Wall time, CPU utilisation and peak memory per stage of a run: the stage table train_det and test_det print.

CPU time counts this process and every process under it: worker pools, and the forkserver's
children, which ``resource.getrusage(RUSAGE_CHILDREN)`` misses (a forkserver worker is the
server's child, not ours, and the server is reaped only when the run ends). On Linux the tree is
read from ``/proc``: each live process's user + system time plus that of its reaped children
(``cutime`` / ``cstime``), so a worker that exits mid-stage is still counted, once, in its
parent's figures. Elsewhere it falls back to ``getrusage`` of this process and its reaped children.

Memory is the resident set size (RSS) of the same tree, summed over its processes and sampled by a
thread while a stage runs (every ``rss_interval`` seconds, and at the stage's start and end); the
stage's figure is the largest sum seen. A page shared by several processes (a forked worker's
copy-on-write pages, a shared library) counts once per process, so the sum can exceed what the tree
takes from the machine; a peak shorter than the interval can be missed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# CPU time comes in clock ticks (10 ms), counted per process: under a second of wall time the ratio
# CPU / wall is mostly rounding (a stage that found everything cached showed "141 %" of 2 cores).
_MIN_WALL_FOR_RATIO = 1.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if ctypes.util.find_library("c") else None
# Freed memory handed back below this is not worth a log line.
_LOG_RETURNED = 256 * 2**20

log = logging.getLogger(__name__)


class _Proc(NamedTuple):
    """One process as ``/proc/<pid>/stat`` shows it."""

    ppid: int
    cpu: float  # CPU seconds of it and its reaped children
    rss: int  # resident bytes now


def _proc_stats() -> dict[int, _Proc] | None:
    """pid -> its :class:`_Proc` for every process on the machine, or None without /proc."""
    out: dict[int, _Proc] = {}
    try:
        entries = [p for p in Path("/proc").iterdir() if p.name.isdigit()]
    except OSError:
        return None
    for entry in entries:
        try:
            text = (entry / "stat").read_text()
        except OSError:  # exited while we looked
            continue
        fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces
        # proc(5), counted from field 3: [1] the parent pid; [11:15] utime, stime, cutime, cstime in
        # clock ticks; [21] rss in pages (the count statm's second field gives)
        out[int(entry.name)] = _Proc(int(fields[1]), sum(int(v) for v in fields[11:15]) / _TICK,
                                     int(fields[21]) * _PAGE)
    return out if os.getpid() in out else None


def _tree(stats: dict[int, _Proc]) -> list[_Proc]:
    """This process and all its descendants among ``stats``."""
    children: dict[int, list[int]] = {}
    for pid, proc in stats.items():
        children.setdefault(proc.ppid, []).append(pid)
    tree: list[_Proc] = []
    stack = [os.getpid()]
    while stack:
        pid = stack.pop()
        tree.append(stats[pid])
        stack.extend(children.get(pid, ()))
    return tree


def tree_cpu_seconds() -> float:
    """User + system CPU seconds used so far by this process and all its descendants."""
    stats = _proc_stats()
    if stats is None:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    return sum(proc.cpu for proc in _tree(stats))


def tree_rss_bytes() -> int:
    """Resident bytes of this process and all its descendants now (one that exits while read: skipped).

    Without /proc: this process's own peak so far (``ru_maxrss``), its workers not counted.
    """
    stats = _proc_stats()
    if stats is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # macOS counts bytes, Linux KiB
    return sum(proc.rss for proc in _tree(stats))


def return_freed_memory() -> tuple[int, int]:
    """Hand the system back what this process freed but its C library kept; the tree's resident
    bytes before and after.

    glibc's malloc keeps freed blocks in its arenas for reuse, and serves every block under its
    mmap threshold from them; the threshold rises to the largest block freed so far (up to 32 MiB).
    A stage that allocates and frees gigabytes in pieces of a few MiB (fine-tuning's pool, the SVM
    stage's stores and fits) leaves the process that much larger for the rest of the run, and every
    later stage's peak carries it. ``malloc_trim(0)`` returns those pages. Without glibc: nothing
    to do (``malloc_trim`` absent), the figures the same.
    """
    before = tree_rss_bytes()
    gc.collect()
    trim = getattr(_LIBC, "malloc_trim", None)
    if trim is not None:
        trim(0)
    return before, tree_rss_bytes()


class PeakSampler:
    """The largest :func:`tree_rss_bytes` seen between :meth:`start` and :meth:`stop`.

    A daemon thread samples every ``interval`` seconds; start and stop sample once each themselves,
    so a block shorter than the interval still has a figure.
    """

    def __init__(self, interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"the sampling interval must be > 0 s, got {interval}")
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        self.peak = max(self.peak, tree_rss_bytes())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> PeakSampler:
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> int:
        """Stop the thread (it ends within one sample) and return the peak in bytes."""
        self._stop.set()
        self._thread.join()
        self._sample()
        return self.peak


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), the denominator of utilisation."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def disk_bytes(paths: Iterable[Path]) -> int:
    """Bytes of the files ``paths`` and of every file under the folders among them (missing: 0)."""
    total = 0
    for path in paths:
        try:
            if Path(path).is_dir():
                total += sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
            elif Path(path).is_file():
                total += Path(path).stat().st_size
        except OSError:  # removed while we looked (another run's temporary file)
            continue
    return total


@dataclass(frozen=True)
class StageUsage:
    """One row of the stage table.

    Attributes:
        name: the stage. wall: wall-clock seconds. cpu: CPU seconds of the process tree.
        cores: cores available; utilisation = cpu / wall / cores (1.0: every core busy throughout).
        disk: bytes on disk of what the stage writes (its cache folder, its outputs) once it is
            done, None when not measured.
        peak_rss: the largest resident bytes of the process tree seen during the stage (the total:
            the largest over the stages), None when not measured (a stage table written before).
    """

    name: str
    wall: float
    cpu: float
    cores: int
    disk: int | None = None
    peak_rss: int | None = None

    @property
    def cores_busy(self) -> float:
        return self.cpu / self.wall if self.wall > 0 else 0.0

    @property
    def utilisation(self) -> float:
        return self.cores_busy / self.cores


class StageMeter:
    """Records wall time, process-tree CPU time and peak resident memory per named stage, and the run's total.

    Usage::

        meter = StageMeter()
        with meter.stage("proposals"):
            ...
        print(meter.table())

    Args:
        cores: the cores utilisation is counted against (default: those this process may run on).
        rss_interval: seconds between two samples of the tree's resident memory during a stage.
    """

    def __init__(self, cores: int | None = None, rss_interval: float = 0.5) -> None:
        self.cores = cores or available_cores()
        self.rss_interval = rss_interval
        self.rows: list[StageUsage] = []
        self._start = (time.perf_counter(), tree_cpu_seconds())
        self._running: tuple[str, float, float, PeakSampler] | None = None  # the stage in progress

    @contextmanager
    def stage(self, name: str, disk: Callable[[], int] | None = None) -> Iterator[None]:
        """Time the block as stage ``name``; ``disk`` (called at its end) gives the bytes it has on disk.

        Memory freed by the stages before it goes back to the system first (:func:`return_freed_memory`),
        so that its peak is its own and the run's what it needs at once."""
        before, after = return_freed_memory()
        if before - after >= _LOG_RETURNED:
            log.info("before stage %s: %s of freed memory returned to the system (resident %s -> %s)", name,
                     _size(before - after), _size(before), _size(after))
        rss = PeakSampler(self.rss_interval).start()
        wall, cpu = time.perf_counter(), tree_cpu_seconds()
        self._running = (name, wall, cpu, rss)
        try:
            yield
        finally:
            self._running = None
            wall, cpu, peak = time.perf_counter() - wall, tree_cpu_seconds() - cpu, rss.stop()
            self.rows.append(StageUsage(name, wall, cpu, self.cores, disk() if disk is not None else None, peak))

    def running(self) -> list[StageUsage]:
        """The stage in progress counted to now (its peak memory so far), or nothing between stages."""
        if (run := self._running) is None:
            return []
        name, wall, cpu, rss = run
        return [StageUsage(name, time.perf_counter() - wall, tree_cpu_seconds() - cpu, self.cores, None, rss.peak)]

    def total(self) -> StageUsage:
        """Everything since the meter was made (stages, and the time between them); its peak memory is
        the largest of the stages' (between stages nothing is sampled)."""
        peaks = [row.peak_rss for row in [*self.rows, *self.running()] if row.peak_rss is not None]
        return StageUsage("total", time.perf_counter() - self._start[0], tree_cpu_seconds() - self._start[1],
                          self.cores, peak_rss=max(peaks) if peaks else None)

    def records(self) -> list[dict[str, float | str]]:
        """The stage table as data: ``[{"stage", "wall_s", "cpu_s"[, "disk_bytes"][, "peak_rss_bytes"]}, ...]``,
        the stage in progress (if any) counted to now, the total last; a key is left out where its
        figure was not measured."""
        return [{"stage": row.name, "wall_s": round(row.wall, 2), "cpu_s": round(row.cpu, 2),
                 **({"disk_bytes": row.disk} if row.disk is not None else {}),
                 **({"peak_rss_bytes": row.peak_rss} if row.peak_rss is not None else {})}
                for row in [*self.rows, *self.running(), self.total()]]

    def table(self) -> str:
        """The stage table: wall time, CPU seconds, cores busy (CPU / wall), utilisation of all cores and,
        when any stage measured them, the peak resident memory of the process tree (the total: the largest)
        and the bytes on disk of what each stage wrote (the total: their sum); "-" where a row lacks one."""
        rows = [*self.rows, self.total()]
        sizes = [row.disk for row in self.rows if row.disk is not None]
        peaks = any(row.peak_rss is not None for row in self.rows)
        w = max(len(row.name) for row in rows)
        head = f"{'stage':<{w}} {'wall':>9} {'CPU s':>9} {'cores busy':>10} {f'util ({self.cores} cores)':>16}"
        lines = [head + (f" {'peak RSS':>9}" if peaks else "") + (f" {'disk':>9}" if sizes else "")]
        for row in rows:
            ratio = row.wall >= _MIN_WALL_FOR_RATIO
            busy = f"{row.cores_busy:.2f}" if ratio else "-"
            util = f"{100 * row.utilisation:.0f}%" if ratio else "-"
            disk = sum(sizes) if row.name == "total" and row is rows[-1] else row.disk
            rss = f" {_optional_size(row.peak_rss):>9}" if peaks else ""
            size = f" {_optional_size(disk):>9}" if sizes else ""
            lines.append(f"{row.name:<{w}} {_clock(row.wall):>9} {row.cpu:>9.1f} {busy:>10} {util:>16}{rss}{size}")
        return "\n".join(lines)


def _optional_size(nbytes: int | None) -> str:
    return _size(nbytes) if nbytes is not None else "-"


def _size(nbytes: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


def _clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:04.1f}"
