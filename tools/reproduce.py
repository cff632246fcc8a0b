"""Train and test every row x seed of the reported tables, and write one run record for each.

A table is a folder under tools/configs/ (table.yaml: its rows, seeds, data and the paper's figures;
one config file per row). For each row and seed this writes the embedded dataset when it is not
there yet (tools/make_synthetic.py), trains (tools/train_det.py, or tools/train_cls.py for a
classifier table) into a work dir named by the hash of the resolved config, tests it
(tools/test_det.py) and writes docs/results/records/<table>/<row>-s<seed>.json: the scores (mAP and AP
per class, or top-1 error), train time, test seconds per image, the resolved config and its hash,
commit, machine and date. A record of the same resolved config is not run again (an option removed
from the code since does not count; a changed value or a new option does), so an interrupted
reproduce continues where it stopped (every tool it runs resumes too) and rows that share a training (Table 9's
"ftfc7" and "ftfc7 bb") train once. Per-image caches (proposals, conv5 maps) are shared by every
row of every table. Then tools/render_docs.py renders docs/results.md and the README's table.

Examples:
  python tools/reproduce.py --list                      # every table's rows, seeds and whether recorded
  python tools/reproduce.py main                        # the main job, 3 seeds
  python tools/reproduce.py table9 --rows pool5 --seeds 0
  python tools/reproduce.py main table9 && python tools/render_docs.py
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

from data.cache import atomic_write_text
from data.errors import InputError
from data.synthetic import PRESETS, format_table, set_statistics
from data.voc import load_voc
from detection.classification.config import ADDED_KEYS as CLASSIFIER_ADDED_KEYS
from detection.classification.config import ClassifierConfig
from detection.config import ADDED_KEYS, RENAMED_KEYS, load_config, load_train_config
from detection.inference.detect import DRAW_THRESHOLDS
from detection.pipeline.train import TRAIN_STAGES
from detection.runtime.config_io import config_to_dict, fill_added, load_dataclass, rename_keys
from detection.speed.report import machine as cpu_and_gpu
from eval.run_records import RowSpec, TableSpec, load_specs, read_record, still_current, write_record
from tools._cli import run_cli, setup_logging

log = logging.getLogger("reproduce")
TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tables", nargs="*", metavar="TABLE", help="table ids (folders of --configs; default: all)")
    p.add_argument("--rows", nargs="+", metavar="ID", help="only these rows")
    p.add_argument("--seeds", type=int, nargs="+", metavar="S", help="only these seeds (default: the table's)")
    p.add_argument("--configs", type=Path, default=TOOLS / "configs", help="where the table folders are")
    p.add_argument("--records", type=Path, default=REPO / "docs" / "results" / "records",
                   help="where the run records go (default: docs/results/records)")
    p.add_argument("--runs-dir", type=Path, default=Path("runs/results"),
                   help="datasets, work dirs and the shared caches, relative to the repository root "
                        "(default: runs/results)")
    p.add_argument("--device", default="cpu", help="cpu or cuda, passed to every tool")
    p.add_argument("--list", action="store_true", help="list the runs and whether they are recorded; run nothing")
    p.add_argument("--force", action="store_true", help="run and record again even where a record matches")
    return p.parse_args(argv)


def data_spec(spec: TableSpec) -> dict:
    """The table's data as records keep it: its table.yaml entry and, for a detector table, the
    settings of its preset (data.synthetic.PRESETS), so that a preset that changes what it draws
    makes the table's records stale, as a changed config does."""
    if spec.kind == "classifier":
        return dict(spec.data)
    preset = str(spec.data.get("preset", "voc07"))
    if preset not in PRESETS:
        raise InputError(f"{spec.id}/table.yaml", f"unknown data preset {preset!r}; presets: {sorted(PRESETS)}")
    return {**spec.data, "synthetic": config_to_dict(PRESETS[preset])}


def resolved(spec: TableSpec, row: RowSpec, seed: int) -> list:
    """The resolved config (the rules of the training tool) and the data it trains on, as plain data."""
    overrides = [f"seed={seed}", *row.set]
    if spec.kind == "classifier":
        cfg = load_dataclass(ClassifierConfig(), row.config, overrides)
    else:
        cfg = load_train_config(row.config, overrides)
    return [config_to_dict(cfg), data_spec(spec)]


def config_sha1(spec: TableSpec, row: RowSpec, seed: int, now: list | None = None) -> str:
    """The hash of :func:`resolved` (``now``, when the caller has it already)."""
    now = resolved(spec, row, seed) if now is None else now
    return hashlib.sha1(json.dumps(now, sort_keys=True).encode()).hexdigest()


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
    added = CLASSIFIER_ADDED_KEYS if old.get("kind") == "classifier" else ADDED_KEYS
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


def shown(path: Path) -> str:
    """``path`` relative to the repository root when it is inside it (as the records show it)."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def tool(name: str, *args: str) -> list[str]:
    """``python tools/<name> ARGS`` as shown in records (the command that ran, from the repo root)."""
    return ["python", f"tools/{name}", *args]


def execute(command: list[str], what: str) -> None:
    log.info("%s: %s", what, " ".join(command))
    done = subprocess.run([sys.executable, *command[1:]])
    if done.returncode != 0:
        raise InputError(command[1], f"exit status {done.returncode} ({what}); fix what it printed, then run "
                                     "tools/reproduce.py again: it continues where it stopped")


def record_statistics(root: Path, preset: str, records: Path) -> None:
    """The dataset's statistics beside VOC 2007's, as tools/make_synthetic.py prints them, into
    records/data/<name>.md (tools/render_docs.py puts them on docs/datasets.md)."""
    path = records / "data" / f"{root.name}.md"
    columns = {f"{preset} {split}": set_statistics(load_voc(root, split).records) for split in ("trainval", "test")}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, format_table(columns) + "\n")


def record_probe(root: Path, records: Path, device: str) -> None:
    """The linear probe of frozen ImageNet MobileNetV2 features on the dataset's ground-truth boxes
    (tools/probe.py: how much of the classes the pre-trained features tell) into
    records/data/<name>-probe.json with the dataset's manifest; run again when the dataset changed
    (tools/render_docs.py puts it on docs/datasets.md)."""
    path = records / "data" / f"{root.name}-probe.json"
    manifest = json.loads((root / "synthetic.json").read_text())
    if path.is_file() and json.loads(path.read_text()).get("dataset") == manifest:
        return
    execute(tool("probe.py", "--data-root", str(root), "--json", str(path), "--device", device, "--no-progress"),
            f"{root.name}: linear probe")
    atomic_write_text(path, json.dumps({**json.loads(path.read_text()), "dataset": manifest}, indent=1,
                                       sort_keys=True) + "\n")


def ensure_data(spec: TableSpec, runs: Path, records: Path, device: str) -> Path | None:
    """The table's embedded dataset (tools/make_synthetic.py, which does nothing when the folder holds
    the same set already and writes it again when the preset changed); None for a classifier."""
    if spec.kind == "classifier":
        return None
    d = spec.data
    root = runs / "data" / f"{d.get('preset', 'voc07')}-{d['num_trainval']}-{d['num_test']}-s{d.get('seed', 0)}"
    (root / ".complete").unlink(missing_ok=True)  # the marker of earlier versions: make_synthetic would refuse it
    execute(tool("make_synthetic.py", "--out", str(root), "--preset", str(d.get("preset", "voc07")),
                 "--num-trainval", str(d["num_trainval"]), "--num-test", str(d["num_test"]),
                 "--seed", str(d.get("seed", 0))), f"{spec.id}: dataset")
    record_statistics(root, str(d.get("preset", "voc07")), records)
    record_probe(root, records, device)
    return root


def train_seconds(work: Path) -> float:
    """Wall seconds of every train_det run into ``work`` (a resumed training adds its runs)."""
    runs = json.loads((work / "stages.json").read_text()) if (work / "stages.json").is_file() else []
    return round(sum(r["stages"][-1]["wall_s"] for r in runs), 1)


def run_detector(spec: TableSpec, row: RowSpec, seed: int, sha1: str, args: argparse.Namespace) -> dict:
    """Train (unless done) and test one row x seed; the record's scores, times and commands."""
    data = ensure_data(spec, args.runs_dir, args.records, args.device)
    work = args.runs_dir / "work" / sha1[:12]
    sets = [a for pair in (f"seed={seed}", *row.set) for a in ("--set", pair)]
    train = tool("train_det.py", "--data-root", str(data), "--work-dir", str(work), "--cache-dir",
                 str(args.runs_dir / "cache"), "--config", shown(row.config), *sets,
                 "--device", args.device, "--resume", "--no-progress")
    meta = json.loads((work / "meta.json").read_text()) if (work / "meta.json").is_file() else {}
    if meta.get("stages_done") != list(TRAIN_STAGES):
        execute(train, f"{spec.id}/{row.id} seed {seed}: train")
    test_key = hashlib.sha1(json.dumps(list(row.test_set)).encode()).hexdigest()[:8]
    out = work / f"results-{test_key}"
    test = tool("test_det.py", "--work-dir", str(work), "--split", "test", "--out", str(out), "--json",
                str(out / "record.json"), *[a for pair in row.test_set for a in ("--set", pair)],
                "--device", args.device, "--no-progress")
    earlier = json.loads((out / "record.json").read_text())["timing"] if (out / "record.json").is_file() else None
    execute(test, f"{spec.id}/{row.id} seed {seed}: test")
    result = json.loads((out / "record.json").read_text())
    timing = result["timing"]
    if not timing["detected_images"] and earlier and earlier["detected_images"]:
        timing = earlier  # every detection came from the cache of an earlier test of this model and these settings
        result["timing"] = timing
        atomic_write_text(out / "record.json", json.dumps(result, indent=2))
    return {"map": result["map"], "ap": result["ap"], "metric": result.get("metric", "voc07"), "split": "test",
            "demo": demo_precision_recall(data, work, out, row),
            "untrained": result.get("untrained", []), "train_s": train_seconds(work),
            "test_s_per_image": timing["median_s_per_image"], "test_images": timing["detected_images"],
            "commands": [" ".join(train), " ".join(test)], "work_dir": str(work)}


def demo_precision_recall(data: Path, work: Path, out: Path, row: RowSpec) -> dict:
    """Precision and recall over the test split of what tools/demo.py draws at its default threshold
    (tools/eval_voc.py --threshold on the row's result files)."""
    cfg = load_config(work / "config.yaml", [*row.test_set])
    threshold = DRAW_THRESHOLDS[cfg.test.scoring]
    execute(tool("eval_voc.py", "--data-root", str(data), "--split", "test", "--det-dir", str(out), "--threshold",
                 str(threshold), "--json", str(out / "demo.json")), f"{row.id}: precision / recall at the demo's threshold")
    drawn = json.loads((out / "demo.json").read_text())["thresholds"][0]
    return {k: drawn[k] for k in ("threshold", "precision", "recall")}


def run_classifier(spec: TableSpec, row: RowSpec, seed: int, sha1: str, args: argparse.Namespace) -> dict:
    """Train (resuming) one classifier row x seed; the record's held-out errors and time."""
    work = args.runs_dir / "work" / sha1[:12]
    sets = [a for pair in (f"seed={seed}", *row.set) for a in ("--set", pair)]
    train = tool("train_cls.py", "--work-dir", str(work), "--cache-dir", str(args.runs_dir / "cache"),
                 "--config", shown(row.config), *sets, "--device", args.device, "--resume",
                 "--no-progress")
    if not (work / "eval.json").is_file():
        execute(train, f"{spec.id}/{row.id} seed {seed}: train")
    result = json.loads((work / "eval.json").read_text())
    views = {v: (r or {}).get("top1") for v, r in result["views"].items()}
    return {"top1": views, "train_s": result.get("train_seconds"), "commands": [" ".join(train)],
            "work_dir": str(work)}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.configs, args.records = args.configs.resolve(), args.records.resolve()
    os.chdir(REPO)  # the commands in the records run from the repository root, and so does --runs-dir
    setup_logging()
    specs = load_specs(args.configs)
    unknown = set(args.tables) - {s.id for s in specs}
    if unknown:
        raise InputError("TABLE", f"no such table {sorted(unknown)}; tables: {[s.id for s in specs]}")
    for spec in [s for s in specs if not args.tables or s.id in args.tables]:
        for row in [r for r in spec.rows if not args.rows or r.id in args.rows]:
            for seed in [s for s in spec.seeds if args.seeds is None or s in args.seeds]:
                path = spec.record_path(args.records, row, seed)
                now, old = resolved(spec, row, seed), read_record(path)
                sha1 = config_sha1(spec, row, seed, now)
                current = is_current(old, row, now, sha1)
                if args.list or (current and not args.force):
                    print(f"{spec.id}/{row.id} seed {seed}: {'recorded' if current else 'to run'} ({path})")
                    if current and not args.list and "resolved" not in old:  # an older record: keep its config
                        write_record(path, {**old, "resolved": now})
                    continue
                run = run_classifier if spec.kind == "classifier" else run_detector
                load = os.getloadavg()[0]  # a machine busy with other work slows every stage: say so
                record = {"table": spec.id, "row": row.id, "seed": seed, "kind": spec.kind, "config_sha1": sha1,
                          "resolved": now,
                          "config": shown(row.config), "set": list(row.set),
                          "test_set": list(row.test_set), "commit": commit(), "machine": machine(),
                          "device": args.device, "date": datetime.date.today().isoformat(),
                          **run(spec, row, seed, sha1, args)}
                record["load_avg"] = [round(load, 2), round(os.getloadavg()[0], 2)]  # 1-min, before and after
                write_record(path, record)
                log.info("recorded %s", path)
    if not args.list:
        log.info("render the pages with: python tools/render_docs.py")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
