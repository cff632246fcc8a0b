"""Put the mAP of several trained work dirs side by side (SPP 1-scale, SPP 5-scale, R-CNN, ...).

Reads WORK_DIR/config.yaml and WORK_DIR/results/map_<split>_<metric>.json (written by
tools/test_det.py) of each work dir and writes a Markdown table: one column per setting (method,
backbone, scales, proposals), one row per class, and the mAP. Work dirs trained with the same
config and data but different seeds (--set seed=N) share a column: mean ± sample std over the
seeds, then each seed's mAP (--each gives every work dir its own column). Comparisons are only
fair between work dirs trained on the same data with the same backbone and proposals; the table
prints those settings so a reader can check.

Example (3 seeds of each method: 3 columns):
  python tools/accuracy_table.py --split test --out runs/accuracy.md runs/spp1_s{0,1,2} runs/rcnn_s{0,1,2}
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from data.cache import atomic_write_text
from data.errors import InputError
from detection.config_io import config_to_dict
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
    tuning = (f"conv blocks from {cfg.finetune.freeze_blocks} on and fc fine-tuned" if e2e
              else "fc layers fine-tuned" if cfg.finetune.enabled else "not fine-tuned")
    source = (f"{work.root}: {cfg.features.backbone}, {inputs}, {proposals}, {tuning}, "
              f"train {data['train_split'] or '?'} ({data['num_train_images'] or '?'} images), seed {cfg.seed}")
    return Run(name, setting, cfg.seed, scores[0], scores[1], work.root.name, source)


def markdown(groups: list[RunGroup], split: str, metric: str) -> str:
    lines = [markdown_table(groups, f"AP % ({metric}, {split})")]
    lines += [f"- {r.source}" for g in groups for r in g.runs]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("work_dirs", type=Path, nargs="+", help="trained and tested work dirs")
    p.add_argument("--split", default="test", help="tested split (default: test)")
    p.add_argument("--metric", default="voc07", choices=("voc07", "voc10"))
    p.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    p.add_argument("--each", action="store_true", help="one column per work dir, seeds not averaged")
    args = p.parse_args(argv)
    runs = [read_run(WorkDir(w), args.split, args.metric, args.each) for w in args.work_dirs]
    text = markdown(group_runs(runs), args.split, args.metric)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
