"""How much of a dataset's classes a frozen trunk already tells: the linear probe.

Each non-difficult ground-truth box of the training split and of the test split is warped to
224 x 224 with R-CNN's 16 pixels of context, the frozen trunk's conv5 map averaged into one vector,
and a logistic regression trained on the training split's vectors names the test split's classes
(detection.features.probe). Prints the top-1 accuracy, the majority class's share and each
class's accuracy. On PASCAL VOC the papers' premise is that ImageNet features tell most of it.

Examples:
  python tools/probe.py --data-root runs/voc07                      # ImageNet MobileNetV2
  python tools/probe.py --data-root runs/voc07 --backbone zf5 --pretrained runs/cls_zf5
  python tools/probe.py --data-root runs/voc07 --json runs/probe.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from data.cache import atomic_write_text
from data.errors import InputError
from data.voc import load_voc
from detection.config import load_train_config
from detection.features.probe import PROBE_SIZE, box_vectors, fit_probe
from detection.models.backbones import BACKBONES
from detection.workdir import build_network, trunk_weights_file
from tools._cli import add_no_progress, run_cli, setup_logging

log = logging.getLogger("probe")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, required=True, help="VOC-layout folder (Annotations/, JPEGImages/, ...)")
    p.add_argument("--train-split", default="trainval", help="split the probe is fitted on (default trainval)")
    p.add_argument("--test-split", default="test", help="split it is scored on (default test)")
    p.add_argument("--backbone", choices=BACKBONES, default="mobilenet_v2", help="frozen trunk (default mobilenet_v2)")
    p.add_argument("--pretrained", default="imagenet",
                   help="imagenet (default; not for zf5) | none | a classifier WORK_DIR of tools/train_cls.py | "
                        "PATH to a trunk state_dict")
    p.add_argument("--size", type=int, default=PROBE_SIZE, help=f"warped side in pixels (default {PROBE_SIZE})")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--json", type=Path, help="also write the result here (JSON)")
    add_no_progress(p)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    if args.size < 32:
        raise InputError("--size", f"must be >= 32 pixels (one cell of the trunk's conv5 at least), got {args.size}")
    cfg = load_train_config(None, [f"features.backbone={args.backbone}", f"features.pretrained={args.pretrained}"])
    device = torch.device(args.device)
    trunk, _ = build_network(cfg, device, trunk_weights_file(cfg))
    train, test = load_voc(args.data_root, args.train_split), load_voc(args.data_root, args.test_split)
    progress = not args.no_progress
    vectors = [box_vectors(trunk, d.records, device, args.size, progress=progress) for d in (train, test)]
    for (_, labels), split in zip(vectors, (args.train_split, args.test_split)):
        if len(np.unique(labels)) < 2:
            raise InputError(args.data_root, f"split {split!r} holds non-difficult objects of fewer than 2 classes: "
                                             "nothing to probe")
    result = fit_probe(vectors[0], vectors[1], train.classes)
    print(f"linear probe of frozen {args.backbone} ({args.pretrained}) on {args.data_root}: top-1 "
          f"{result.top1:.3f} over {result.test_objects} {args.test_split} objects (fitted on "
          f"{result.train_objects} {args.train_split} objects, C {result.C:g}; majority class {result.chance:.3f})")
    print("  " + ", ".join(f"{c} {a:.2f}" for c, a in result.per_class.items()))
    if args.json:
        atomic_write_text(args.json, json.dumps({"data_root": str(args.data_root), "backbone": args.backbone,
                                                 "pretrained": args.pretrained, **dataclasses.asdict(result)},
                                                indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
