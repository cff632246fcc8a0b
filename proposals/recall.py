"""How well proposals cover the ground truth: recall at IoU thresholds, boxes per image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from data import boxes as B
from data.records import ImageRecord


@dataclass(frozen=True)
class RecallReport:
    """Proposal quality over a set of images.

    Attributes:
        images: images evaluated (those with proposals).
        num_gt: non-difficult ground-truth boxes of those images.
        recall: IoU threshold -> fraction of those boxes with a proposal of IoU >= threshold.
        mean_boxes: mean number of proposals per evaluated image.
    """

    images: int
    num_gt: int
    recall: dict[float, float]
    mean_boxes: float


def best_overlaps(proposals: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """For each ground-truth box, its best IoU with any proposal.

    Args:
        proposals: (R, 4) boxes; gt_boxes: (G, 4) boxes.
    Returns:
        (G,) float32, 0 where there is no proposal.
    """
    if len(gt_boxes) == 0:
        return np.zeros(0, np.float32)
    if len(proposals) == 0:
        return np.zeros(len(gt_boxes), np.float32)
    iou = B.box_iou(B.as_tensor(gt_boxes), B.as_tensor(proposals))  # (G, R)
    return iou.max(dim=1).values.numpy()


def proposal_recall(records: Sequence[ImageRecord], proposals: Mapping[str, np.ndarray],
                    thresholds: Sequence[float] = (0.5, 0.7)) -> RecallReport:
    """Recall of the non-difficult ground truth (VOC: difficult objects do not count in recall).

    Images absent from ``proposals`` (failed ones) are left out of every figure.

    Args:
        records: the images with their ground truth.
        proposals: image id -> (R, 4) proposal boxes.
        thresholds: IoU thresholds.
    """
    best: list[np.ndarray] = []
    counts: list[int] = []
    for record in records:
        if record.image_id not in proposals:
            continue
        props = np.asarray(proposals[record.image_id]).reshape(-1, 4)
        gt = np.asarray(record.boxes).reshape(-1, 4)[~np.asarray(record.difficult, dtype=bool)]
        best.append(best_overlaps(props, gt))
        counts.append(len(props))
    overlaps = np.concatenate(best) if best else np.zeros(0, np.float32)
    recall = {float(t): float(np.mean(overlaps >= t)) if overlaps.size else float("nan") for t in thresholds}
    mean_boxes = float(np.mean(counts)) if counts else float("nan")
    return RecallReport(len(counts), int(overlaps.size), recall, mean_boxes)
