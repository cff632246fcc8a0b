"""Write the embedded synthetic detection benchmark (VOC layout) into a folder.

Example:
    python tools/make_synthetic.py --out work/synthetic
    python tools/make_synthetic.py --out work/synthetic --num-trainval 200 --num-test 100 --seed 1
    python tools/make_synthetic.py --out work/synthetic_small --preset small
    python tools/make_synthetic.py --out work/synthetic_shape --preset voc07_shape
    python tools/make_synthetic.py --out work/synthetic_t70 --typicality 0.7
    python tools/make_synthetic.py --out runs/voc07_full --preset voc07_20 --num-trainval 5011 --num-test 4952

Presets: "voc07" (the default) stands in for PASCAL VOC 2007 (objects per image, object size
relative to the image, box aspects, truncated and difficult rates, and classes with typical looks, so
that ImageNet features transfer); "voc07_shape" is the same with random fills only (shape alone tells
a class: the hard case); "small" has 1-8 mostly small objects per image. These draw 12 classes;
"voc07_20" is "voc07" with 20, as many as VOC, and with --num-trainval 5011 --num-test 4952 (the
last example) the set has VOC 2007's size too: ~10,000 images at ~80 ms per image and core, about
13 minutes on one core (--workers). Either way the tool prints the set's statistics next to VOC
2007's reference values.

The folder then holds JPEGImages/, Annotations/, ImageSets/Main/{train,val,trainval,test}.txt,
classes.txt and synthetic.json (the parameters; written last, so its presence means "complete").
Running the command again with the same parameters does nothing; with other parameters, or on a
half-written folder, the dataset is generated again. The data are written to a temporary sibling
folder and renamed into place at the end, so an interrupted run never leaves a partial dataset.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from data.cache import atomic_write_text
from data.errors import InputError
from data.synthetic import DEFAULT_PRESET, PRESETS, format_table, generate, set_statistics
from data.voc import load_voc
from tools._cli import add_no_progress, run_cli, setup_logging

log = logging.getLogger("make_synthetic")

MANIFEST = "synthetic.json"
FORMAT_VERSION = 2  # bump when the generator (or a look of data.synthetic.appearance) changes its output, so old folders are rebuilt (2: voc07 upright)
# What a folder may contain for us to replace it; anything else there is the user's, not ours.
OUR_ENTRIES = {"JPEGImages", "Annotations", "ImageSets", "classes.txt", MANIFEST}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="dataset folder to create (VOC layout)")
    # 400 + 200: at 200 + 100 the main job's mAP spread over training seeds was 1.3 points (std, 3
    # seeds), at 400 + 200 0.95 (CHANGELOG, history)
    p.add_argument("--num-trainval", type=int, default=400, help="trainval images (half train, half val; default 400)")
    p.add_argument("--num-test", type=int, default=200, help="test images (default 200)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed -> byte-identical files (default 0)")
    p.add_argument("--preset", choices=sorted(PRESETS), default=DEFAULT_PRESET,
                   help=f"regime: voc07 (sized like PASCAL VOC 2007, classes with typical looks), voc07_20 (the "
                        f"same with 20 classes, as VOC, not 12), voc07_shape (voc07 with shape alone telling a "
                        f"class) or small (1-8 small objects per image); default {DEFAULT_PRESET}")  # fmt: skip
    p.add_argument("--typicality", type=float, metavar="T",
                   help="share of objects drawn with one of their class's typical looks, 0..1 (0: shape alone "
                        "tells a class; default: the preset's)")
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                   help="processes drawing images (default: all cores); the files are the same whatever it is")
    add_no_progress(p)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


def read_manifest(out: Path) -> dict | None:
    """The parameters of a complete dataset in ``out``, or None (missing or unreadable manifest)."""
    try:
        return json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _check_replaceable(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in OUR_ENTRIES)
        if foreign:
            raise InputError(out, f"folder holds files that are not a synthetic dataset ({', '.join(foreign[:3])}); "
                             "choose an empty or new folder")  # fmt: skip


def print_statistics(out: Path, preset: str) -> None:
    """Print the written set's statistics (read back as users will read it) next to VOC 2007's."""
    columns = {f"{preset} {split}": set_statistics(load_voc(out, split).records) for split in ("trainval", "test")}
    print(f"\nstatistics of {out} (preset {preset}); VOC 2007 values marked ~ are approximate or estimated, "
          "see data/synthetic/stats.py")  # fmt: skip
    print(format_table(columns))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(verbose=args.verbose)
    if args.num_trainval < 2 or args.num_test < 1 or args.seed < 0 or args.workers < 1:
        raise InputError("command line", "need --num-trainval >= 2, --num-test >= 1, --seed >= 0 and --workers >= 1")
    if args.typicality is not None and not 0.0 <= args.typicality <= 1.0:
        raise InputError("--typicality", f"must be in [0, 1], got {args.typicality}")
    out: Path = args.out
    cfg = PRESETS[args.preset]
    if args.typicality is not None:
        cfg = dataclasses.replace(cfg, compose=dataclasses.replace(cfg.compose, typicality=args.typicality))
    params = {"num_trainval": args.num_trainval, "num_test": args.num_test, "seed": args.seed,
              "num_classes": cfg.num_classes, "format_version": FORMAT_VERSION, "preset": args.preset,
              "typicality": cfg.compose.typicality}  # fmt: skip
    if read_manifest(out) == params:
        print(f"{out} already holds the synthetic dataset with these parameters; nothing to do")
        print_statistics(out, args.preset)
        return 0
    _check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        generate(tmp, args.num_trainval, args.num_test, args.seed, cfg, args.workers, not args.no_progress)
        atomic_write_text(tmp / MANIFEST, json.dumps(params, indent=2, sort_keys=True) + "\n")  # last
        if out.exists():
            shutil.rmtree(out)  # checked above: only our own (stale or partial) dataset
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.perf_counter() - start
    total = args.num_trainval + args.num_test
    print(f"wrote {out}: {args.num_trainval} trainval + {args.num_test} test images, {cfg.num_classes} classes, "
          f"{seconds:.1f} s ({seconds / total * 1000:.0f} ms per image)")  # fmt: skip
    print_statistics(out, args.preset)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
