"""Do a work dir's box regressors generalise? Their effect on another split's proposals, and a learning curve.

For the proposals of a split (default: test) that overlap a non-difficult ground truth by the IoU
the regressors were trained at (bbox.min_iou), prints how far they are from their objects (mean
|target|), how much of that the regressors remove (reduction = 1 - residual / target), and the
mean IoU and share of IoU >= 0.7 before and after; the same on the training samples the regressors
saw; then the regressors refit on the first fraction of those samples (fewer training objects),
for a learning curve. mAP says whether box regression helps; this says why not.

Examples:
  python tools/bbox_check.py --work-dir runs/spp_mobilenet
  python tools/bbox_check.py --work-dir runs/spp_zf5 --num-images 60 --fractions 0.25 0.5 1 --json runs/bbox.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from data.cache import atomic_write_text
from data.datasets import reopen_dataset
from data.errors import InputError
from detection.models.bbox_regression import BBoxRegressors
from detection.pipeline.bbox_check import (
    CurvePoint,
    RegressionEffect,
    held_out_samples,
    learning_curve,
    regression_effect,
    training_samples,
)
from detection.workdir import open_detector
from proposals.store import ensure_proposals
from tools._cli import add_dataset_arguments, add_no_progress, run_cli, setup_logging


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work-dir", type=Path, required=True, help="a work dir trained by tools/train_det.py")
    add_dataset_arguments(p, default_split="test", remembered=True)
    p.add_argument("--num-images", type=int, default=None, help="the split's first N images (default: all)")
    p.add_argument("--fractions", type=float, nargs="+", default=[0.125, 0.25, 0.5],
                   help="refit on these fractions of the training samples (default: 0.125 0.25 0.5; the work "
                        "dir's own regressors are the fit on all of them)")
    p.add_argument("--cache-dir", type=Path, help="per-image caches (default: the one used in training)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    p.add_argument("--workers", type=int, default=None, help="processes for selective search (default: all cores)")
    p.add_argument("--json", type=Path, help="write every figure here")
    add_no_progress(p)
    args = p.parse_args(argv)
    if args.num_images is not None and args.num_images < 1:
        p.error("--num-images must be >= 1")
    if not all(0 < f <= 1 for f in args.fractions):
        p.error("--fractions must lie in (0, 1]")
    return args


def _row(name: str, n: int, objects: int, e: RegressionEffect) -> str:
    return (f"| {name} | {n} | {objects} | {e.target:.4f} | {e.residual:.4f} | {100 * e.reduction:+.1f} % | "
            f"{e.iou_before:.3f} -> {e.iou_after:.3f} | {100 * e.good_before:.1f} -> {100 * e.good_after:.1f} % |")


def table(split: str, held: tuple[int, int], training: tuple[int, int],
          trained: tuple[RegressionEffect, RegressionEffect], curve: list[CurvePoint]) -> str:
    """The figures as a Markdown table; ``held`` and ``training``: (samples, objects)."""
    lines = ["| samples: regressors | samples | objects | mean \\|target\\| | mean \\|residual\\| | reduction "
             "| mean IoU before -> after | IoU >= 0.7 before -> after |", "|---|---|---|---|---|---|---|---|",
             _row("training: the work dir's (all samples)", *training, trained[0]),
             _row(f"{split}: the work dir's (all samples)", *held, trained[1])]
    for p in curve:
        lines += [_row(f"training: refit on the first {p.fraction:g}", p.samples, p.objects, p.on_training),
                  _row(f"{split}: refit on the first {p.fraction:g}", *held, p.held_out)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    detector = open_detector(args.work_dir, torch.device(args.device), cache_dir=args.cache_dir)
    work, cfg = detector.work, detector.cfg
    if not work.bbox.is_file():
        raise InputError(work.bbox, "missing: this work dir has no box regressors")
    regs = BBoxRegressors.load(work.bbox)
    dataset = reopen_dataset(work.read_meta(), args.data_root, args.split, args.ann_file, args.image_dir,
                             args.default_split)  # fmt: skip
    records = dataset.records[: args.num_images]
    run = ensure_proposals(records, work.cache / "proposals", cfg.proposals,
                           args.workers or len(os.sched_getaffinity(0)), not args.no_progress)
    with torch.inference_mode():
        held = held_out_samples(detector, records, run.boxes, cfg.bbox.min_iou, not args.no_progress)
    if len(held) == 0:
        raise InputError(dataset.root, f"no proposal of the {len(records)} images overlaps a ground truth by "
                                       f"IoU >= {cfg.bbox.min_iou}")
    training, scale = training_samples(work)
    trained = (regression_effect(regs, training), regression_effect(regs, held))
    curve = learning_curve(training, held, scale, len(detector.classes), cfg.bbox, args.fractions)
    print(table(dataset.split, (len(held), held.num_objects()), (len(training), training.num_objects()), trained,
                curve))
    if args.json:
        doc = {"split": dataset.split, "images": len(records), "held_out_samples": len(held),
               "held_out_objects": held.num_objects(),
               "training_samples": len(training), "training_objects": training.num_objects(),
               "trained": {"training": dataclasses.asdict(trained[0]), dataset.split: dataclasses.asdict(trained[1])},
               "curve": [dataclasses.asdict(p) for p in curve]}
        atomic_write_text(args.json, json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
