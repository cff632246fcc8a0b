"""Time SPP-net against R-CNN on the same images, proposals and network (SPP-net table 10).

Writes OUT/speed.json (medians per stage, the R-CNN / SPP ratio), OUT/speed.md (a table in the
paper's style, with the machine and settings) and OUT/speed.png (stacked bars per stage). Selective
search is run (or read from its cache) first and reported apart: it is not in the ratio.

With --work-dir DIR the trained trunk, head, SVMs and regressors of DIR are timed; with
--work-dir none (default) an untrained network of the paper's shapes (fc6 = fc7 = 4096) is timed,
which costs exactly the same arithmetic. R-CNN takes ~20 ms per window on a 2-core CPU (~40 s
per image at 2000 proposals): keep --num-images small there.

Examples:
  python tools/speed_report.py --data-root runs/synthetic_voc --out runs/speed --num-images 3
  python tools/speed_report.py --data-root runs/synthetic_voc --out runs/speed5 --scales 480 576 688 864 1200
  python tools/speed_report.py --data-root runs/synthetic_voc --out runs/speed_svd \
      --set head.svd_fc6=1024 --set head.svd_fc7=256
  python tools/speed_report.py --data-root runs/synthetic_voc --out runs/speed_fast --work-dir runs/spp_zf5 --fast
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from data.errors import InputError
from data.voc import load_voc
from detection.config import FAST_PRESET, DetectorConfig, fast_overrides
from detection.features.config import FIVE_SCALES, SINGLE_SCALE, FeatureConfig
from detection.features.rcnn_source import RCNNSource
from detection.features.spp_source import SPPSource
from detection.inference.detect import DetectConfig
from detection.models.backbones import BACKBONES, build_trunk
from detection.models.spp import pooled_length
from detection.runtime.config_io import parse_overrides
from detection.speed.benchmark import initial_model, speed_result, time_detection, with_levers
from detection.speed.report import machine, write_report
from detection.workdir import open_detector
from proposals.config import ProposalConfig
from proposals.store import ensure_proposals
from tools._cli import add_no_progress, run_cli, setup_logging

# The old lever flags and the config keys that now spell them (--set KEY=VALUE, as in test_det.py and demo.py).
LEGACY_LEVERS = {"--svd-fc6": "head.svd_fc6", "--svd-fc7": "head.svd_fc7", "--int8-fc": "head.int8"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, required=True, help="VOC 'year' dir whose images are timed")
    p.add_argument("--out", type=Path, required=True, help="folder for speed.json, speed.md, speed.png")
    p.add_argument("--split", default="test", help="split whose first images are timed (default: test)")
    p.add_argument("--backbone", choices=BACKBONES, default="zf5",
                   help="trunk when timing an untrained network (default zf5, the paper's)")
    p.add_argument("--num-images", type=int, default=3, help="images timed after one warm-up image (default 3)")
    p.add_argument("--num-proposals", type=int, default=2000, help="selective-search boxes per image (default 2000)")
    p.add_argument("--scales", type=int, nargs="+", metavar="S",
                   help=f"SPP-net shorter sides: {SINGLE_SCALE[0]} (1-scale, default; with --work-dir: its "
                        f"trained scales) or {' '.join(map(str, FIVE_SCALES))} (5-scale)")
    p.add_argument("--work-dir", default="none",
                   help="trained work dir to time, or 'none' (default) for untrained weights of the paper's shapes")
    p.add_argument("--fc", type=int, default=4096, help="fc6 = fc7 width of the untrained head (default 4096)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a speed lever, spelled as in test_det.py and demo.py: head.svd_fc6=R (truncated SVD of "
                        "fc6, Fast R-CNN: 1024), head.svd_fc7=R (Fast R-CNN: 256), head.int8=true (fc6 / fc7 in "
                        "int8, CPU only); repeatable")
    p.add_argument("--svd-fc6", type=int, metavar="R", help="deprecated: --set head.svd_fc6=R")
    p.add_argument("--svd-fc7", type=int, metavar="R", help="deprecated: --set head.svd_fc7=R")
    p.add_argument("--int8-fc", action="store_true", help="deprecated: --set head.int8=true")
    p.add_argument("--fast", action="store_true",
                   help=f"the levers that cost at most 0.5 mAP: {' '.join(FAST_PRESET)} (int8 on CPUs only)")
    p.add_argument("--no-share", action="store_true",
                   help="lever off: pool windows landing on the same conv5 cells separately")
    p.add_argument("--rcnn-batch-size", type=int, default=FeatureConfig.rcnn_batch_size,
                   help=f"R-CNN windows per forward batch (default {FeatureConfig.rcnn_batch_size})")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads (default: all)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    p.add_argument("--workers", type=int, default=None, help="processes for proposals (default: all cores)")
    add_no_progress(p)
    args = p.parse_args(argv)
    for name in ("num_images", "num_proposals", "threads", "rcnn_batch_size", "fc"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')}", "must be >= 1")
    if args.scales and min(args.scales) < 32:
        raise InputError("--scales", "shorter sides must be >= 32")
    legacy = []
    for flag, key in LEGACY_LEVERS.items():  # the old spelling, kept one release
        value = getattr(args, flag[2:].replace("-", "_"))
        if value:
            print(f"warning: {flag} is deprecated; use --set {key}={'true' if value is True else value}", file=sys.stderr)
            legacy.append(f"{key}={'true' if value is True else value}")
    # the --fast preset, then the old flags, then --set: a later setting of a key wins
    pairs = (fast_overrides(torch.device(args.device).type) if args.fast else []) + legacy + args.set
    unknown = [pair for pair in pairs if pair.split("=", 1)[0].strip() not in LEGACY_LEVERS.values()]
    if unknown:
        raise InputError(f"--set {unknown[0]}", f"speed_report times the levers {', '.join(LEGACY_LEVERS.values())}")
    head = parse_overrides(pairs).get("head", {})
    args.svd_fc6, args.svd_fc7, args.int8_fc = head.get("svd_fc6"), head.get("svd_fc7"), bool(head.get("int8", False))
    return args


def _network(args: argparse.Namespace, num_classes: int, device: torch.device):
    """(trunk, info, model, config, cache folder) of the trained work dir, or untrained ones of the
    paper's shapes (their proposals cached under OUT)."""
    if args.work_dir.lower() != "none":
        d = open_detector(Path(args.work_dir), device)
        return d.trunk, d.info, d.model, d.cfg, d.work.cache
    cfg = DetectorConfig(features=FeatureConfig(backbone=args.backbone, pretrained="none"))
    trunk, info = build_trunk(args.backbone, pretrained=False)
    trunk = trunk.to(device).to(memory_format=torch.channels_last).eval()
    d = pooled_length(info.channels, cfg.features.levels)
    return trunk, info, initial_model(d, args.fc, args.fc, num_classes, cfg.seed), cfg, args.out / "cache"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.out / "speed.log")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dataset = load_voc(args.data_root, args.split)
    records = list(dataset.records[: args.num_images + 1])  # + 1: the warm-up image
    if len(records) < 2:
        raise InputError(args.data_root, f"split {args.split} needs at least 2 images (1 warm-up + 1 timed)")
    trunk, info, model, cfg, cache = _network(args, dataset.num_classes, device)
    scales = tuple(args.scales or cfg.features.scales)
    run = ensure_proposals(records, cache / "proposals", ProposalConfig(max_proposals=args.num_proposals),
                           args.workers or len(os.sched_getaffinity(0)), not args.no_progress)
    records = [r for r in records if r.image_id in run.boxes]
    if len(records) < 2:
        raise InputError(args.data_root, "selective search failed on too many images to time")
    model = with_levers(model, args.svd_fc6, args.svd_fc7, args.int8_fc, device)
    levels, test = cfg.features.levels, DetectConfig()
    spp = SPPSource(trunk, info, scales, levels, device, None, not args.no_share)
    rcnn = RCNNSource(trunk, info, levels, cfg.features.context_padding, args.rcnn_batch_size, device)
    progress = not args.no_progress
    with torch.inference_mode():
        spp_time = time_detection(records, run.boxes, spp, model, test, device, "spp", progress)
        rcnn_time = time_detection(records, run.boxes, rcnn, model, test, device, "rcnn", progress)
    timed = records[1:] if len(records) > 1 else records
    settings = {
        "backbone": info.name, "num_images": len(timed), "num_proposals": args.num_proposals,
        "mean_proposals": float(np.mean([len(run.boxes[r.image_id]) for r in timed])),
        "scales": list(scales), "threads": args.threads, "device": str(device), "machine": machine(),
        "work_dir": args.work_dir, "settings": (f"weights {args.work_dir if args.work_dir.lower() != 'none' else 'untrained'}; "
                                                f"SVD fc6/fc7 ranks {args.svd_fc6}/{args.svd_fc7}; "
                                                f"int8 fc {args.int8_fc}; "
                                                f"share identical windows {not args.no_share}; "
                                                f"R-CNN batch {args.rcnn_batch_size}, channels_last, inference mode"),
    }
    doc = speed_result(settings, spp_time, rcnn_time, float(run.seconds_per_image))
    write_report(doc, args.out)
    print((args.out / "speed.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
