"""Running the tools behind one record of tools/reproduce.py: the table's embedded dataset (and its
statistics and linear probe), then training and testing a row x seed, in a work dir named by the hash
of its resolved config; every tool resumes, so a rerun continues where an interrupted one stopped."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from data.cache import atomic_write_text
from data.errors import InputError
from data.synthetic import format_table, set_statistics
from data.voc import load_voc
from detection.config import load_config
from detection.inference.detect import DRAW_THRESHOLDS
from detection.pipeline.train import TRAIN_STAGES
from eval.run_records import RowSpec, TableSpec

log = logging.getLogger("reproduce")
REPO = Path(__file__).resolve().parents[1]


def work_dir(runs: Path, sha1: str) -> Path:
    """Where a run of the resolved config with hash ``sha1`` trains."""
    return runs / "work" / sha1[:12]


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


def record_probe(root: Path, records: Path, device: str, cache: Path) -> None:
    """The linear probe of frozen ImageNet MobileNetV2 features on the dataset's ground-truth boxes
    (tools/probe.py: how much of the classes the pre-trained features tell) into
    records/data/<name>-probe.json with the dataset's manifest; run again when the dataset changed
    (tools/render_docs.py puts it on docs/datasets.md). The result is kept in ``cache`` too, keyed
    by the manifest, so that another records folder on the same dataset copies it."""
    path = records / "data" / f"{root.name}-probe.json"
    manifest = json.loads((root / "synthetic.json").read_text())
    if path.is_file() and json.loads(path.read_text()).get("dataset") == manifest:
        return
    key = hashlib.sha1(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
    cached = cache / f"{root.name}-{key}.json"
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        execute(tool("probe.py", "--data-root", str(root), "--json", str(cached), "--device", device,
                     "--no-progress"), f"{root.name}: linear probe")
    atomic_write_text(path, json.dumps({**json.loads(cached.read_text()), "dataset": manifest}, indent=1,
                                       sort_keys=True) + "\n")


def detection_set(spec: TableSpec) -> bool:
    """Whether the table runs on an embedded detection set (tools/make_synthetic.py): every detector
    table, and an image_svm table unless it runs on the embedded classification set as a folder."""
    return spec.kind != "classifier" and not spec.on_folder


def data_seed(spec: TableSpec, seed: int) -> int:
    """The seed of the table's dataset for the record of ``seed``: the spec's ``data.seed`` (default
    0), or ``seed`` itself where it is ``each`` (one dataset per record: a spread over data)."""
    value = spec.data.get("seed", 0)
    if value == "each":
        return seed
    if not isinstance(value, int):
        raise InputError(f"{spec.id}/table.yaml", f"data.seed must be an integer or 'each', got {value!r}")
    return value


def data_root(spec: TableSpec, runs: Path, seed: int = 0) -> Path:
    """The folder of the table's embedded detection set for the record of ``seed``, named by its
    preset, sizes and seed (a scaling row's sizes: of ``spec.for_row(row)``, which tools/reproduce.py
    passes every run)."""
    d = spec.data
    return runs / "data" / f"{d.get('preset', 'voc07')}-{d['num_trainval']}-{d['num_test']}-s{data_seed(spec, seed)}"


def ensure_data(spec: TableSpec, runs: Path, records: Path, device: str, seed: int = 0) -> Path | None:
    """The dataset of the table's record of ``seed`` (tools/make_synthetic.py, which does nothing when
    the folder holds the same set already and writes it again when the preset changed); None for a
    table without a detection set."""
    if not detection_set(spec):
        return None
    d, s, root = spec.data, data_seed(spec, seed), data_root(spec, runs, seed)
    (root / ".complete").unlink(missing_ok=True)  # the marker of earlier versions: make_synthetic would refuse it
    execute(tool("make_synthetic.py", "--out", str(root), "--preset", str(d.get("preset", "voc07")),
                 "--num-trainval", str(d["num_trainval"]), "--num-test", str(d["num_test"]),
                 "--seed", str(s), "--no-progress"), f"{spec.id}: dataset")
    record_statistics(root, str(d.get("preset", "voc07")), records)
    record_probe(root, records, device, runs / "cache" / "probe")
    return root


def train_seconds(work: Path) -> float:
    """Wall seconds of every train_det run into ``work`` (a resumed training adds its runs)."""
    runs = json.loads((work / "stages.json").read_text()) if (work / "stages.json").is_file() else []
    return round(sum(r["stages"][-1]["wall_s"] for r in runs), 1)


def results_dir(work: Path, row: RowSpec) -> Path:
    """Where the test of ``row``'s test-time settings writes into ``work`` (its record.json: the
    scores and the timing, stage table included)."""
    return work / f"results-{hashlib.sha1(json.dumps(list(row.test_set)).encode()).hexdigest()[:8]}"


def run_detector(spec: TableSpec, row: RowSpec, seed: int, sha1: str, args: argparse.Namespace,
                 extra: Sequence[str] = (), work: Path | None = None, cache: Path | None = None) -> dict:
    """Train (unless done) and test one row x seed (``extra``: --set pairs before the row's own) in
    ``work`` (default: the work dir of ``sha1``) with the per-image caches in ``cache`` (default: the
    one every row shares); the record's scores, times and commands."""
    data = ensure_data(spec, args.runs_dir, args.records, args.device, seed)
    work = work or work_dir(args.runs_dir, sha1)
    sets = [a for pair in (f"seed={seed}", *extra, *row.set) for a in ("--set", pair)]
    train = tool("train_det.py", "--data-root", str(data), "--work-dir", str(work), "--cache-dir",
                 str(cache or args.runs_dir / "cache"), "--config", shown(row.config), *sets,
                 *(["--memory-gb", f"{spec.memory_gb:g}"] if spec.memory_gb else []),
                 "--device", args.device, "--resume", "--no-progress")
    meta = json.loads((work / "meta.json").read_text()) if (work / "meta.json").is_file() else {}
    if meta.get("stages_done") != list(TRAIN_STAGES):
        execute(train, f"{spec.id}/{row.id} seed {seed}: train")
    out = results_dir(work, row)
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


def run_classifier(spec: TableSpec, row: RowSpec, seed: int, sha1: str, args: argparse.Namespace,
                   extra: Sequence[str] = ()) -> dict:
    """Train (resuming) one classifier row x seed; the record's held-out errors and time."""
    work = work_dir(args.runs_dir, sha1)
    sets = [a for pair in (f"seed={seed}", *extra, *row.set) for a in ("--set", pair)]
    train = tool("train_cls.py", "--work-dir", str(work), "--cache-dir", str(args.runs_dir / "cache"),
                 "--config", shown(row.config), *sets, "--device", args.device, "--resume",
                 "--no-progress")
    if not (work / "eval.json").is_file():
        execute(train, f"{spec.id}/{row.id} seed {seed}: train")
    result = json.loads((work / "eval.json").read_text())
    views = {v: (r or {}).get("top1") for v, r in result["views"].items()}
    return {"top1": views, "train_s": result.get("train_seconds"), "commands": [" ".join(train)],
            "work_dir": str(work)}
