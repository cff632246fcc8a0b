"""Wall time and CPU utilisation per stage of a run: the stage table train_det and test_det print.

CPU time counts this process and every process under it: worker pools, and the forkserver's
children, which ``resource.getrusage(RUSAGE_CHILDREN)`` misses (a forkserver worker is the
server's child, not ours, and the server is reaped only when the run ends). On Linux the tree is
read from ``/proc``: each live process's user + system time plus that of its reaped children
(``cutime`` / ``cstime``), so a worker that exits mid-stage is still counted, once, in its
parent's figures. Elsewhere it falls back to ``getrusage`` of this process and its reaped children.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# CPU time comes in clock ticks (10 ms), counted per process: under a second of wall time the ratio
# CPU / wall is mostly rounding (a stage that found everything cached showed "141 %" of 2 cores).
_MIN_WALL_FOR_RATIO = 1.0


def _proc_stats() -> dict[int, tuple[int, float]] | None:
    """pid -> (parent pid, CPU seconds of it and its reaped children), or None without /proc."""
    out: dict[int, tuple[int, float]] = {}
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
        # fields[1] is the parent pid; [11:15] utime, stime, cutime, cstime in clock ticks (proc(5))
        out[int(entry.name)] = (int(fields[1]), sum(int(v) for v in fields[11:15]) / _TICK)
    return out if os.getpid() in out else None


def tree_cpu_seconds() -> float:
    """User + system CPU seconds used so far by this process and all its descendants."""
    stats = _proc_stats()
    if stats is None:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0.0, [os.getpid()]
    while stack:
        pid = stack.pop()
        total += stats[pid][1]
        stack.extend(children.get(pid, ()))
    return total


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
    """

    name: str
    wall: float
    cpu: float
    cores: int
    disk: int | None = None

    @property
    def cores_busy(self) -> float:
        return self.cpu / self.wall if self.wall > 0 else 0.0

    @property
    def utilisation(self) -> float:
        return self.cores_busy / self.cores


class StageMeter:
    """Records wall time and process-tree CPU time per named stage, and the run's total.

    Usage::

        meter = StageMeter()
        with meter.stage("proposals"):
            ...
        print(meter.table())
    """

    def __init__(self, cores: int | None = None) -> None:
        self.cores = cores or available_cores()
        self.rows: list[StageUsage] = []
        self._start = (time.perf_counter(), tree_cpu_seconds())

    @contextmanager
    def stage(self, name: str, disk: Callable[[], int] | None = None) -> Iterator[None]:
        """Time the block as stage ``name``; ``disk`` (called at its end) gives the bytes it has on disk."""
        wall, cpu = time.perf_counter(), tree_cpu_seconds()
        try:
            yield
        finally:
            self.rows.append(StageUsage(name, time.perf_counter() - wall, tree_cpu_seconds() - cpu, self.cores,
                                        disk() if disk is not None else None))

    def total(self) -> StageUsage:
        """Everything since the meter was made (stages, and the time between them)."""
        return StageUsage("total", time.perf_counter() - self._start[0], tree_cpu_seconds() - self._start[1],
                          self.cores)

    def records(self) -> list[dict[str, float | str]]:
        """The stage table as data: ``[{"stage", "wall_s", "cpu_s"[, "disk_bytes"]}, ...]``, the total last."""
        return [{"stage": row.name, "wall_s": round(row.wall, 2), "cpu_s": round(row.cpu, 2),
                 **({"disk_bytes": row.disk} if row.disk is not None else {})}
                for row in [*self.rows, self.total()]]

    def table(self) -> str:
        """The stage table: wall time, CPU seconds, cores busy (CPU / wall), utilisation of all cores
        and, when any stage measured it, the bytes on disk of what each stage wrote (the total: their sum)."""
        rows = [*self.rows, self.total()]
        sizes = [row.disk for row in self.rows if row.disk is not None]
        w = max(len(row.name) for row in rows)
        head = f"{'stage':<{w}} {'wall':>9} {'CPU s':>9} {'cores busy':>10} {f'util ({self.cores} cores)':>16}"
        lines = [head + (f" {'disk':>9}" if sizes else "")]
        for row in rows:
            ratio = row.wall >= _MIN_WALL_FOR_RATIO
            busy = f"{row.cores_busy:.2f}" if ratio else "-"
            util = f"{100 * row.utilisation:.0f}%" if ratio else "-"
            disk = sum(sizes) if row.name == "total" and row is rows[-1] else row.disk
            size = f" {_size(disk) if disk is not None else '-':>9}" if sizes else ""
            lines.append(f"{row.name:<{w}} {_clock(row.wall):>9} {row.cpu:>9.1f} {busy:>10} {util:>16}{size}")
        return "\n".join(lines)


def _size(nbytes: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


def _clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:04.1f}"
