"""End-to-end fine-tuning: the conv layers trained too (``finetune.mode=e2e``; beyond SPP-net).

SPP-net sec. 4.1 fine-tunes fc6-fc8 only, conv fixed. Here the loss also reaches the conv layers:

- SPP-net: through the pyramid pooling, each bin's gradient to its arg-max cell
  (``detection.models.spp.spatial_pyramid_pool``), with Fast R-CNN's image-centric
  mini-batches (sec. 2.3): ``images_per_batch`` images, ``batch_size / images_per_batch`` windows
  from each, ``fg_fraction`` positives. A window is pooled from the scale spp_source chooses for it.
  The first ``freeze_blocks`` conv blocks stay fixed and their output is cached per image, so a
  step runs only the trained blocks, once per image and scale used.
- R-CNN (sec. 2.3): every sampled window is warped and runs through the trained blocks on its own.
  R-CNN draws its 128 windows over all images; we draw them from ``images_per_batch`` images (a
  step then reads two images instead of up to 128; the windows are still independent crops).

With ``joint_bbox`` the head's bbox_pred is trained with Fast R-CNN's multi-task loss (eq. 1):
cross-entropy + lambda * smooth L1 on the positives' class-specific normalised deltas.
``detection.training.sgd`` runs the steps; its checkpoints hold the trained blocks with the head, so
a resumed run is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from data.boxes import encode
from data.errors import InputError
from data.records import ImageRecord
from detection.models.head import JOINT_BBOX_STDS, FcHead
from detection.training.config import FinetuneConfig
from detection.training.sgd import CHECKPOINT_EVERY, sgd_steps
from detection.training.windows import ImageWindows, sample_fg_bg, window_labels

log = logging.getLogger(__name__)

# (record, (R, 4) boxes) -> (R, D) pool5 vectors with their graph to the trained conv blocks.
RegionForward = Callable[[ImageRecord, torch.Tensor], torch.Tensor]


def multitask_loss(head: FcHead, pool5: torch.Tensor, labels: torch.Tensor, boxes: torch.Tensor,
                   gt_boxes: torch.Tensor, joint_bbox: bool, bbox_weight: float, total: int) -> torch.Tensor:
    """Fast R-CNN eq. 1 summed over these windows and divided by the mini-batch's ``total`` windows.

    Args:
        pool5: (R, D) with graph. labels: (R,) class + 1 or BACKGROUND. boxes, gt_boxes: (R, 4), the
            windows and their best ground truths (regression targets of the positives).
    """
    if not joint_bbox:
        return nn.functional.cross_entropy(head(pool5), labels, reduction="sum") / total
    logits, deltas = head.forward_with_boxes(pool5)  # (R, K + 1), (R, K, 4) normalised
    loss = nn.functional.cross_entropy(logits, labels, reduction="sum")
    fg = (labels > 0).nonzero().squeeze(1)
    if fg.numel():
        target = encode(boxes[fg], gt_boxes[fg]) / target_stds(deltas)
        pred = deltas[fg, labels[fg] - 1]  # (F, 4): each positive's own class
        loss = loss + bbox_weight * nn.functional.smooth_l1_loss(pred, target, reduction="sum", beta=1.0)
    return loss / total


def target_stds(like: torch.Tensor) -> torch.Tensor:
    return like.new_tensor(JOINT_BBOX_STDS)


def _step(head: FcHead, regions: RegionForward, batch: list[tuple[ImageRecord, ImageWindows, torch.Tensor, np.ndarray]],
          cfg: FinetuneConfig, device: torch.device) -> float:
    """Forward and backward over the mini-batch, one image at a time (frees each image's graph)."""
    total = sum(idx.size for *_, idx in batch)
    loss_sum = 0.0
    for record, w, labels, idx in batch:
        sel = torch.from_numpy(idx)
        boxes = w.boxes[sel]
        pool5 = regions(record, boxes).to(device)
        loss = multitask_loss(head, pool5, labels[sel].to(device), boxes.to(device), w.gt_boxes[sel].to(device),
                              cfg.e2e.joint_bbox, cfg.e2e.bbox_loss_weight, total)
        loss.backward()
        loss_sum += loss.item()
    return loss_sum


def finetune_e2e(trained: nn.Module, head: FcHead, records: Sequence[ImageRecord], windows: Sequence[ImageWindows],
                 regions: RegionForward, cfg: FinetuneConfig, seed: int, checkpoint: Path | None = None,
                 progress: bool = True, checkpoint_every: int = CHECKPOINT_EVERY) -> FcHead:
    """Train the conv blocks ``trained`` and ``head`` (in place) with SGD; returns the head in eval mode.

    ``trained`` stays in eval mode (batch norm keeps its ImageNet statistics: two images a step are
    too few to estimate them); its parameters get gradients during training only.

    Args:
        trained: the conv blocks to train, those ``regions`` runs with a graph.
        records, windows: the training images and their windows, aligned.
        regions: pool5 vectors of an image's windows, with their graph (SPP-net or R-CNN).
        checkpoint: where to save and resume from every ``checkpoint_every`` steps.
    """
    labels = [window_labels(w, cfg) for w in windows]
    usable = [i for i, lab in enumerate(labels) if bool((lab >= 0).any())]
    if not usable:
        raise InputError("fine-tuning", "no training window overlaps a ground truth; check the dataset")
    device = next(head.parameters()).device
    n_img = min(cfg.e2e.images_per_batch, len(usable))
    per_image = [cfg.batch_size // n_img + (j < cfg.batch_size % n_img) for j in range(n_img)]

    def step(rng: np.random.Generator) -> float:
        picks = rng.choice(usable, n_img, replace=False)
        batch = [(records[i], windows[i], labels[i], np.sort(sample_fg_bg(labels[i], k, cfg.fg_fraction, rng)))
                 for i, k in zip(picks, per_image)]
        return _step(head, regions, batch, cfg, device)

    for p in trained.parameters():
        p.requires_grad_(True)
    groups = [{"params": list(head.parameters())},
              {"params": list(trained.parameters()), "lr": cfg.lr * cfg.e2e.conv_lr_mult}]
    head.train()
    sgd_steps(nn.ModuleDict({"trunk": trained, "head": head}), groups, cfg, seed, step, len(records), checkpoint,
              progress, checkpoint_every, desc="fine-tune e2e")
    for p in trained.parameters():
        p.requires_grad_(False)
    return head.eval()
