"""The stage tables of a stage list that may be killed and resumed: a killed run's time still counts.

A run's stage table reaches its runs file (a work dir's ``stages.json``) when the run ends. A run
killed before that (out of memory, a closed session, Ctrl-C) would leave nothing, and the run that
resumes it would report only its own share: a 3-hour fine-tuning killed at step 1,200 of 1,500 and
resumed read "38 min". So while a run works, :class:`StageLedger` rewrites its table so far (the
stage in progress included) into a ledger file next to the runs file every ``every_s`` seconds and
at the end of each stage; the next run first moves a leftover ledger into the runs file
(:func:`recover`), once, so that a killed run loses at most ``every_s`` seconds of its time.
:func:`merge_runs` adds the runs of one piece of work into one table.

Runs file: ``[{"run": id, "cores": n, "stages": [{"stage", "wall_s", "cpu_s"[, "disk_bytes"]
[, "peak_rss_bytes"]}, ..., total last][, "interrupted": true]}, ...]`` (runs written before the
ledger have no ``"run"``).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from data.cache import atomic_write_text
from detection.runtime.usage import StageMeter

LEDGER_EVERY_S = 60.0  # what a killed run may lose of its time


def ledger_path(runs_file: Path) -> Path:
    """Where the run in progress keeps its table: ``.<runs file>.running`` beside it."""
    return runs_file.with_name(f".{runs_file.name}.running")


def read_runs(runs_file: Path) -> list[dict]:
    """The runs recorded in ``runs_file`` (none when it does not exist)."""
    return json.loads(runs_file.read_text()) if runs_file.is_file() else []


def append_run(runs_file: Path, run: dict) -> None:
    """Add ``run`` to ``runs_file`` unless a run of its id is there already (atomic)."""
    runs = read_runs(runs_file)
    if run.get("run") is None or all(r.get("run") != run["run"] for r in runs):
        atomic_write_text(runs_file, json.dumps([*runs, run], indent=1))


def recover(runs_file: Path) -> dict | None:
    """Move a killed run's ledger into ``runs_file`` (marked ``"interrupted"``); the run, or None."""
    ledger = ledger_path(runs_file)
    try:
        run = json.loads(ledger.read_text())
    except (OSError, json.JSONDecodeError):  # none, or one torn by a crash of the disk itself
        ledger.unlink(missing_ok=True)
        return None
    append_run(runs_file, run)
    ledger.unlink(missing_ok=True)
    return run


class StageLedger:
    """Keeps ``meter``'s table so far in :func:`ledger_path` of ``runs_file`` while a run works.

    Usage: ``ledger = StageLedger(runs_file, meter).start()``; the run's stages; then
    :meth:`finish`, which appends the finished run's table to ``runs_file`` and drops the ledger.
    """

    def __init__(self, runs_file: Path, meter: StageMeter, every_s: float = LEDGER_EVERY_S) -> None:
        self.runs_file, self.meter, self.every_s = runs_file, meter, every_s
        self.run_id = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stage-ledger", daemon=True)

    def table(self, interrupted: bool) -> dict:
        """This run's entry of the runs file, the stage in progress counted to now."""
        return {"run": self.run_id, "cores": self.meter.cores, "stages": self.meter.records(),
                **({"interrupted": True} if interrupted else {})}

    def _write(self) -> None:
        atomic_write_text(ledger_path(self.runs_file), json.dumps(self.table(interrupted=True)))

    def _run(self) -> None:
        """Write every ``every_s`` seconds, and within a second of a stage's end."""
        written, stages = time.monotonic(), len(self.meter.rows)
        while not self._stop.wait(min(1.0, self.every_s)):
            if time.monotonic() - written >= self.every_s or len(self.meter.rows) != stages:
                written, stages = time.monotonic(), len(self.meter.rows)
                self._write()

    def start(self) -> StageLedger:
        self._write()
        self._thread.start()
        return self

    def finish(self) -> None:
        """Stop writing; the run's full table into the runs file, then the ledger goes (a kill in
        between: :func:`recover` finds the run's id recorded and adds nothing)."""
        self._stop.set()
        self._thread.join()
        append_run(self.runs_file, self.table(interrupted=False))
        ledger_path(self.runs_file).unlink(missing_ok=True)


def merge_runs(runs: Sequence[dict]) -> list[dict]:
    """One piece of work's stage table from its runs (a resumed training appends a run): per stage, in
    the order stages first appear (the total last), wall and CPU seconds summed over the runs, the
    peak resident memory the largest, the bytes on disk the last run's that measured them.

    Args:
        runs: ``[{"stages": [{"stage", "wall_s", "cpu_s"[, "disk_bytes"][, "peak_rss_bytes"]},
            ..., total last]}, ...]``.

    Returns:
        ``[{"stage", "wall_s", "cpu_s"[, "peak_rss_bytes"][, "disk_bytes"]}, ...]``, the total last; a
        key is left out where no run measured it.
    """
    merged: dict[str, dict] = {}
    for run in runs:
        for row in run["stages"]:
            into = merged.setdefault(row["stage"], {"stage": row["stage"], "wall_s": 0.0, "cpu_s": 0.0})
            into["wall_s"] = round(into["wall_s"] + row["wall_s"], 2)
            into["cpu_s"] = round(into["cpu_s"] + row["cpu_s"], 2)
            if "peak_rss_bytes" in row:
                into["peak_rss_bytes"] = max(into.get("peak_rss_bytes", 0), row["peak_rss_bytes"])
            if "disk_bytes" in row:
                into["disk_bytes"] = row["disk_bytes"]
    total = merged.pop("total", None)
    return [*merged.values(), *([total] if total else [])]
