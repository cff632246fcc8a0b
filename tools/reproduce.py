"""Train and test every row x seed of the reported tables, and write one run record for each.

A table is a folder under tools/configs/ (table.yaml: its rows, seeds, data and the paper's figures;
one config file per row, or an image_svm row's flags). For each row and seed this writes the embedded
dataset when it is not there yet (tools/make_synthetic.py), trains (tools/train_det.py, or
tools/train_cls.py for a classifier table) into a work dir named by the hash of the resolved config,
tests it (tools/test_det.py), or for an image_svm table runs tools/image_svm.py (whole-image SPP +
linear SVMs), for a reference table tools/faster_rcnn.py (torchvision's Faster R-CNN), and writes
docs/results/records/<table>/<row>-s<seed>.json: the scores (mAP and AP per class, top-1 error, or
the SVMs' mAP / accuracy per split), train time, test seconds per image, the resolved config and its
hash, commit, machine and date. A record of the same resolved config is not run again (an option
removed from the code since does not count; a changed value or a new option does), so an interrupted
reproduce continues where it stopped (every tool it runs resumes too) and rows that share a training
(Table 9's "ftfc7" and "ftfc7 bb") train once. Per-image caches (proposals, conv5 maps, image
vectors) are shared by the rows of every table except a scaling table, whose rows (each with its own
dataset sizes) train and test like a detector row from cold caches of their own, and whose records
keep the stage tables of both (wall, CPU, peak memory, disk per stage), which docs/performance.md
fits. A table with a picture (the main job's: docs/demo_grid.png, the README's) gets tools/demo.py's
grid of its recorded model, drawn again when that record is. Then tools/render_docs.py renders
docs/results.md, the README's table and docs/performance.md's scaling section.

Examples:
  python tools/reproduce.py --list                      # every table's rows, seeds and whether recorded
  python tools/reproduce.py main                        # the main job, 3 seeds
  python tools/reproduce.py table9 --rows pool5 --seeds 0
  python tools/reproduce.py table7 --rows spp one_level   # whole-image SPP + SVMs, two ablation rows
  python tools/reproduce.py main table9 && python tools/render_docs.py
  python tools/reproduce.py scaling && python tools/render_docs.py   # cost per stage as the work grows
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from data.errors import InputError
from data.synthetic import PRESETS, record_settings
from detection.classification.config import ADDED_KEYS as CLASSIFIER_ADDED_KEYS
from detection.classification.config import ClassifierConfig
from detection.config import ADDED_KEYS, RENAMED_KEYS, load_train_config
from detection.runtime.config_io import config_to_dict, fill_added, load_dataclass, rename_keys
from detection.speed.report import machine as cpu_and_gpu
from eval.run_records import RowSpec, TableSpec, load_specs, read_record, still_current, write_record
from tools._cli import run_cli, setup_logging
from tools._image_svm_runs import run_image_svm
from tools._image_svm_runs import settings as image_svm_settings
from tools._picture import draw_picture, picture_state
from tools._reference_runs import run_reference
from tools._reference_runs import settings as reference_settings
from tools._runs import data_seed, detection_set, run_classifier, run_detector, shown, work_dir
from tools._scaling_runs import run_scaling

log = logging.getLogger("reproduce")
TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
RUNS_DIR = Path("runs/results")  # relative to the repository root, as the records show it


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tables", nargs="*", metavar="TABLE", help="table ids (folders of --configs; default: all)")
    p.add_argument("--rows", nargs="+", metavar="ID", help="only these rows")
    p.add_argument("--seeds", type=int, nargs="+", metavar="S", help="only these seeds (default: the table's)")
    p.add_argument("--configs", type=Path, default=TOOLS / "configs", help="where the table folders are")
    p.add_argument("--records", type=Path, default=REPO / "docs" / "results" / "records",
                   help="where the run records go (default: docs/results/records)")
    p.add_argument("--runs-dir", type=Path, default=RUNS_DIR,
                   help="datasets, work dirs and the shared caches, relative to the repository root "
                        "(default: runs/results)")
    p.add_argument("--device", default="cpu", help="cpu or cuda, passed to every tool")
    p.add_argument("--list", action="store_true", help="list the runs and whether they are recorded; run nothing")
    p.add_argument("--force", action="store_true", help="run and record again even where a record matches")
    return p.parse_args(argv)


def data_spec(spec: TableSpec, seed: int = 0) -> dict:
    """The data of the table's record of ``seed`` as records keep it: its table.yaml entry (``seed:
    each`` as the seed it stands for) and, for a detection set, the settings of its preset
    (data.synthetic.PRESETS), so that a preset that changes what it draws makes the table's records
    stale, as a changed config does."""
    if not detection_set(spec):
        return dict(spec.data)
    preset = str(spec.data.get("preset", "voc07"))
    if preset not in PRESETS:
        raise InputError(f"{spec.id}/table.yaml", f"unknown data preset {preset!r}; presets: {sorted(PRESETS)}")
    each = {"seed": data_seed(spec, seed)} if "seed" in spec.data else {}
    return {**spec.data, **each, "synthetic": record_settings(config_to_dict(PRESETS[preset]))}


def resolved(spec: TableSpec, row: RowSpec, seed: int, trunk: list | None = None,
             runs: Path = RUNS_DIR) -> list:
    """The resolved config (the rules of the training tool; an image_svm or reference row's: the tool's settings)
    and the data it trains on, as plain data; for a row that starts from a classifier run (``trunk``:
    that run's resolved config), its work dir under ``runs`` as ``features.pretrained`` (image_svm:
    ``--pretrained``) and its config beside the data. A scaling row's data: its sizes merged over the
    table's."""
    spec = spec.for_row(row)
    data = {**data_spec(spec, seed), **({"trunk": trunk} if trunk else {})}
    extra = trunk_overrides(trunk, runs, spec.kind)
    if spec.kind == "image_svm":
        return [image_svm_settings(spec, row, seed, extra), data]
    if spec.kind == "reference":
        return [reference_settings(spec, row, seed), data]
    overrides = [f"seed={seed}", *extra, *row.set]
    if spec.kind == "classifier":
        cfg = load_dataclass(ClassifierConfig(), row.config, overrides)
    else:
        cfg = load_train_config(row.config, overrides)
    return [config_to_dict(cfg), data]


def trunk_overrides(trunk: list | None, runs: Path, kind: str = "detector") -> list[str]:
    """``features.pretrained=<work dir of the classifier run>`` (work dirs are named by config hash);
    for image_svm, the tool's ``--backbone <the classifier's> --pretrained <its work dir>``."""
    if not trunk:
        return []
    work = str(work_dir(runs, sha1_of(trunk)))
    if kind == "image_svm":
        return ["--backbone", str(trunk[0]["model"]["backbone"]), "--pretrained", work]
    return [f"features.pretrained={work}"]


def sha1_of(now: list) -> str:
    return hashlib.sha1(json.dumps(now, sort_keys=True).encode()).hexdigest()


def trunk_run(spec: TableSpec, specs: Sequence[TableSpec],
              row: RowSpec | None = None) -> tuple[TableSpec, RowSpec, int] | None:
    """The classifier table, row and seed that ``spec``'s rows (``row``, whose own trunk comes first)
    start from, or None."""
    ref = row.trunk if row is not None and row.trunk is not None else spec.trunk
    if ref is None:
        return None
    table, row_id, seed = ref
    source = next((s for s in specs if s.id == table and s.kind == "classifier"), None)
    row = next((r for r in source.rows if r.id == row_id), None) if source else None
    if row is None:
        raise InputError(f"{spec.id}/table.yaml", f"trunk: no classifier row {row_id!r} in a table {table!r}")
    return source, row, seed


def config_sha1(spec: TableSpec, row: RowSpec, seed: int, now: list | None = None) -> str:
    """The hash of :func:`resolved` (``now``, when the caller has it already)."""
    return sha1_of(resolved(spec, row, seed) if now is None else now)


def is_current(old: dict | None, row: RowSpec, now: list, sha1: str) -> bool:
    """Whether the record ``old`` is of what this row trains now (``now``, its hash ``sha1``): the
    same resolved config (by hash, or key by key where the record keeps it, a key removed from the
    code since not counting, a renamed one read under its new name, one added since read at the
    value that behaves as before) and the same test-time settings."""
    if old is None or old.get("test_set", []) != list(row.test_set):
        return False
    if old["config_sha1"] == sha1:
        return True
    if "resolved" not in old:
        return False
    added = {"classifier": CLASSIFIER_ADDED_KEYS, "detector": ADDED_KEYS, "scaling": ADDED_KEYS}.get(old.get("kind", "detector"), {})
    recorded = fill_added(rename_keys(old["resolved"][0], RENAMED_KEYS), added)
    return still_current([recorded, *old["resolved"][1:]], now)


def machine() -> str:
    """The CPU model (and GPU), its cores and memory, in one line."""
    gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{len(os.sched_getaffinity(0))} cores of {cpu_and_gpu()}, {gib:.0f} GiB"


def commit() -> str:
    """The checked-out commit, with "+changes" when tracked files differ from it (records excluded)."""
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short=10", "HEAD") or "unknown"
    changed = [ln for ln in git("status", "--porcelain", "--untracked-files=no").splitlines()
               if not ln[3:].startswith("docs/")]
    return head + ("+changes" if changed else "")


def process(spec: TableSpec, row: RowSpec, seed: int, args: argparse.Namespace, trunk: list | None = None,
            force: bool = False) -> list:
    """Run and record one row x seed unless a current record exists (with --list: say which); its
    resolved config."""
    path = spec.record_path(args.records, row, seed)
    now, old = resolved(spec, row, seed, trunk, args.runs_dir), read_record(path)
    sha1 = sha1_of(now)
    current = is_current(old, row, now, sha1)
    if args.list or (current and not force):
        state = "recorded" if current else "STALE, to run" if old else "to run"  # stale: of another config or data
        print(f"{spec.id}/{row.id} seed {seed}: {state} ({path})")
        if current and not args.list and "resolved" not in old:  # an older record: keep its config
            write_record(path, {**old, "resolved": now})
        return now
    run = {"classifier": run_classifier, "detector": run_detector, "image_svm": run_image_svm,
           "reference": run_reference, "scaling": run_scaling}[spec.kind]
    load = os.getloadavg()[0]  # a machine busy with other work slows every stage: say so
    record = {"table": spec.id, "row": row.id, "seed": seed, "kind": spec.kind, "config_sha1": sha1,
              "resolved": now, "config": shown(row.config) if row.config else None, "set": list(row.set),
              "test_set": list(row.test_set), **({"args": list(row.args)} if spec.kind == "image_svm" else {}),
              "commit": commit(), "machine": machine(), "device": args.device,
              "date": datetime.date.today().isoformat(),
              **run(spec.for_row(row), row, seed, sha1, args, trunk_overrides(trunk, args.runs_dir, spec.kind))}
    record["load_avg"] = [round(load, 2), round(os.getloadavg()[0], 2)]  # 1-min, before and after
    write_record(path, record)
    log.info("recorded %s", path)
    return now


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.configs, args.records = args.configs.resolve(), args.records.resolve()
    os.chdir(REPO)  # the commands in the records run from the repository root, and so does --runs-dir
    setup_logging()
    specs = load_specs(args.configs)
    unknown = set(args.tables) - {s.id for s in specs}
    if unknown:
        raise InputError("TABLE", f"no such table {sorted(unknown)}; tables: {[s.id for s in specs]}")
    trunks: dict[tuple[str, str, int], list] = {}
    for spec in [s for s in specs if not args.tables or s.id in args.tables]:
        for row in [r for r in spec.rows if not args.rows or r.id in args.rows]:
            source, trunk = trunk_run(spec, specs, row), None
            if source:  # the classifier the row starts from: recorded (and trained) first, like a row of its table
                key = (source[0].id, source[1].id, source[2])
                if key not in trunks:
                    trunks[key] = resolved(*source, runs=args.runs_dir) if args.list else process(*source, args)
                trunk = trunks[key]
            for seed in [s for s in spec.seeds if args.seeds is None or s in args.seeds]:
                process(spec, row, seed, args, trunk, args.force)
        if args.list and spec.picture is not None:
            print(f"{spec.id} picture {spec.picture[3]}: {picture_state(spec, args.records)}")
        elif not args.list:
            draw_picture(spec, args, commit())
    if not args.list:
        log.info("render the pages with: python tools/render_docs.py")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
