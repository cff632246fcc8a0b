"""A run killed in the middle of a stage keeps its time: the next run finds its table so far, the
stage in progress counted to its last write, and adds it to the runs once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from detection.runtime.ledger import StageLedger, ledger_path, merge_runs, read_runs, recover
from detection.runtime.usage import StageMeter

KILLED_RUN = """
import sys, time
from pathlib import Path
from detection.runtime.ledger import StageLedger
from detection.runtime.usage import StageMeter
meter = StageMeter(cores=2)
ledger = StageLedger(Path(sys.argv[1]), meter, every_s=0.1).start()
with meter.stage("proposals"):
    time.sleep(0.2)
with meter.stage("finetune"):
    print("in finetune", flush=True)
    time.sleep(60)
"""


def test_a_killed_runs_time_counts_once_in_the_runs_that_resume_it(tmp_path: Path) -> None:
    runs_file = tmp_path / "stages.json"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(runs_file)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "in finetune"
    time.sleep(1.0)  # ten writes into the stage in progress
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not runs_file.exists() and ledger_path(runs_file).is_file()  # the table never reached the runs

    killed = recover(runs_file)
    assert killed is not None and killed["interrupted"] and not ledger_path(runs_file).exists()
    stages = {row["stage"]: row["wall_s"] for row in killed["stages"]}
    assert list(stages) == ["proposals", "finetune", "total"]
    assert stages["proposals"] >= 0.2 and 0.7 <= stages["finetune"] <= 1.5  # killed after ~1 s in it
    assert recover(runs_file) is None and read_runs(runs_file) == [killed]  # nothing left to add

    meter = StageMeter(cores=2)  # the run that resumes it
    ledger = StageLedger(runs_file, meter, every_s=0.1).start()
    with meter.stage("finetune"):
        time.sleep(0.3)
    ledger.finish()
    runs = read_runs(runs_file)
    assert len(runs) == 2 and "interrupted" not in runs[1] and not ledger_path(runs_file).exists()
    merged = {row["stage"]: row["wall_s"] for row in merge_runs(runs)}
    assert merged["finetune"] >= stages["finetune"] + 0.3


def test_a_run_killed_between_recording_and_dropping_its_ledger_counts_once(tmp_path: Path) -> None:
    runs_file = tmp_path / "stages.json"
    meter = StageMeter(cores=1)
    ledger = StageLedger(runs_file, meter, every_s=60).start()
    with meter.stage("svm"):
        pass
    ledger.finish()
    ledger_path(runs_file).write_text(json.dumps(ledger.table(interrupted=True)))  # as if not yet dropped
    recover(runs_file)
    assert len(read_runs(runs_file)) == 1 and not ledger_path(runs_file).exists()


def test_a_torn_ledger_is_dropped(tmp_path: Path) -> None:
    runs_file = tmp_path / "stages.json"
    ledger_path(runs_file).write_text('{"run": "ab", "stag')
    assert recover(runs_file) is None and not ledger_path(runs_file).exists() and not runs_file.exists()
