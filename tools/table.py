"""Put trained work dirs side by side: mAP of detectors, top-1 error of classifiers, mean ± std over seeds.

Detector work dirs (tools/train_det.py, tested by tools/test_det.py): reads WORK_DIR/config.yaml and
WORK_DIR/results/map_<split>_<metric>.json and writes a Markdown table: one column per setting
(method, backbone, scales, proposals), one row per class, and the mAP. Work dirs trained with the
same config and data but different seeds (--set seed=N) share a column: mean ± sample std over the
seeds, then each seed's mAP (--each gives every work dir its own column). Comparisons are only fair
between work dirs trained on the same data with the same backbone and proposals; the table prints
those settings so a reader can check.

Classifier work dirs (tools/train_cls.py): runs with the same backbone, pooling and sizes (differing
only in seed) form one row of the paper's Table 2 / 3: the held-out top-1 error (%), mean ± sample
std, for the centre-crop and the full-image views.

The reported tables are rendered from run records instead (tools/reproduce.py, tools/render_docs.py);
this tool is for your own work dirs.

Examples:
  python tools/table.py --split test --out runs/accuracy.md runs/spp1_s{0,1,2} runs/rcnn_s{0,1,2}
  python tools/table.py runs/t2/*                      # classifier work dirs of tools/train_cls.py
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data.cache import atomic_write_text
from data.errors import InputError
from detection.classification.config import ClassifierConfig
from detection.classification.workdir import ClassifierWorkDir, is_classifier_workdir
from detection.runtime.config_io import config_to_dict, load_dataclass
from detection.workdir import WorkDir
from eval.across_seeds import Run, RunGroup, group_runs, markdown_table
from proposals.config import ProposalConfig
from tools._cli import run_cli


def read_run(work: WorkDir, split: str, metric: str, each: bool) -> Run:
    """The tested scores of one work dir, with what must be equal to average it with others."""
    cfg = work.load_config()
    path = work.root / "results" / f"map_{split}_{metric}.json"
    if not path.is_file():
        raise InputError(path, f"missing; run tools/test_det.py --work-dir {work.root} --split {split} first")
    try:
        result = json.loads(path.read_text())
        scores = float(result["map"]), {c: None if v is None else float(v) for c, v in result["ap"].items()}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        raise InputError(path, "not a scores file of tools/test_det.py (JSON with 'map' and 'ap')") from None
    scales = cfg.features.scales
    name = ("R-CNN" if cfg.method != "spp" else f"SPP 1-scale {scales[0]}" if len(scales) == 1
            else f"SPP {len(scales)}-scale")
    e2e = cfg.finetune.mode == "e2e"
    if e2e:  # the conv blocks were fine-tuned too: a different detector, named so
        name += " e2e"
    meta = work.read_meta()
    data = {k: meta.get(k) for k in ("data_root", "ann_file", "image_dir", "train_split", "num_train_images")}
    setting = json.dumps([config_to_dict(dataclasses.replace(cfg, seed=0)), data, split, metric], sort_keys=True)
    if each:  # a setting of its own: no averaging
        setting = str(work.root)
    inputs = (f"scales {list(scales)}" if cfg.method == "spp"
              else f"warped windows with {cfg.features.context_padding} px context")
    proposals = f"<= {cfg.proposals.max_proposals} proposals"
    if cfg.proposals.resize_longer != ProposalConfig().resize_longer:  # the default needs no note
        size = cfg.proposals.resize_longer
        proposals += " (selective search at " + (f"{size} px)" if size else "each image's own size)")
    tuning = (f"conv blocks from {cfg.finetune.e2e.freeze_blocks} on and fc fine-tuned" if e2e
              else "fc layers fine-tuned" if cfg.finetune.enabled else "not fine-tuned")
    source = (f"{work.root}: {cfg.features.backbone}, {inputs}, {proposals}, {tuning}, "
              f"train {data['train_split'] or '?'} ({data['num_train_images'] or '?'} images), seed {cfg.seed}")
    return Run(name, setting, cfg.seed, scores[0], scores[1], work.root.name, source)


def markdown(groups: list[RunGroup], split: str, metric: str) -> str:
    lines = [markdown_table(groups, f"AP % ({metric}, {split})")]
    lines += [f"- {r.source}" for g in groups for r in g.runs]
    return "\n".join(lines) + "\n"


VIEWS = ("center_crop", "full_image")


def row_name(cfg: ClassifierConfig) -> str:
    m, sizes = cfg.model, cfg.train.sizes
    kind = "no SPP" if m.pool == "fixed" else ("SPP single-size" if len(sizes) == 1 else "SPP multi-size")
    return f"{m.backbone}, {kind} ({'+'.join(map(str, sizes))})"


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    pct = 100 * np.asarray(values)
    spread = f" ± {pct.std(ddof=1):.2f}" if len(pct) > 1 else ""
    return f"{pct.mean():.2f}{spread}"


def classifier_table(work_dirs: Sequence[Path]) -> str:
    """Markdown: one row per configuration, mean ± std of top-1 error (%) per view, and n runs."""
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: {v: [] for v in VIEWS} | {"seeds": []})
    for root in work_dirs:
        work = ClassifierWorkDir(root)
        if not work.eval.is_file():
            raise InputError(work.eval, "missing; finish training with tools/train_cls.py --resume")
        cfg = load_dataclass(ClassifierConfig(), work.config)
        views = json.loads(work.eval.read_text())["views"]
        row = rows[row_name(cfg)]
        row["seeds"].append(cfg.seed)
        for v in VIEWS:
            if views.get(v):
                row[v].append(views[v]["top1"])
    lines = ["| network | top-1 error %, center crop | top-1 error %, full image | runs (seeds) |",
             "|---|---|---|---|"]
    for name, row in rows.items():
        seeds = ", ".join(map(str, row["seeds"]))
        lines.append(f"| {name} | {_cell(row['center_crop'])} | {_cell(row['full_image'])} | "
                     f"{len(row['seeds'])} ({seeds}) |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("work_dirs", type=Path, nargs="+", metavar="WORK_DIR",
                   help="trained (and, for detectors, tested) work dirs")
    p.add_argument("--split", default="test", help="tested split (default: test)")
    p.add_argument("--metric", default="voc07", choices=("voc07", "voc10"))
    p.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    p.add_argument("--each", action="store_true", help="one column per work dir, seeds not averaged")
    args = p.parse_args(argv)
    classifiers = [w for w in args.work_dirs if is_classifier_workdir(w) or ClassifierWorkDir(w).eval.is_file()]
    detectors = [w for w in args.work_dirs if w not in classifiers]
    parts = []
    if detectors:
        runs = [read_run(WorkDir(w), args.split, args.metric, args.each) for w in detectors]
        parts.append(markdown(group_runs(runs), args.split, args.metric))
    if classifiers:
        parts.append(classifier_table(classifiers) + "\n")
    text = "\n".join(parts)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
