"""The training windows of one image: ground truth plus proposals, with their overlaps.

R-CNN / SPP-net train every stage (fine-tuning, SVMs, bbox regression) on the same per-image set
of windows: the non-difficult ground-truth boxes first, then the selective-search proposals.
Fine-tuning labels them by IoU band (:func:`window_labels`) and samples "a fraction of positives,
the rest negatives" (:func:`sample_fg_bg`), for every image's pool and every mini-batch alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from data.boxes import as_tensor, box_iou, max_overlaps
from data.records import ImageRecord
from detection.models.head import BACKGROUND
from detection.training.config import FinetuneConfig


@dataclass(frozen=True)
class ImageWindows:
    """Windows of one training image.

    Attributes:
        boxes: (R, 4) ground-truth boxes (non-difficult) first, then proposals.
        gt_labels: (R,) int64 class of a ground-truth window, -1 for a proposal.
        overlaps: (R, K) best IoU with the ground truth of each class (difficult ones included,
            so that a difficult object never becomes a negative).
        max_iou: (R,) best IoU with any ground truth.
        gt_class: (R,) class of that best ground truth (0 where the image has none).
        gt_boxes: (R, 4) that best ground-truth box (bbox-regression target).
    """

    boxes: torch.Tensor
    gt_labels: torch.Tensor
    overlaps: torch.Tensor
    max_iou: torch.Tensor
    gt_class: torch.Tensor
    gt_boxes: torch.Tensor

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


def build_windows(record: ImageRecord, proposals: np.ndarray, num_classes: int) -> ImageWindows:
    """Ground truth + proposals of one image, labelled against its ground truth.

    Args:
        record: the image's annotations.
        proposals: (P, 4) proposals in original-image pixels.
        num_classes: K.
    """
    gt = as_tensor(record.boxes)
    gt_labels = torch.as_tensor(record.labels, dtype=torch.long)
    keep = ~torch.as_tensor(record.difficult, dtype=torch.bool)
    boxes = torch.cat([gt[keep], as_tensor(proposals)])
    labels = torch.cat([gt_labels[keep], torch.full((len(proposals),), -1, dtype=torch.long)])
    overlaps = max_overlaps(boxes, gt, gt_labels, num_classes)
    if gt.shape[0]:
        max_iou, best = box_iou(boxes, gt).max(1)
        gt_class, gt_boxes = gt_labels[best], gt[best]
    else:
        max_iou = torch.zeros(boxes.shape[0])
        gt_class, gt_boxes = torch.zeros(boxes.shape[0], dtype=torch.long), boxes.clone()
    return ImageWindows(boxes, labels, overlaps, max_iou, gt_class, gt_boxes)


def window_labels(w: ImageWindows, cfg: FinetuneConfig) -> torch.Tensor:
    """(R,) fine-tuning label per window: class + 1 (IoU >= fg_iou), BACKGROUND (IoU in
    [bg_iou_low, bg_iou_high)), or -1 (not used)."""
    labels = torch.full((len(w),), -1, dtype=torch.long)
    bg = (w.max_iou >= cfg.bg_iou_low) & (w.max_iou < cfg.bg_iou_high)
    labels[bg] = BACKGROUND
    fg = w.max_iou >= cfg.fg_iou
    labels[fg] = w.gt_class[fg] + 1
    return labels


def sample_fg_bg(labels: torch.Tensor, count: int, fg_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Up to ``count`` indices of ``labels``: ``round(count * fg_fraction)`` positives (fewer if
    short), then negatives for the rest (fewer if short), each drawn without replacement.

    Args:
        labels: (R,) class + 1, BACKGROUND or -1 (never drawn).
    Returns:
        (M,) int64 indices, the positives first, in the order drawn.
    """
    lab = labels.numpy()
    fg, bg = np.flatnonzero(lab > 0), np.flatnonzero(lab == BACKGROUND)
    fg = rng.choice(fg, min(fg.size, round(count * fg_fraction)), replace=False)
    bg = rng.choice(bg, min(bg.size, count - fg.size), replace=False)
    return np.concatenate([fg, bg])
