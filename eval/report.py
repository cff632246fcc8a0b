"""Turning a VOC evaluation into what people read: the AP table, the JSON file, plots.

``evaluate_and_report`` is the one call that ``tools/eval_voc.py`` and ``tools/test_det.py`` share.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from data.cache import atomic_write_text
from data.records import Detections, ImageRecord
from eval.voc_ap import VOCResult, evaluate_voc

log = logging.getLogger(__name__)


def _pct(value: float | None) -> str:
    return "   -" if value is None or math.isnan(value) else f"{100 * value:5.1f}"


def format_ap_table(result: VOCResult, coco: Mapping[str, float] | None = None) -> str:
    """A per-class AP table (AP in %), then the mAP (and COCO AP lines when given).

    Classes without non-difficult ground truth show "-", classes trained without any object "n/a";
    neither is in the mean.
    """
    width = max([len(c) for c in result.classes] + [len("class")])
    lines = [f"{'class':<{width}}  AP (%)  #gt  #det"]
    for c in result.classes:
        ap = "   n/a" if c in result.untrained else _pct(result.ap[c])
        lines.append(f"{c:<{width}}  {ap:>6}  {result.num_gt[c]:>3}  {result.num_det[c]:>4}")
    lines.append(f"{'mAP':<{width}}  {_pct(result.map):>6}  ({result.metric}, IoU >= {result.iou_threshold:g})")
    if result.untrained:
        lines.append("n/a: trained without any object of the class (missing_classes=skip)")
    if coco is not None:
        lines.append(f"{'COCO AP':<{width}}  {_pct(coco['AP']):>6}  (IoU 0.50:0.95)")
        lines.append(f"{'COCO AP50':<{width}}  {_pct(coco['AP50']):>6}")
    return "\n".join(lines)


def evaluate_and_report(
    detections: Mapping[str, Detections],
    records: Sequence[ImageRecord],
    classes: Sequence[str],
    metric: str = "voc07",  # the papers' protocol: VOC 2007 test, 11-point AP
    json_path: Path | None = None,
    coco: bool = False,
    plot_dir: Path | None = None,
    untrained: Sequence[str] = (),
) -> tuple[VOCResult, str]:
    """Evaluate, then optionally write JSON, compute COCO AP and plot PR curves.

    Args:
        detections: image_id -> Detections (0-based boxes, labels index ``classes``).
        records: ground-truth records of the split.
        classes: the K class names.
        metric: "voc07" or "voc10".
        json_path: when given, write {"metric", "map", "ap": {class: AP}} there (fractions in
            [0, 1], null for a class without ground truth), plus "coco": {"AP", "AP50"} with coco.
        coco: also compute COCO AP@[.5:.95] and AP50 (pycocotools).
        plot_dir: when given, write one precision/recall PNG per class there.
        untrained: classes the detector was trained without (``missing_classes=skip``): no AP.

    Returns:
        (the VOC result, the text table from :func:`format_ap_table`).
    """
    result = evaluate_voc(detections, records, classes, metric=metric, untrained=untrained)
    coco_scores = None
    if coco:
        from eval.coco_ap import coco_ap  # pycocotools only when asked for

        coco_scores = coco_ap(detections, records, classes)
    if json_path is not None:
        payload = result.to_json()
        if coco_scores is not None:
            payload["coco"] = coco_scores
        atomic_write_text(Path(json_path), json.dumps(payload, indent=2) + "\n")
        log.info("wrote %s", json_path)
    if plot_dir is not None:
        from eval.plots import plot_pr_curves  # matplotlib only when asked for

        plot_pr_curves(result, Path(plot_dir))
    return result, format_ap_table(result, coco_scores)
