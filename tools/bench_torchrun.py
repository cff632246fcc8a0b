"""Speed-up of `torchrun --nproc_per_node N` over one process, stage by stage (a benchmark, not a test).

Each repetition trains and tests the same detector twice, each time from empty caches: one plain
process, then N processes under torchrun. Every process gets one torch thread and one proposal
worker, so the comparison is N processes against 1 on the same work (a plain run's default of all
cores and workers is another baseline). Stage times are read from rank 0's logs (train.log,
test.log; their timestamps are whole seconds, so give each stage tens of seconds of work).
Prints the median seconds per stage, per image where a stage works per image, and the ratio;
--json writes them.

Example:
  python tools/make_synthetic.py --out runs/bench_voc --num-trainval 24 --num-test 12
  python tools/bench_torchrun.py --data-root runs/bench_voc --out runs/bench_torchrun --nproc 2 --reps 2 \\
      --config tools/configs/main/spp_mobilenet.yaml --set finetune.iterations=300
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from data.cache import atomic_write_text
from tools._cli import run_cli

ROOT = Path(__file__).resolve().parents[1]
# stage -> (log, line that starts it, line that ends it); per-image stages are divided by images
TRAIN_MARKS = {"proposals": ("train", "training ", "stage proposals done"),
               "conv5": ("train", "stage proposals done", "stage conv5 done"),
               "finetune pool5 pass": ("train", "stage conv5 done", "fine-tuning on"),
               "finetune steps": ("train", "fine-tuning on", "fine-tuning done"),
               "svm (features + mining)": ("train", "stage finetune done", "stage svm done"),
               "test proposals": ("test", "proposals: ", "proposals cache: computed"),
               "test detection": ("test", "proposals cache: computed", "detections of")}
PER_IMAGE = {"proposals": "train", "conv5": "train", "finetune pool5 pass": "train",
             "svm (features + mining)": "train", "test proposals": "test", "test detection": "test"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, required=True, help="a VOC-layout set (trainval and test splits)")
    p.add_argument("--out", type=Path, required=True, help="work dirs and bench.json go here (emptied first)")
    p.add_argument("--nproc", type=int, default=2, help="processes of the torchrun runs (default 2)")
    p.add_argument("--reps", type=int, default=2, help="repetitions of the pair (default 2)")
    p.add_argument("--config", type=Path, help="train_det --config")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="train_det --set (repeatable)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    return p.parse_args(argv)


def _stamp(lines: list[str], needle: str, last: bool) -> datetime:
    hits = [line for line in lines if needle in line]
    if not hits:
        raise RuntimeError(f"no log line with {needle!r}")
    return datetime.strptime((hits[-1] if last else hits[0])[:8], "%H:%M:%S")


def stage_seconds(work: Path) -> dict[str, float]:
    """Seconds of each stage in TRAIN_MARKS, from rank 0's train.log and test.log in ``work``."""
    logs = {name: (work / f"{name}.log").read_text().splitlines() for name in ("train", "test")}
    # the last "proposals cache: computed" of test.log: a torchrun rank 0 writes one per shard pass
    return {stage: (_stamp(logs[log], end, True) - _stamp(logs[log], start, False)).total_seconds()
            for stage, (log, start, end) in TRAIN_MARKS.items()}


def run_pair(args: argparse.Namespace, rep: int) -> dict[int, dict[str, float]]:
    """Train + test once with 1 process and once with ``args.nproc``; seconds per stage for each."""
    out: dict[int, dict[str, float]] = {}
    common = ["--threads", "1", "--workers", "1", "--no-progress"]
    train = ["--data-root", str(args.data_root), *(["--config", str(args.config)] if args.config else []),
             *[a for kv in args.overrides for a in ("--set", kv)], *common]
    for nproc in (1, args.nproc):
        work = args.out / f"rep{rep}_n{nproc}"
        shutil.rmtree(work, ignore_errors=True)
        launch = ([sys.executable] if nproc == 1 else
                  [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)])
        for tool, argv in (("train_det.py", train), ("test_det.py", common)):
            subprocess.run([*launch, str(ROOT / "tools" / tool), "--work-dir", str(work), *argv], check=True,
                           cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out[nproc] = stage_seconds(work)
        print(f"rep {rep}, {nproc} process(es): {out[nproc]}", flush=True)
    return out


def count_images(root: Path, split: str) -> int:
    return len((root / "ImageSets" / "Main" / f"{split}.txt").read_text().split())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = [run_pair(args, rep) for rep in range(args.reps)]
    images = {"train": count_images(args.data_root, "trainval"), "test": count_images(args.data_root, "test")}
    table = {}
    for stage in TRAIN_MARKS:
        one = statistics.median(r[1][stage] for r in runs)
        many = statistics.median(r[args.nproc][stage] for r in runs)
        ratios = [r[1][stage] / r[args.nproc][stage] for r in runs if r[args.nproc][stage] > 0]
        n = images[PER_IMAGE[stage]] if stage in PER_IMAGE else None
        table[stage] = {"seconds_1": one, f"seconds_{args.nproc}": many,
                        "speedup_median": statistics.median(ratios) if ratios else None,
                        "seconds_per_image_1": one / n if n else None}
    print(f"{'stage':<26} {'1 proc s':>9} {f'{args.nproc} proc s':>9} {'speed-up':>9} {'s/image (1)':>12}")
    for stage, row in table.items():
        sp, spi = row["speedup_median"], row["seconds_per_image_1"]
        print(f"{stage:<26} {row['seconds_1']:>9.0f} {row[f'seconds_{args.nproc}']:>9.0f} "
              f"{'n/a' if sp is None else f'{sp:.2f}x':>9} {'' if spi is None else f'{spi:.3f}':>12}")
    doc = {"nproc": args.nproc, "reps": args.reps, "images": images, "stages": table, "runs": runs}
    atomic_write_text(args.out / "bench.json", json.dumps(doc, indent=2) + "\n")
    if args.json:
        atomic_write_text(args.json, json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
