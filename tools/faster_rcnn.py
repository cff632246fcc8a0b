"""The reference row: train and test torchvision's Faster R-CNN on the same ImageNet MobileNetV2 trunk
and the same data as SPP-net and R-CNN, scored by the same evaluator.

One command trains on --split (a budget of --iterations SGD steps of 2 images, resumable with
--resume), then detects every image of --test-split and scores them as tools/test_det.py does
(VOC07 11-point AP, difficult objects ignored). The recipe is torchvision's references/detection
one (lr 0.02 per 16 images, momentum 0.9, weight decay 1e-4, flips, frozen batch norm, the trunk's
last 3 stages trained) on our stride-16 trunk, with images at a reduced --min-size for a CPU; every
value and its source: detection/reference/config.py, saved resolved in WORK_DIR/config.json.

Writes to WORK_DIR: model.pt (the trained detector), checkpoint.pt (during training),
results/comp4_det_<split>_<class>.txt (the devkit's result files: tools/eval_voc.py --det-dir
WORK_DIR/results scores them), results/map_<split>_voc07.json, result.json (mAP, AP per class,
train seconds and median seconds per step, median test seconds per image, the resolved config; a
copy goes to --json) and faster_rcnn.log.

Examples:
  python tools/faster_rcnn.py --data-root runs/synthetic_voc --work-dir runs/faster_rcnn
  python tools/faster_rcnn.py --data-root runs/synthetic_voc --work-dir runs/faster_rcnn --resume
  python tools/faster_rcnn.py --data-root VOCdevkit/VOC2007 --work-dir runs/voc07_frcnn --device cuda \\
      --min-size 600 --iterations 20000 --json runs/voc07_frcnn.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from data.cache import atomic_write, atomic_write_text
from data.datasets import open_dataset
from data.errors import InputError
from data.model_files import load_module_state
from detection.reference.config import FasterRCNNConfig
from detection.reference.detect import detect_records
from detection.reference.model import build_faster_rcnn
from detection.reference.train import train_faster_rcnn
from detection.runtime.stopwatch import Stopwatch
from detection.training.sgd import CHECKPOINT_EVERY
from eval.report import evaluate_and_report
from eval.result_files import write_result_files
from tools._cli import add_no_progress, run_cli, setup_logging

log = logging.getLogger("faster_rcnn")
RESUME_HINT = "run the same command with --resume to continue"
DEFAULTS = FasterRCNNConfig()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, required=True, help="VOC 'year' folder (Annotations/, JPEGImages/, ...)")
    p.add_argument("--split", default="trainval", help="training split (default trainval)")
    p.add_argument("--test-split", default="test", help="split detected and scored (default test)")
    p.add_argument("--work-dir", type=Path, required=True, help="folder for the model, checkpoint, results, log")
    p.add_argument("--iterations", type=int, default=DEFAULTS.iterations,
                   help=f"the training budget in SGD steps of {DEFAULTS.batch_images} images "
                        f"(default {DEFAULTS.iterations}; the lr drops 10x after 16/26 of them)")
    p.add_argument("--min-size", type=int, default=DEFAULTS.min_size,
                   help=f"images resized to this shorter side (default {DEFAULTS.min_size}; torchvision's 800)")
    p.add_argument("--max-size", type=int,
                   help=f"... and at most this longer side (default: --min-size x {DEFAULTS.max_size} / {DEFAULTS.min_size})")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed, help="the new layers' init, the images' order, "
                   f"flips and sampling (default {DEFAULTS.seed})")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's, all cores); on cores other jobs "
                   "share, 1 can be several times faster")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run of the same settings from WORK_DIR/checkpoint.pt "
                        "(bit-identical to an uninterrupted run); a finished training is tested again")
    p.add_argument("--checkpoint-every", type=int, default=CHECKPOINT_EVERY,
                   help=f"steps between checkpoints (default {CHECKPOINT_EVERY}); does not change the result")
    p.add_argument("--json", type=Path, help="also write result.json's content here")
    add_no_progress(p)
    return p.parse_args(argv)


def resolve_config(args: argparse.Namespace) -> FasterRCNNConfig:
    """The defaults with the command line's values (InputError on a bad one)."""
    max_size = args.max_size or round(args.min_size * DEFAULTS.max_size / DEFAULTS.min_size)
    return dataclasses.replace(DEFAULTS, iterations=args.iterations, min_size=args.min_size, max_size=max_size,
                               seed=args.seed)


def run_settings(args: argparse.Namespace, cfg: FasterRCNNConfig) -> dict:
    """What a resumed run must share with the run it continues: the config and the training data."""
    return {"config": json.loads(json.dumps(dataclasses.asdict(cfg))), "data_root": str(args.data_root),
            "split": args.split}


def prepare_work_dir(args: argparse.Namespace, settings: dict) -> None:
    """Without --resume forget an earlier run; with it refuse other settings; then save them."""
    work, saved = args.work_dir, args.work_dir / "config.json"
    for stale in work.glob(".*.tmp"):  # a killed atomic write's temporary file, never read
        stale.unlink(missing_ok=True)
    if not args.resume:
        for name in ("checkpoint.pt", "model.pt", "train.json"):
            (work / name).unlink(missing_ok=True)
    elif saved.is_file() and json.loads(saved.read_text()) != settings:
        raise InputError(saved, "the saved settings differ from this run's; use another --work-dir, or run "
                                "without --resume to train again from scratch")
    atomic_write_text(saved, json.dumps(settings, indent=2) + "\n")


def train(args: argparse.Namespace, cfg: FasterRCNNConfig, model: torch.nn.Module, records: list,
          device: torch.device) -> dict:
    """Train (or load a finished training) and return train.json's content: seconds over every
    session of this run, steps, median seconds per step of this session, the last loss."""
    model_file, timing = args.work_dir / "model.pt", args.work_dir / "train.json"
    before = json.loads(timing.read_text()) if timing.is_file() else {"train_s": 0.0}
    if model_file.is_file():
        load_module_state(model, model_file, "Faster R-CNN model")
        return before
    start, steps = time.perf_counter(), None
    try:
        steps = train_faster_rcnn(model, records, cfg, device, args.work_dir / "checkpoint.pt",
                                  not args.no_progress, args.checkpoint_every)
        atomic_write(model_file, lambda f: torch.save(model.state_dict(), f))
        (args.work_dir / "checkpoint.pt").unlink(missing_ok=True)
    finally:  # an interrupted session's seconds count too when the run is resumed
        spent = before["train_s"] + time.perf_counter() - start
        timing_now = {"train_s": round(spent, 1)}
        if steps is not None:
            median = steps.median_seconds()
            timing_now.update(steps=cfg.iterations, median_s_per_step=None if median is None else round(median, 3),
                              final_loss=steps.losses[-1] if steps.losses else None)
        atomic_write_text(timing, json.dumps(timing_now) + "\n")
    return timing_now


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = resolve_config(args)
    if args.checkpoint_every < 1:
        raise InputError("--checkpoint-every", f"must be >= 1, got {args.checkpoint_every}")
    if args.threads is not None and args.threads < 1:
        raise InputError("--threads", f"must be >= 1, got {args.threads}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device", f"{args.device} asked for, but torch sees no CUDA device")
    trainval, test = open_dataset(args.data_root, args.split), open_dataset(args.data_root, args.test_split)
    if not trainval.records:
        raise InputError(args.data_root, f"split {args.split!r} holds no images")
    args.work_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(args.work_dir / "faster_rcnn.log")
    prepare_work_dir(args, run_settings(args, cfg))
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = build_faster_rcnn(trainval.num_classes, cfg)
    timing = train(args, cfg, model, list(trainval.records), device)
    sw = Stopwatch(device)
    detections = detect_records(model, test.records, device, not args.no_progress, sw)
    out = args.work_dir / "results"
    write_result_files(out, detections, test.classes, test.split)
    result, table = evaluate_and_report(detections, test.records, test.classes, "voc07",
                                        out / f"map_{test.split}_voc07.json")
    medians = sw.medians()
    payload = {**result.to_json(), "method": "faster_rcnn", **timing,
               "test_s_per_image": round(medians["detect"], 4) if medians else None,
               "test_images": len(sw.images), "device": str(device), "threads": torch.get_num_threads(),
               **run_settings(args, cfg), "test_split": args.test_split}
    for path in (args.work_dir / "result.json", args.json):
        if path is not None:
            atomic_write_text(path, json.dumps(payload, indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, resume_hint=RESUME_HINT))
