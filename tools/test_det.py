"""Test a trained detector: detect every image of a split, write devkit result files, print mAP.

Reads the model and its config from WORK_DIR (made by tools/train_det.py). The dataset: a VOC
split (--data-root, default the training folder, --split) or a COCO json (--ann-file, --image-dir
defaulting to the training image folder). Writes OUT/comp4_det_<split>_<class>.txt (the official
devkit's format, 1-based pixels) and OUT/map_<split>_<metric>.json (OUT: --out, default
WORK_DIR/results), prints the per-class AP table and the mAP (VOC07 11-point by default), and with
--json also writes that JSON (as tools/eval_voc.py does) there. On a COCO json it also writes
OUT/detections_<split>_results.json (COCO's results format, the json's own ids) and reports COCO
AP@[.5:.95] and AP50 next to the VOC mAP (--coco does the latter for a VOC split too).
Per-image detections are cached, keyed by the model and the config, so an interrupted run
resumes. --set changes test-time settings only, e.g. the speed levers of the fc head, to measure
what they cost in mAP.

Examples:
  python tools/test_det.py --work-dir runs/spp --data-root runs/synthetic_voc --split test --json runs/spp/map.json
  python tools/test_det.py --work-dir runs/spp --set head.svd_fc6=256 --set head.svd_fc7=128 --out runs/spp/results_svd
  python tools/test_det.py --work-dir runs/spp --fast --out runs/spp/results_fast
  python tools/test_det.py --work-dir runs/coco --ann-file coco/annotations/instances_val2017.json --image-dir coco/val2017
  torchrun --nproc_per_node 2 tools/test_det.py --work-dir runs/spp   # images shared by 2 processes
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from data.cache import atomic_write_text
from data.class_counts import describe
from data.datasets import reopen_dataset
from detection.config import FAST_PRESET, TEST_TIME_KEYS, fast_overrides
from detection.pipeline.split import detect_split
from detection.runtime.distributed import Dist, close, init_from_env, threads_per_rank
from detection.runtime.ledger import StageLedger, merge_runs, read_runs, recover
from detection.runtime.stopwatch import Stopwatch
from detection.runtime.usage import StageMeter
from detection.workdir import open_detector
from eval.coco_results import results_path, write_coco_results
from eval.report import evaluate_and_report
from eval.result_files import write_result_files
from eval.voc_ap import METRICS
from tools._cli import OVERLAP_GONE, add_dataset_arguments, add_no_progress, run_cli, setup_logging, warn_gone_flags

log = logging.getLogger("test_det")
RUNS_FILE = "test_runs.json"  # in the results folder: the runs of a test that was killed and resumed, until it ends

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work-dir", type=Path, required=True, help="a work dir trained by tools/train_det.py")
    add_dataset_arguments(p, default_split="test", remembered=True)
    p.add_argument("--metric", choices=METRICS, default="voc07", help="voc07 (11-point, default) or voc10")
    p.add_argument("--coco", action="store_true",
                   help="also report COCO AP@[.5:.95] and AP50 (always on with a COCO json)")
    p.add_argument("--json", type=Path, help="write {metric, map, ap: {class: AP}} here")
    p.add_argument("--cache-dir", type=Path, help="per-image caches (default: the one used in training)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    p.add_argument("--workers", type=int, default=None,
                   help="processes for selective search (default: all cores; under torchrun, this node's "
                        "cores / its ranks; 1: serial); does not change the result")
    p.add_argument("--overlap", action="store_true", help="deprecated: " + OVERLAP_GONE)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="test-time override: " + ", ".join(k + "*" if k.endswith(".") else k for k in TEST_TIME_KEYS)
                        + " (e.g. head.int8=true; repeatable)")
    p.add_argument("--fast", action="store_true",
                   help=f"the speed levers that cost at most 0.5 mAP ({' '.join(FAST_PRESET)}; int8 on CPUs only); "
                        "a --set of the same key wins")
    p.add_argument("--out", type=Path, help="folder for result files and scores (default: WORK_DIR/results)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per process (default: torch's, all cores; under torchrun, this node's "
                        "cores / its ranks)")
    add_no_progress(p)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    warn_gone_flags(args)
    d, device = init_from_env(args.device, args.threads)  # a plain run: SINGLE, torch.device(args.device)
    try:
        return test(args, d, device)
    finally:
        close(d)


def test(args: argparse.Namespace, d: Dist, device: torch.device) -> int:
    """Every rank detects its share of the images; rank 0 writes the results and scores them."""
    meter = StageMeter()
    sw = Stopwatch(device)  # each detected image's stages, proposals excluded (as the papers time them)
    overrides = (fast_overrides(device.type) if args.fast else []) + args.set
    detector = open_detector(args.work_dir, device, overrides, args.cache_dir)
    setup_logging(args.work_dir / "test.log" if d.is_main else None, rank=d.rank if d.active else None)
    dataset = reopen_dataset(detector.work.read_meta(), args.data_root, args.split, args.ann_file, args.image_dir,
                             args.default_split)  # fmt: skip
    if d.is_main:
        describe(dataset)  # objects per class, before any work
    workers = args.workers or (threads_per_rank(d) if d.active else len(os.sched_getaffinity(0)))
    out = args.out or args.work_dir / "results"
    ledger = start_ledger(out / RUNS_FILE, meter) if d.is_main else None
    with meter.stage(f"proposals + detection ({len(dataset.records)} images)"):
        detections = detect_split(detector, dataset, workers, not args.no_progress and d.is_main, sw=sw, d=d)
    if ledger is None:
        return 0  # rank 0 writes the results
    with meter.stage("result files + evaluation"):
        write_result_files(out, detections, dataset.classes, dataset.split)
        if dataset.coco is not None:
            write_coco_results(results_path(out, dataset.split), detections, dataset)
        # The scores always go next to the result files (tools/accuracy_table.py reads them).
        scores = out / f"map_{dataset.split}_{args.metric}.json"
        _, table = evaluate_and_report(detections, dataset.records, dataset.classes, args.metric, scores,
                                       coco=args.coco or dataset.coco is not None,
                                       untrained=detector.work.untrained_classes())  # fmt: skip
    runs = finish_ledger(ledger)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        result = json.loads(scores.read_text())
        result["timing"] = timing(sw, meter, runs)
        atomic_write_text(args.json, json.dumps(result, indent=2))
    log.info("stage table (CPU: this process and its workers; util: CPU / wall / cores; peak RSS: the resident "
             "memory of this process and its workers):\n%s", meter.table())
    print(table)
    return 0


def start_ledger(runs_file: Path, meter: StageMeter) -> StageLedger:
    """Keep this test's table so far on disk, after moving a killed test's table into ``runs_file``."""
    runs_file.parent.mkdir(parents=True, exist_ok=True)
    recover(runs_file)
    return StageLedger(runs_file, meter).start()


def finish_ledger(ledger: StageLedger) -> list[dict]:
    """This test's runs: the killed ones it resumed, then itself; the runs file goes (a later test of
    the same images starts a new count)."""
    ledger.finish()
    runs = read_runs(ledger.runs_file)
    ledger.runs_file.unlink(missing_ok=True)
    return runs


def timing(sw: Stopwatch, meter: StageMeter, runs: list[dict]) -> dict:
    """Test time for the run records: the median seconds per detected image (proposals excluded; cached
    detections, and images whose R-CNN vectors were all read from ``features.rcnn_cache``, not counted)
    and the stage table, summed over ``runs`` (a killed test that this one resumed, then this one)."""
    per_image = [sum(stages.values()) for stages in sw.images]
    return {"detected_images": len(per_image), "median_s_per_image": round(statistics.median(per_image), 4)
            if per_image else None, "cores": meter.cores, "runs": len(runs), "stages": merge_runs(runs)}


if __name__ == "__main__":
    sys.exit(run_cli(main))
