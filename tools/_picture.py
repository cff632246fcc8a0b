"""The picture of a reported table (its spec's ``picture``): tools/demo.py's grid of one recorded
model on the first test images of its dataset, drawn by tools/reproduce.py after the record, so that
the README's picture is made by our command from a run that has a record, like every figure.

Beside the table's records, ``picture.json`` says which model drew it (the record's config hash),
on which images, at which threshold and with which command: a newer model of that row (another
hash) makes the picture stale, and reproduce draws it again."""

from __future__ import annotations

import argparse
import datetime
import json
import logging
from pathlib import Path

from data.cache import atomic_write_text
from data.voc import load_voc
from eval.run_records import TableSpec, read_record
from tools._runs import REPO, ensure_data, execute, shown, tool

log = logging.getLogger("reproduce")


def picture_state(spec: TableSpec, records: Path) -> str | None:
    """``drawn``, ``STALE, to draw`` (of another model than the row's record), ``to draw`` (the
    record is there, the picture is not) or ``waits for its record``; None for a table without one."""
    if spec.picture is None:
        return None
    row_id, seed, _, out = spec.picture
    record = read_record(spec.record_path(records, next(r for r in spec.rows if r.id == row_id), seed))
    if record is None:
        return "waits for its record"
    path = spec.picture_record_path(records)
    drawn = json.loads(path.read_text()) if path.is_file() else None
    if drawn is None or not (REPO / out).is_file():
        return "to draw"
    return "drawn" if drawn["config_sha1"] == record["config_sha1"] else "STALE, to draw"


def draw_picture(spec: TableSpec, args: argparse.Namespace, commit: str) -> None:
    """Draw the table's picture (tools/demo.py --grid on the record's work dir) unless it is drawn
    from the current record already; write picture.json beside the records."""
    state = picture_state(spec, args.records)
    if state in (None, "drawn", "waits for its record"):
        return
    row_id, seed, count, out = spec.picture
    record = read_record(spec.record_path(args.records, next(r for r in spec.rows if r.id == row_id), seed))
    data = ensure_data(spec, args.runs_dir, args.records, args.device, seed)
    images = [shown(r.path) for r in load_voc(data, "test").records[:count]]
    work = Path(record["work_dir"])
    command = tool("demo.py", "--work-dir", str(work), "--out", str(work / "picture"), "--grid", out,
                   "--no-progress", "--device", args.device, *images)
    execute(command, f"{spec.id}: picture of {row_id} seed {seed}")
    atomic_write_text(spec.picture_record_path(args.records), json.dumps(
        {"table": spec.id, "row": row_id, "seed": seed, "config_sha1": record["config_sha1"], "map": record["map"],
         "images": images, "threshold": record.get("demo", {}).get("threshold"), "out": out,
         "command": " ".join(command), "commit": commit, "date": datetime.date.today().isoformat()},
        indent=1, sort_keys=True) + "\n")
    log.info("picture %s from %s/%s seed %d", out, spec.id, row_id, seed)
