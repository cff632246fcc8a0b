"""Write the embedded synthetic detection benchmark (VOC layout) into a folder.

Example:
    python tools/make_synthetic.py --out work/synthetic
    python tools/make_synthetic.py --out work/synthetic --num-trainval 400 --num-test 200 --seed 1

The folder then holds JPEGImages/, Annotations/, ImageSets/Main/{train,val,trainval,test}.txt,
classes.txt and synthetic.json (the parameters; written last, so its presence means "complete").
Running the command again with the same parameters does nothing; with other parameters, or on a
half-written folder, the dataset is generated again. The data are written to a temporary sibling
folder and renamed into place at the end, so an interrupted run never leaves a partial dataset.
"""

from __future__ import annotations

import argparse
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
from data.synthetic import CLASSES, generate
from tools.common import run_cli, setup_logging

log = logging.getLogger("make_synthetic")

MANIFEST = "synthetic.json"
FORMAT_VERSION = 1  # bump when the generator changes its output, so old folders are rebuilt
# What a folder may contain for us to replace it; anything else there is the user's, not ours.
OUR_ENTRIES = {"JPEGImages", "Annotations", "ImageSets", "classes.txt", MANIFEST}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="dataset folder to create (VOC layout)")
    p.add_argument("--num-trainval", type=int, default=200, help="trainval images (half train, half val; default 200)")
    p.add_argument("--num-test", type=int, default=100, help="test images (default 100)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed -> byte-identical files (default 0)")
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


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(verbose=args.verbose)
    if args.num_trainval < 2 or args.num_test < 1 or args.seed < 0:
        raise InputError("command line", "need --num-trainval >= 2, --num-test >= 1 and --seed >= 0")
    out: Path = args.out
    params = {"num_trainval": args.num_trainval, "num_test": args.num_test, "seed": args.seed,
              "num_classes": len(CLASSES), "format_version": FORMAT_VERSION}  # fmt: skip
    if read_manifest(out) == params:
        print(f"{out} already holds the synthetic dataset with these parameters; nothing to do")
        return 0
    _check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        generate(tmp, args.num_trainval, args.num_test, args.seed)
        atomic_write_text(tmp / MANIFEST, json.dumps(params, indent=2, sort_keys=True) + "\n")  # last
        if out.exists():
            shutil.rmtree(out)  # checked above: only our own (stale or partial) dataset
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.perf_counter() - start
    total = args.num_trainval + args.num_test
    print(f"wrote {out}: {args.num_trainval} trainval + {args.num_test} test images, {len(CLASSES)} classes, "
          f"{seconds:.1f} s ({seconds / total * 1000:.0f} ms per image)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
