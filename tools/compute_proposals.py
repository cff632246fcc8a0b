"""Compute (or import) selective-search proposals for a dataset split and report their recall.

Example:
    python tools/compute_proposals.py --data-root data/VOCdevkit/VOC2007 --split test --out work/proposals
    python tools/compute_proposals.py --data-root ... --split test --out work/proposals \\
        --mat selective_search_data/voc_2007_test.mat
    python tools/compute_proposals.py --ann-file coco/annotations/instances_val2017.json \\
        --image-dir coco/val2017 --out work/proposals
    torchrun --nproc_per_node 8 tools/compute_proposals.py ... --workers 1   # images shared by 8 processes

Results are cached per image under OUT/<mode>-<hash of the settings>/<image id>.npz; running the
same command again (e.g. after Ctrl-C) only computes what is missing or stale.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from data.cache import atomic_write_text
from detection.pipeline.sharded import sharded_proposals
from detection.runtime.distributed import Dist, close, init_from_env, threads_per_rank
from proposals.config import ProposalConfig
from proposals.recall import proposal_recall
from proposals.store import cache_folder
from tools._cli import add_dataset_arguments, add_no_progress, dataset_from_args, run_cli, setup_logging

log = logging.getLogger("compute_proposals")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    d = ProposalConfig()
    p = argparse.ArgumentParser(
        description="Selective-search proposals (as in R-CNN / SPP-net) for every image of a split, cached "
        "per image, followed by a recall report against the non-difficult ground truth.")
    add_dataset_arguments(p, default_split=None)
    p.add_argument("--out", type=Path, required=True, help="cache folder for the proposals")
    p.add_argument("--mode", choices=("fast", "quality", "single"), default=d.mode,
                   help=f"selective-search strategy (default {d.mode}, as in the papers)")
    p.add_argument("--max-proposals", type=int, default=d.max_proposals,
                   help=f"boxes kept per image (default {d.max_proposals})")
    p.add_argument("--min-size", type=float, default=d.min_size,
                   help=f"drop boxes narrower or shorter than this many pixels (default {d.min_size:g})")
    p.add_argument("--resize-longer", type=int, default=d.resize_longer, metavar="PX",
                   help=f"shrink larger images to this longer side before segmenting (default {d.resize_longer}, "
                        "VOC's size; 0: segment every image at its own size, minutes for a phone photo)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: number of cores; under torchrun, per rank: "
                        "this node's cores / its ranks)")
    p.add_argument("--mat", type=Path, default=None,
                   help="import the proposals of a released R-CNN selective_search_data .mat file instead of computing")
    p.add_argument("--limit", type=int, default=None, help="only the first N images of the split (quick checks)")
    p.add_argument("--json", type=Path, default=None, help="also write the summary figures to this JSON file")
    add_no_progress(p)
    p.add_argument("--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


def build_config(args: argparse.Namespace) -> ProposalConfig:
    mode, mat = ("mat", str(args.mat.resolve())) if args.mat is not None else (args.mode, None)
    return ProposalConfig(mode=mode, max_proposals=args.max_proposals, min_size=args.min_size,
                          resize_longer=args.resize_longer or None, mat_file=mat)


def print_table(summary: dict[str, float | int | None]) -> None:
    print(f"{'images':>8} {'mean boxes':>11} {'recall@0.5':>11} {'recall@0.7':>11} {'s/image':>9} {'images/s':>9}")
    fmt = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
    print(f"{summary['images']:>8} {fmt(summary['mean_boxes'], '.1f'):>11} {fmt(summary['recall@0.5'], '.4f'):>11} "
          f"{fmt(summary['recall@0.7'], '.4f'):>11} {fmt(summary['seconds_per_image'], '.3f'):>9} "
          f"{fmt(summary['images_per_second'], '.3f'):>9}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    d, _ = init_from_env("cpu")  # a plain run: SINGLE
    try:
        return compute(args, d)
    finally:
        close(d)


def compute(args: argparse.Namespace, d: Dist) -> int:
    """Every rank computes its share of the images; rank 0 reports."""
    setup_logging(verbose=args.verbose, rank=d.rank if d.active else None)
    cfg = build_config(args)
    dataset = dataset_from_args(args)
    records = list(dataset.records[: args.limit] if args.limit else dataset.records)
    folder = cache_folder(args.out, cfg)
    folder.mkdir(parents=True, exist_ok=True)
    if d.is_main:
        atomic_write_text(folder / "config.json", json.dumps(cfg.cache_params(), indent=2, sort_keys=True))
    workers = args.workers or (threads_per_rank(d) if d.active else os.cpu_count() or 1)
    run = sharded_proposals(records, args.out, cfg, workers, not args.no_progress and d.is_main, d)
    if not d.is_main:
        return 0  # rank 0 reports
    report = proposal_recall(records, run.boxes)
    clean = lambda v: None if v is None or math.isnan(v) else v  # noqa: E731  JSON has no NaN
    summary = {
        "images": report.images,
        "mean_boxes": clean(report.mean_boxes),
        "recall@0.5": clean(report.recall[0.5]),
        "recall@0.7": clean(report.recall[0.7]),
        "seconds_per_image": clean(run.seconds_per_image),  # one image in one worker
        "images_per_second": clean(run.images_per_second),  # this run's throughput, all workers
    }
    print_table(summary)
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(summary, indent=2) + "\n")
    if run.failed:
        print(f"{len(run.failed)} image(s) failed:", file=sys.stderr)
        for image_id, reason in run.failed.items():
            print(f"  {image_id}: {reason}", file=sys.stderr)
    if not run.boxes:
        print("error: no image could be processed", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
