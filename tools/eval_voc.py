"""Score detection result files against a VOC-layout dataset or a COCO json, the way the official
VOC devkit does (and, with --coco or on a COCO json, COCO's AP too).

Examples:
    python tools/eval_voc.py --data-root data/VOC2007 --split test --det-dir work/spp/results \
        --metric voc07 --json work/spp/map.json --plot work/spp/pr --threshold 0
    python tools/eval_voc.py --ann-file coco/annotations/instances_val2017.json --image-dir coco/val2017 \
        --det-dir work/spp/results

The result files are the devkit's: ``<det-dir>/comp4_det_<split>_<class>.txt``, one line per
detection, ``<image_id> <score> <xmin> <ymin> <xmax> <ymax>`` in VOC 1-based pixels (what
``tools/test_det.py`` writes; for a COCO json the image ids are the json's and the split defaults
to the json's name). A class without a file has no detections (AP 0).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from data.cache import atomic_write_text
from data.class_counts import describe
from data.records import Detections, ImageRecord
from eval.report import evaluate_and_report
from eval.result_files import DEFAULT_COMP, read_result_files
from eval.size_bands import map_by_size
from eval.threshold import ThresholdPR, precision_recall_above, relabel_confusions
from eval.voc_ap import METRICS
from tools._cli import add_dataset_arguments, dataset_from_args, run_cli, setup_logging


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Compute per-class AP and mAP of detection result files on a PASCAL VOC split or a COCO "
        "json, with the official devkit's rules (IoU >= 0.5, difficult (COCO: iscrowd) objects ignored, "
        "duplicates count as false positives). Prints a table of AP per class in percent and the mean (mAP).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_dataset_arguments(parser, default_split="test")
    parser.add_argument("--det-dir", type=Path, required=True,
                        help="folder with one result file per class, <comp>_det_<split>_<class>.txt")
    parser.add_argument("--comp", default=DEFAULT_COMP, help="result-file prefix used by the devkit")
    parser.add_argument("--metric", choices=METRICS, default="voc07",
                        help="voc07: 11-point AP (VOC2007, the papers' metric); "
                        "voc10: area under the precision/recall curve (VOC2010 and later)")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write {metric, map, ap: {class: AP}} here, APs as fractions in [0, 1] (with "
                        "--threshold also thresholds: [{threshold, precision, recall, tp, fp, num_gt}])")
    parser.add_argument("--coco", action="store_true",
                        help="also report COCO-style AP averaged over IoU 0.50:0.95 and AP at IoU 0.5 "
                        "(always on with --ann-file)")
    parser.add_argument("--plot", type=Path, default=None, metavar="DIR",
                        help="write one precision/recall curve per class into DIR (PNG)")
    parser.add_argument("--threshold", type=float, nargs="+", default=None, metavar="T",
                        help="also print precision and recall (IoU >= 0.5, pooled over classes) of the "
                        "detections scoring above each T (what tools/demo.py --threshold T draws), and "
                        "their false positives by error type (Hoiem et al. 2012): localisation (IoU >= 0.1 "
                        "with an object of its class, duplicates included), other class (IoU >= 0.1 with "
                        "another class's object), background; then the class pairs most confused, and "
                        "precision and recall had each box on another class's object carried that class")
    parser.add_argument("--size-bands", type=float, nargs="+", default=None, metavar="PX",
                        help="also print mAP per object size: the objects whose shorter side is in each band "
                        "[0, PX1), [PX1, PX2), ... [PXn, inf) pixels, the others ignored like difficult ones "
                        "(detections on nothing count as false positives in every band)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(verbose=args.verbose)
    dataset = dataset_from_args(args)
    describe(dataset)  # objects per class: a class without any has no AP
    image_ids = [r.image_id for r in dataset.records]
    detections = read_result_files(args.det_dir, dataset.classes, dataset.split, image_ids, comp=args.comp)
    _, table = evaluate_and_report(
        detections,
        dataset.records,
        dataset.classes,
        metric=args.metric,
        json_path=args.json,
        coco=args.coco or dataset.coco is not None,
        plot_dir=args.plot,
    )
    print(table)
    drawn = [print_threshold(detections, dataset.records, dataset.classes, t) for t in args.threshold or ()]
    if args.json and drawn:  # beside the scores: what each threshold draws
        scores = json.loads(args.json.read_text())
        atomic_write_text(args.json, json.dumps({**scores, "thresholds": [
            {"threshold": pr.threshold, "precision": pr.precision, "recall": pr.recall, "tp": pr.tp, "fp": pr.fp,
             "num_gt": pr.num_gt} for pr in drawn]}, indent=2))
    if args.size_bands:
        for b in map_by_size(detections, dataset.records, dataset.classes, args.size_bands, args.metric):
            print(f"objects {b.low:g}-{b.high:g} px on the shorter side ({b.num_objects}): mAP {100 * b.map:.1f}")
    return 0


def print_threshold(detections: Mapping[str, Detections], records: Sequence[ImageRecord], classes: Sequence[str],
                    threshold: float) -> ThresholdPR:
    """What a demo at ``threshold`` draws: precision, recall, the false positives' types, the most
    confused class pairs, and precision / recall had those boxes carried their object's class
    (printed; the counts returned)."""
    k = len(classes)
    pr = precision_recall_above(detections, records, k, threshold)
    print(f"score > {threshold:g}: precision {100 * pr.precision:.1f} %, recall {100 * pr.recall:.1f} % "
          f"({pr.tp} TP, {pr.fp} FP, {pr.num_gt} objects); false positives: {pr.fp_localisation} "
          f"localisation, {pr.fp_other_class} other class, {pr.fp_background} background")
    if pr.confusions:
        top = ", ".join(f"{classes[a]} -> {classes[b]} {n}" for a, b, n in pr.confusions[:5])
        fixed = precision_recall_above(relabel_confusions(detections, records), records, k, threshold)
        count = sum(n for *_, n in pr.confusions)
        print(f"  {count} box{'es' if count > 1 else ''} on an object of another class (drawn as -> is): {top}; "
              f"each given its object's class: precision {100 * fixed.precision:.1f} %, recall {100 * fixed.recall:.1f} %")
    return pr


if __name__ == "__main__":
    sys.exit(run_cli(main))
