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
Checkpoints hold the trained blocks, the head, optimiser, schedule, step and both RNGs, so a resumed
run is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from data.boxes import encode
from data.errors import InputError
from data.records import ImageRecord
from detection.models.head import BACKGROUND, JOINT_BBOX_STDS, FcHead
from detection.training.finetune import (
    CHECKPOINT_EVERY,
    FinetuneConfig,
    read_checkpoint,
    save_checkpoint,
    window_labels,
)
from detection.training.windows import ImageWindows

log = logging.getLogger(__name__)

# (record, (R, 4) boxes) -> (R, D) pool5 vectors with their graph to the trained conv blocks.
RegionForward = Callable[[ImageRecord, torch.Tensor], torch.Tensor]


def sample_windows(labels: torch.Tensor, count: int, fg_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Up to ``count`` window indices of one image: ``fg_fraction`` positives (fewer if short), the
    rest negatives (fewer if short), sorted."""
    lab = labels.numpy()
    fg, bg = np.flatnonzero(lab > 0), np.flatnonzero(lab == BACKGROUND)
    fg = rng.choice(fg, min(fg.size, round(count * fg_fraction)), replace=False)
    bg = rng.choice(bg, min(bg.size, count - fg.size), replace=False)
    return np.sort(np.concatenate([fg, bg]))


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
                              cfg.joint_bbox, cfg.bbox_loss_weight, total)
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
    model = nn.ModuleDict({"trunk": trained, "head": head})
    for p in trained.parameters():
        p.requires_grad_(True)
    groups = [{"params": list(head.parameters())},
              {"params": list(trained.parameters()), "lr": cfg.lr * cfg.conv_lr_mult}]
    opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    start, loss_avg, rng = 0, None, np.random.default_rng(seed)
    state = read_checkpoint(checkpoint, len(records)) if checkpoint is not None else None
    if state is not None:
        _restore(model, opt, sched, rng, state, checkpoint)
        start, loss_avg = int(state["step"]), state["loss_avg"]
        log.info("end-to-end fine-tuning resumed at step %d from %s", start, checkpoint)
    n_img = min(cfg.images_per_batch, len(usable))
    per_image = [cfg.batch_size // n_img + (j < cfg.batch_size % n_img) for j in range(n_img)]
    head.train()
    bar = tqdm(range(start, cfg.iterations), desc="fine-tune e2e", disable=not progress, initial=start,
               total=cfg.iterations)
    for step in bar:
        picks = rng.choice(usable, n_img, replace=False)
        batch = [(records[i], windows[i], labels[i], sample_windows(labels[i], k, cfg.fg_fraction, rng))
                 for i, k in zip(picks, per_image)]
        opt.zero_grad(set_to_none=True)
        loss = _step(head, regions, batch, cfg, device)
        opt.step()
        sched.step()
        loss_avg = loss if loss_avg is None else 0.98 * loss_avg + 0.02 * loss
        bar.set_postfix(loss=f"{loss_avg:.3f}")
        if checkpoint is not None and (step + 1) % checkpoint_every == 0 and step + 1 < cfg.iterations:
            save_checkpoint(checkpoint, model, opt, sched, step + 1, rng, loss_avg, len(records))
    for p in trained.parameters():
        p.requires_grad_(False)
    log.info("end-to-end fine-tuning done: %d steps, final smoothed loss %s", cfg.iterations,
             f"{loss_avg:.4f}" if loss_avg is not None else "n/a")
    return head.eval()


def _restore(model: nn.Module, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler,
             rng: np.random.Generator, state: dict, checkpoint: Path) -> None:
    """Load a checkpoint of :func:`finetune_e2e` (one of fc-only fine-tuning does not fit)."""
    try:
        model.load_state_dict(state["head"])
        opt.load_state_dict(state["opt"])
    except (RuntimeError, KeyError, ValueError) as err:
        raise InputError(checkpoint, f"not an end-to-end fine-tuning checkpoint of this network "
                                     f"({str(err).splitlines()[0][:120]}); run without --resume") from None
    sched.load_state_dict(state["sched"])
    rng.bit_generator.state = state["rng"]
    torch.set_rng_state(state["torch_rng"])
    device = next(model.parameters()).device
    if "cuda_rng" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], device)
