"""Train SPP-net as an image classifier (the paper's sec. 3) and measure its held-out error.

The network: a conv trunk (ZF-5 by default), then pyramid pooling of conv5 ({6, 3, 2, 1}, any
input size) or, for the no-SPP baseline, a fixed pool5; fc6 / fc7 with dropout; fc8. Training is
single-size (one --sizes value) or multi-size (several, one epoch each in turn, same weights), on
random crops with horizontal flips. Held-out top-1 / top-5 error is measured on the center crop and
on the full image (any size: what pyramid pooling allows).

ZF-5's recipe (defaults; docs/configuration.md): batch norm after each conv while training, folded into the
convs when saved (classifier.pt is ZF-5 as released); SGD momentum 0.9, lr 0.05 (fc layers 0.1x),
warmup then cosine; fc6 = fc7 = 1024, no dropout; the paper's values are one --set away.

Sizes: the paper's are 224 (and 180); the default here is 112 and 90, the same ratio at the cost
a 2-core CPU affords. --sizes 224 180 gives the paper's.

Data: without --data-root, the embedded classification set (12 shapes with context plus a
background class, drawn from a seed, cached in the work dir); with it, a folder of class
sub-folders (torchvision's ImageFolder layout), e.g. Caltech101.

Outputs in WORK_DIR: config.yaml, classifier.pt, checkpoint.pt (--resume), history.json,
curves.png (loss and held-out accuracy per epoch), eval.json, train.log. The detector starts from
it with tools/train_det.py --backbone zf5 --pretrained WORK_DIR.

Examples:
  python tools/train_cls.py --work-dir runs/cls_zf5                         # SPP, multi-size 112 + 90
  python tools/train_cls.py --work-dir runs/cls_single --sizes 112         # SPP, single-size
  python tools/train_cls.py --work-dir runs/cls_nospp --pool fixed --sizes 112
  python tools/train_cls.py --work-dir runs/caltech --data-root 101_ObjectCategories --sizes 224 180
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from data.cache import atomic_write_text
from data.errors import InputError
from detection.classification.config import POOLS, ClassifierConfig
from detection.classification.curves import plot_curves
from detection.classification.dataset import embedded_sets, folder_sets
from detection.classification.evaluate import evaluate, summary
from detection.classification.network import SPPClassifier
from detection.classification.train import fit
from detection.classification.workdir import ClassifierWorkDir
from detection.models.backbones import BACKBONES
from detection.runtime.config_io import config_to_dict, load_dataclass, save_config
from detection.runtime.distributed import Dist, close, init_from_env
from tools._cli import add_no_progress, run_cli, setup_logging

log = logging.getLogger("train_cls")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work-dir", type=Path, required=True, help="where the model, checkpoint, curves and logs go")
    p.add_argument("--data-root", type=Path,
                   help="ImageFolder tree ROOT/<class>/<image> (or ROOT/train + ROOT/val); default: the embedded set")
    p.add_argument("--backbone", choices=[b for b in BACKBONES if b in ("zf5", "mobilenet_v2")],
                   help="conv trunk (default zf5); sets model.backbone")
    p.add_argument("--pool", choices=POOLS, help="spp (default) or fixed (the no-SPP baseline); sets model.pool")
    p.add_argument("--sizes", type=int, nargs="+", metavar="S",
                   help="training size(s): 112 90 (default, multi-size), 112 (single-size), 224 180 (the paper's)")
    p.add_argument("--config", type=Path, help="YAML file of config overrides")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value, e.g. train.epochs=10 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from the last finished epoch")
    p.add_argument("--json", type=Path, help="also write the held-out figures here")
    p.add_argument("--cache-dir", type=Path, help="where the embedded set is cached (default: WORK_DIR/cache)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per process (default: torch's, all cores; under torchrun, this node's "
                        "cores / its ranks)")
    add_no_progress(p)
    return p.parse_args(argv)


def resolve_config(args: argparse.Namespace) -> ClassifierConfig:
    """Defaults, then --config, then the flags, then --set."""
    flags = []
    if args.backbone:
        flags.append(f"model.backbone={args.backbone}")
    if args.pool:
        flags.append(f"model.pool={args.pool}")
    if args.sizes:
        flags.append(f"train.sizes=[{','.join(map(str, args.sizes))}]")
    return load_dataclass(ClassifierConfig(), args.config, flags + list(args.overrides))


def prepare_work_dir(args: argparse.Namespace, cfg: ClassifierConfig, work: ClassifierWorkDir) -> None:
    """Create it, refuse --resume with another config, forget the old checkpoint without --resume."""
    work.root.mkdir(parents=True, exist_ok=True)
    if args.resume and work.config.is_file():
        if config_to_dict(load_dataclass(ClassifierConfig(), work.config)) != config_to_dict(cfg):
            raise InputError(work.config, "the saved config differs from this run's; use another "
                             "--work-dir, or run without --resume to train again from scratch")
        data_root = str(args.data_root.resolve()) if args.data_root else None
        if work.meta.is_file() and work.read_meta().get("data_root") != data_root:
            raise InputError(work.meta, "--resume with another --data-root; use another --work-dir")
    elif not args.resume:
        work.checkpoint.unlink(missing_ok=True)
    save_config(cfg, work.config)


def _rounded(value):
    """Floats to 5 decimals, for a readable JSON (errors are fractions of at most ~10^5 images)."""
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = resolve_config(args)
    d, device = init_from_env(args.device, args.threads)  # a plain run: SINGLE, torch.device(args.device)
    try:
        return train_classifier(args, cfg, d, device)
    finally:
        close(d)


def train_classifier(args: argparse.Namespace, cfg: ClassifierConfig, d: Dist, device: torch.device) -> int:
    """Everything after parsing, on every rank of a torchrun job (each batch shared; rank 0 writes)."""
    work = ClassifierWorkDir(args.work_dir, args.cache_dir)
    work.root.mkdir(parents=True, exist_ok=True)
    setup_logging(work.log_file if d.is_main else None, rank=d.rank if d.active else None)
    if d.is_main:
        prepare_work_dir(args, cfg, work)
    progress, tc = not args.no_progress and d.is_main, cfg.train
    # 1. data: images at shorter side 8/7 of the crop (ImageNet's 256 / 224); rank 0 caches them first
    for turn in (True, False):
        if d.is_main == turn:
            train, held = (embedded_sets(cfg.data, tc.image_side, work.cache_root, progress) if args.data_root is None else
                           folder_sets(args.data_root, tc.image_side, tc.held_out_fraction, cfg.seed, progress))
        d.barrier()
    if d.is_main:
        work.write_json(work.meta, {"classes": list(train.classes), "image_side": tc.image_side,
                                    "data_root": str(args.data_root.resolve()) if args.data_root else None,
                                    "train_images": len(train), "held_out_images": len(held)})
    # 2. network
    torch.manual_seed(cfg.seed)
    try:
        model = SPPClassifier(cfg.model, len(train.classes), tc.crop)
    except ValueError as err:
        raise InputError("config", str(err)) from None
    log.info("training %s with %s pooling, sizes %s, %d epochs: %d train / %d held-out images, %d classes",
             cfg.model.backbone, cfg.model.pool, list(tc.sizes), tc.epochs, len(train), len(held), len(train.classes))
    # 3. training, checkpointed every epoch
    history = fit(model, train, held, tc, cfg.seed, device, work.checkpoint, args.resume, progress, d=d)
    if not d.is_main:
        return 0  # rank 0 writes the model and evaluates it
    work.save_model(model)
    work.write_json(work.history, history)
    plot_curves(history, held.majority_rate(), work.curves,
                f"{cfg.model.backbone}, {cfg.model.pool}, sizes {'+'.join(map(str, tc.sizes))}")
    # 4. held-out errors, every view the network takes
    result = summary(evaluate(model, held, tc.crop, device, progress=progress))
    result["train_seconds"] = round(sum(h["seconds"] for h in history), 1)
    text = json.dumps(_rounded(result), indent=2)
    atomic_write_text(work.eval, text)
    if args.json:
        atomic_write_text(args.json, text)
    for view, err in result["views"].items():
        if err:
            log.info("held-out %s: top-1 error %.2f%%, top-5 error %.2f%%", view, 100 * err["top1"], 100 * err["top5"])
    log.info("held-out top-1 accuracy %.2f%% (%s view; majority class %.2f%%); curves in %s", 100 * result["accuracy"],
             result["view"], 100 * result["majority"], work.curves)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
