"""One record of a reference table (tools/reproduce.py): tools/faster_rcnn.py, torchvision's Faster
R-CNN on the same ImageNet MobileNetV2 trunk, trained and tested on the table's detection set with
the row's flags, scored by our evaluator. It trains in the work dir named by the hash of the record's
resolved settings and resumes there, so an interrupted run continues and a finished one is read again."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
from collections.abc import Sequence

from data.errors import InputError
from eval.run_records import RowSpec, TableSpec
from tools import faster_rcnn
from tools._runs import ensure_data, execute, tool, work_dir


def row_flags(row: RowSpec, seed: int) -> list[str]:
    """The row's flags of tools/faster_rcnn.py and the record's seed."""
    return [*row.args, "--seed", str(seed)]


def settings(spec: TableSpec, row: RowSpec, seed: int) -> dict:
    """tools/faster_rcnn.py's resolved config for this row x seed (what decides its figure), from its
    flags, without running it.

    Raises:
        InputError: a flag the tool does not take, or a bad value.
    """
    usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage):
            args = faster_rcnn.parse_args(["--data-root", "DATA", "--work-dir", "WORK", *row_flags(row, seed)])
    except SystemExit:
        message = usage.getvalue().strip().splitlines()[-1:] or ["bad flags"]
        raise InputError(f"{spec.id}/table.yaml", f"row {row.id!r}: {message[0]}") from None
    return json.loads(json.dumps(dataclasses.asdict(faster_rcnn.resolve_config(args))))


def run_reference(spec: TableSpec, row: RowSpec, seed: int, sha1: str, args: argparse.Namespace,
                  extra: Sequence[str] = ()) -> dict:
    """Train (resuming) and test tools/faster_rcnn.py for one row x seed; the record's scores, times
    and command."""
    data = ensure_data(spec, args.runs_dir, args.records, args.device, seed)
    work = work_dir(args.runs_dir, sha1)
    out = work / "record.json"
    command = tool("faster_rcnn.py", "--data-root", str(data), "--work-dir", str(work), *row_flags(row, seed),
                   "--json", str(out), "--device", args.device, "--resume", "--no-progress")
    if not out.is_file():
        execute(command, f"{spec.id}/{row.id} seed {seed}")
    r = json.loads(out.read_text())
    return {"map": r["map"], "ap": r["ap"], "metric": r.get("metric", "voc07"), "split": "test",
            "train_s": r["train_s"], "steps": r.get("steps"), "median_s_per_step": r.get("median_s_per_step"),
            "test_s_per_image": r["test_s_per_image"], "test_images": r["test_images"],
            "commands": [" ".join(command)], "work_dir": str(work)}
