"""Train an SPP-net (or R-CNN) detector on a VOC-layout dataset or a COCO json.

Stages, each shown with a progress bar, logged to WORK_DIR/train.log and resumable with --resume:
proposals -> conv5 cache (SPP-net) -> fine-tuning of fc6/fc7/fc8 (with finetune.mode=e2e, of the conv
layers too) -> per-class SVMs with hard-negative mining -> per-class bounding-box regression.

Configuration: the papers' defaults (composed in detection/config.py), then, for fc6 / fc7 that start
from scratch (every trunk but a classifier of tools/train_cls.py), the fine-tuning recipe that learns
them (detection/config.py, FROM_SCRATCH_FC), then --config FILE (YAML, same nesting; e.g.
tools/configs/paper.yaml, the papers' recipe), then --set KEY=VALUE overrides (dotted keys, YAML
values). The resolved config is saved as WORK_DIR/config.yaml; tools/test_det.py reads it from there.
Every key: docs/configuration.md.

Examples:
  python tools/train_det.py --data-root runs/synthetic_voc --work-dir runs/spp
  python tools/train_det.py --data-root VOCdevkit/VOC2007 --work-dir runs/spp5 --scales 480 576 688 864 1200
  python tools/train_det.py ... --set finetune.iterations=2000 --set svm_layer=fc6   # an ablation
  python tools/train_det.py ... --method rcnn                                          # the baseline
  python tools/train_det.py ... --set finetune.mode=e2e --set finetune.e2e.joint_bbox=true   # conv fine-tuned too
  python tools/train_det.py --ann-file coco/annotations/instances_train2017.json --image-dir coco/train2017 \
      --work-dir runs/coco                              # a COCO json; iscrowd objects count as difficult
  torchrun --nproc_per_node 2 tools/train_det.py ...   # sharded over 2 processes (docs/getting_started.md)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from data.class_counts import check_trainable
from data.errors import InputError
from detection.config import METHODS, DetectorConfig, load_config, load_train_config
from detection.models.backbones import BACKBONES
from detection.pipeline.train import train_detector
from detection.runtime.config_io import config_to_dict, save_config
from detection.runtime.distributed import Dist, close, init_from_env, threads_per_rank
from detection.runtime.ledger import StageLedger, ledger_path, merge_runs, read_runs, recover
from detection.runtime.usage import StageMeter
from detection.training.sgd import CHECKPOINT_EVERY
from detection.workdir import WorkDir
from tools._cli import (
    OVERLAP_GONE,
    add_dataset_arguments,
    add_no_progress,
    dataset_from_args,
    run_cli,
    setup_logging,
    warn_gone_flags,
)

log = logging.getLogger("train_det")
RESUME_HINT = "run the same command with --resume to continue"  # after Ctrl-C or a failed write


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_arguments(p, default_split="trainval")
    p.add_argument("--work-dir", type=Path, required=True, help="where the model, caches and logs go")
    p.add_argument("--method", choices=METHODS, help="spp (default) or rcnn; sets method")
    p.add_argument("--backbone", choices=BACKBONES, help="conv trunk (default mobilenet_v2); sets features.backbone")
    p.add_argument("--pretrained", help="imagenet (default; not for zf5) | none | a classifier WORK_DIR of "
                   "tools/train_cls.py (trunk and fc6/fc7) | PATH to a trunk state_dict; sets features.pretrained")
    p.add_argument("--scales", type=int, nargs="+", metavar="S",
                   help="shorter side(s): 688 (1-scale, default) or 480 576 688 864 1200 (5-scale)")
    p.add_argument("--config", type=Path, help="YAML file of config overrides")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value, e.g. finetune.iterations=2000 (repeatable)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run (killed, Ctrl-C, full disk) with the same config; "
                        "the result is bit-identical to an uninterrupted run's")
    p.add_argument("--checkpoint-every", type=int, default=CHECKPOINT_EVERY, metavar="STEPS",
                   help=f"fine-tuning steps between checkpoints (default {CHECKPOINT_EVERY}); "
                        "does not change the result")
    p.add_argument("--cache-dir", type=Path, help="per-image caches (default: WORK_DIR/cache); work dirs may share one")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    p.add_argument("--workers", type=int, default=None,
                   help="processes for proposals and for fitting SVMs (default: all cores; under torchrun, this "
                        "node's cores / its ranks; 1: serial); does not change the result")
    p.add_argument("--memory-gb", type=float, default=None, metavar="GB",
                   help="memory fine-tuning may hold its pool of windows in (the rest: files in "
                        "WORK_DIR/finetune_spill) and the SVM stage its positives and negative cache (the rest: "
                        "WORK_DIR/svm_spill), and, again, its SVM fits in flight (default: half of the memory "
                        "available when each stage starts); does not change the result")
    p.add_argument("--overlap", action="store_true", help="deprecated: " + OVERLAP_GONE)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per process (default: torch's, all cores; under torchrun, this node's "
                        "cores / its ranks)")
    add_no_progress(p)
    return p.parse_args(argv)


def resolve_config(args: argparse.Namespace) -> DetectorConfig:
    """Defaults, then --config, then the flags, then --set (``detection.config`` holds the policy)."""
    flags = []
    if args.method:
        flags.append(f"method={args.method}")
    if args.backbone:
        flags.append(f"features.backbone={args.backbone}")
    if args.pretrained:
        flags.append(f"features.pretrained={args.pretrained}")
    if args.scales:
        flags.append(f"features.scales=[{','.join(map(str, args.scales))}]")
    return load_train_config(args.config, flags + list(args.overrides))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    warn_gone_flags(args)
    if args.checkpoint_every < 1:
        raise InputError("--checkpoint-every", f"must be >= 1, got {args.checkpoint_every}")
    if args.memory_gb is not None and not args.memory_gb > 0:
        raise InputError("--memory-gb", f"must be > 0, got {args.memory_gb}")
    cfg = resolve_config(args)
    d, device = init_from_env(args.device, args.threads)  # a plain run: SINGLE, torch.device(args.device)
    try:
        return train(args, cfg, d, device)
    finally:
        close(d)


def train(args: argparse.Namespace, cfg: DetectorConfig, d: Dist, device: torch.device) -> int:
    """Everything after parsing, on every rank of a torchrun job (rank 0 writes the work dir)."""
    work = WorkDir(args.work_dir, args.cache_dir)
    work.root.mkdir(parents=True, exist_ok=True)
    setup_logging(work.log_file if d.is_main else None, rank=d.rank if d.active else None)
    if d.is_main:
        check_resumable(args, cfg, work)
    # The data before the work dir is touched: a bad dataset or a class without objects must not
    # cost an earlier run in this work dir its meta.json.
    dataset = dataset_from_args(args)
    untrained = check_trainable(dataset, cfg.missing_classes)
    if d.is_main:
        prepare_work_dir(args, cfg, work)
    d.barrier()  # the other ranks read meta.json only once rank 0 has cleaned it
    log.info("training %s (%s, scales %s) on %s (%s): %d images, %d classes", cfg.method, cfg.features.backbone,
             list(cfg.features.scales), dataset.coco.ann_file if dataset.coco else dataset.root, dataset.split,
             len(dataset.records), dataset.num_classes)  # fmt: skip
    progress = not args.no_progress and d.is_main
    workers = args.workers or (threads_per_rank(d) if d.active else len(os.sched_getaffinity(0)))
    # Kept at torch's default (one per core) on purpose: the float sums, so the model, depend on it.
    log.info("torch intra-op threads: %d (OMP_NUM_THREADS or --threads changes it, and the model's last bits); "
             "worker processes: %d", torch.get_num_threads(), workers)
    meter = StageMeter()
    # the table so far, kept on disk: a killed run's time counts in the run that resumes it
    ledger = StageLedger(work.stages, meter).start() if d.is_main else None
    train_detector(cfg, work, dataset, device, workers, args.resume, progress=progress,
                   checkpoint_every=args.checkpoint_every, d=d, meter=meter,
                   untrained=untrained, memory_gb=args.memory_gb)
    if ledger is not None:
        ledger.finish()  # this run's table appended to WORK_DIR/stages.json (tools/reproduce.py sums them)
        log_runs(work)
        log.info("done: model in %s; test it with tools/test_det.py --work-dir %s", work.root, work.root)
        # last, so that the log ends with it
        log.info("stage table (CPU: this process and its workers; util: CPU / wall / cores; peak RSS: the "
                 "resident memory of this process and its workers; disk: what the stage wrote, its cache "
                 "folder's size):\n%s", meter.table())
    return 0


def log_runs(work: WorkDir) -> None:
    """Where the training took several runs (resumed, some killed), their summed wall time."""
    runs = read_runs(work.stages)
    if len(runs) > 1:
        killed = sum(bool(run.get("interrupted")) for run in runs)
        log.info("this training took %d runs (%d of them killed, counted to their last minute): %.1f min of wall "
                 "time in all", len(runs), killed, merge_runs(runs)[-1]["wall_s"] / 60)


def check_resumable(args: argparse.Namespace, cfg: DetectorConfig, work: WorkDir) -> None:
    """With --resume, refuse a work dir whose saved config differs from this run's."""
    if args.resume and work.config.is_file():
        old = config_to_dict(load_config(work.config))
        if old != config_to_dict(cfg):
            raise InputError(work.config, "the saved config differs from this run's; use another "
                             "--work-dir, or run without --resume to train again from scratch")


def prepare_work_dir(args: argparse.Namespace, cfg: DetectorConfig, work: WorkDir) -> None:
    """Clean a killed run's temporary files, forget the old run (without --resume) or keep a killed
    run's time (with it), save the config."""
    for stale in work.root.glob(".*.tmp"):  # a killed atomic write's temporary file, never read
        stale.unlink(missing_ok=True)
    if not args.resume:  # training again: forget the old run (and its time) before writing anything new
        for old in (work.finetune_ckpt, work.meta, work.stages, ledger_path(work.stages)):
            old.unlink(missing_ok=True)
    recover(work.stages)  # a killed run's table so far, into stages.json
    save_config(cfg, work.config)


if __name__ == "__main__":
    sys.exit(run_cli(main, resume_hint=RESUME_HINT))
