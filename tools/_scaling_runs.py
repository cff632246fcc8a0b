"""One record of a scaling table (tools/reproduce.py): a detector row, trained and tested as
``tools._runs.run_detector`` does, whose record also keeps the stage tables of the training and the
test and the row's sizes, the figures docs/performance.md fits (``eval.scaling_page``).

A scaling row trains in a work dir of its own (``RUNS/scaling/<hash>``) with per-image caches of
its own inside it, never the caches every other row shares: a cost is measured from a cold start.
Shared caches would hand the 1,600-image row the proposals and conv5 maps of the 400 images that
another run computed (the same preset and seed draw the same first images), and a row of 500
proposals the conv5 maps of the row of 200, and their stages would look cheaper than they are; the
400-image row, the main job's config and data, would not train at all. The price: each row writes
its caches again (docs/performance.md's disk column says how much)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data.voc import load_voc
from detection.config import DetectorConfig, load_config
from detection.runtime.ledger import merge_runs
from eval.run_records import RowSpec, TableSpec
from proposals.store import ensure_proposals
from tools._runs import data_root, execute, results_dir, run_detector, tool

SCALING_DIR = "scaling"  # under --runs-dir: the scaling rows' work dirs, each with its own caches
SPEED_IMAGES = 3  # test images tools/speed_report.py times per row (after a warm-up one): R-CNN takes
                  # about a minute per image at 2,000 proposals on 2 cores


def scaling_work_dir(runs: Path, sha1: str) -> Path:
    """Where a scaling row of the resolved config with hash ``sha1`` trains, its caches inside."""
    return runs / SCALING_DIR / sha1[:12]


def run_scaling(spec: TableSpec, row: RowSpec, seed: int, sha1: str, args: argparse.Namespace,
                extra: Sequence[str] = ()) -> dict:
    """Train (unless done) and test one scaling row x seed from cold caches of its own; the detector
    record (``run_detector``'s) with ``train_stages`` (:func:`merge_runs` of its stages.json),
    ``test_stages`` (test_det's ``timing.stages``), ``images`` (trainval and test) and
    ``proposals_per_image`` (the resolved ``proposals.max_proposals``)."""
    work = scaling_work_dir(args.runs_dir, sha1)
    record = run_detector(spec, row, seed, sha1, args, extra, work=work, cache=work / "cache")
    test = json.loads((results_dir(work, row) / "record.json").read_text())["timing"]
    cfg, data = load_config(work / "config.yaml", []), data_root(spec, args.runs_dir, seed)
    return {**record, "train_stages": merge_runs(json.loads((work / "stages.json").read_text())),
            "test_stages": test["stages"],
            "images": {"trainval": int(spec.data["num_trainval"]), "test": int(spec.data["num_test"])},
            "proposals_per_image": cfg.proposals.max_proposals,
            "windows_per_image": round(windows_per_image(data, work, cfg), 1),
            "speed": measure_speed(data, work, cfg.proposals.max_proposals, args, f"{spec.id}/{row.id}")}


def windows_per_image(data: Path, work: Path, cfg: DetectorConfig) -> float:
    """The mean proposals per image over the row's trainval and test images, read from the row's
    proposals cache (every entry is there once the row has tested): the windows every per-window
    stage works on."""
    records = [r for split in ("trainval", "test") for r in load_voc(data, split).records]
    run = ensure_proposals(records, work / "cache" / "proposals", cfg.proposals, 1, False)
    return float(np.mean([len(b) for b in run.boxes.values()])) if run.boxes else 0.0


def measure_speed(data: Path, work: Path, proposals: int, args: argparse.Namespace, what: str) -> dict:
    """SPP-net's and R-CNN's median seconds per test image (selective search excluded) on the row's
    trained network, the same images and proposals, one after the other in one process
    (tools/speed_report.py, into WORK/speed, once): the per-window cost that docs/performance.md
    projects R-CNN's run from. ``windows_per_image``: the timed images' mean proposals."""
    out = work / "speed"
    if not (out / "speed.json").is_file():
        execute(tool("speed_report.py", "--data-root", str(data), "--out", str(out), "--work-dir", str(work),
                     "--num-proposals", str(proposals), "--num-images", str(SPEED_IMAGES), "--device",
                     args.device, "--no-progress"), f"{what}: SPP-net against R-CNN, timed")
    doc = json.loads((out / "speed.json").read_text())
    return {"spp_s_per_image": round(doc["spp"]["seconds_per_image"], 4),
            "rcnn_s_per_image": round(doc["rcnn"]["seconds_per_image"], 4),
            "windows_per_image": round(doc["mean_proposals"], 1), "images": doc["num_images"]}
