"""Fine-tuning fc6, fc7 and a new (K+1)-way fc8 on pooled windows, conv fixed (SPP-net sec. 4.1).

Mini-batches of ``batch_size`` windows, ``fg_fraction`` of them positives (IoU in [fg_iou, 1] with
a ground truth, labelled with its class) and the rest negatives (IoU in [bg_iou_low, bg_iou_high),
labelled background). Since conv is fixed, the pool5 vectors of a sample of every image's windows
are pooled once (:func:`collect_windows`) and batches are drawn from them, so a step costs only
the fc layers. Checkpoints (head, optimiser, schedule, step, both RNGs) make a resumed run
bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from data.cache import atomic_write
from data.errors import InputError, check_config
from data.model_files import load_torch_file
from data.records import ImageRecord
from detection.features.spp_source import Pool5Source
from detection.models.head import BACKGROUND, FcHead
from detection.training.windows import ImageWindows

log = logging.getLogger(__name__)

FINETUNE_MODES = ("fc", "e2e")


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning fc6, fc7 and a new (K+1)-way fc8 on pooled vectors, conv fixed (SPP-net sec. 4.1)."""

    enabled: bool = True  # false: fc6 / fc7 as they come (SPP-net table 9's "pool5" and "fc6" rows)
    # SPP-net sec. 4.1: lr 1e-4 for 250k mini-batches, then 1e-5 for 50k.
    iterations: int = 300_000
    lr: float = 1e-4
    lr_step: int = 250_000
    lr_gamma: float = 0.1
    momentum: float = 0.9  # Caffe's solver for R-CNN / SPP-net
    weight_decay: float = 5e-4  # idem
    batch_size: int = 128  # SPP-net sec. 4.1: mini-batch 128
    fg_fraction: float = 0.25  # 25% positives
    fg_iou: float = 0.5  # positives: IoU in [0.5, 1]
    bg_iou_low: float = 0.1  # negatives: IoU in [0.1, 0.5)
    bg_iou_high: float = 0.5  # (the upper end of that band)
    # Windows per image whose pool5 vectors are kept in memory for fine-tuning (float16: memory
    # = images x windows_per_image x D x 2 bytes); batches are drawn from them across all images.
    # The paper samples over all windows; this bounds memory and makes a step cost only the fc.
    windows_per_image: int = 128
    # Beyond the paper (``detection.training.e2e``): "fc" trains fc6-fc8 on fixed pool5 vectors
    # (SPP-net sec. 4.1, R-CNN's conv fixed too); "e2e" also trains the conv layers, back-propagating
    # through the pyramid pooling (SPP-net) or through each warped window (R-CNN sec. 2.3's recipe).
    mode: str = "fc"
    # e2e: leading conv blocks kept fixed (their output cached per image for SPP-net); Fast R-CNN
    # sec. 4.5 fixes conv1 of its small nets. A block is a top-level child holding a conv.
    freeze_blocks: int = 1
    # e2e: images per mini-batch, batch_size / images windows from each (Fast R-CNN sec. 2.3: N = 2).
    images_per_batch: int = 2
    # e2e: the conv blocks' learning rate is lr * conv_lr_mult (Caffe's lr_mult; Fast R-CNN: 1). Lower
    # it when the head starts from scratch at a high lr, so the pre-trained conv is not wrecked early.
    conv_lr_mult: float = 1.0
    # e2e: Fast R-CNN's box-regression layer trained jointly, smooth L1 weighted by bbox_loss_weight.
    joint_bbox: bool = False
    bbox_loss_weight: float = 1.0  # Fast R-CNN eq. 1: lambda = 1

    def __post_init__(self) -> None:
        checks = [
            (self.iterations >= 0, "finetune.iterations must be >= 0"),
            (self.lr > 0, "finetune.lr must be > 0"),
            (self.lr_step >= 1, "finetune.lr_step must be >= 1"),
            (0.0 < self.fg_fraction < 1.0, "finetune.fg_fraction must be in (0, 1)"),
            (self.batch_size >= 2, "finetune.batch_size must be >= 2"),
            (0.0 <= self.bg_iou_low <= self.bg_iou_high <= self.fg_iou <= 1.0,
             "finetune IoU bands: need 0 <= bg_iou_low <= bg_iou_high <= fg_iou <= 1"),
            (self.windows_per_image >= 1, "finetune.windows_per_image must be >= 1"),
            (self.mode in FINETUNE_MODES, f"finetune.mode must be one of {FINETUNE_MODES}"),
            (self.freeze_blocks >= 0, "finetune.freeze_blocks must be >= 0"),
            (1 <= self.images_per_batch <= self.batch_size, "finetune.images_per_batch must be in [1, batch_size]"),
            (not self.joint_bbox or self.mode == "e2e", "finetune.joint_bbox needs finetune.mode=e2e"),
            (self.bbox_loss_weight >= 0, "finetune.bbox_loss_weight must be >= 0"),
            (self.conv_lr_mult >= 0, "finetune.conv_lr_mult must be >= 0"),
        ]
        check_config(checks)


def window_labels(w: ImageWindows, cfg: FinetuneConfig) -> torch.Tensor:
    """(R,) fine-tuning label per window: class + 1, BACKGROUND, or -1 (not used)."""
    labels = torch.full((len(w),), -1, dtype=torch.long)
    bg = (w.max_iou >= cfg.bg_iou_low) & (w.max_iou < cfg.bg_iou_high)
    labels[bg] = BACKGROUND
    fg = w.max_iou >= cfg.fg_iou
    labels[fg] = w.gt_class[fg] + 1
    return labels


def collect_windows(records: Sequence[ImageRecord], windows: Sequence[ImageWindows], source: Pool5Source,
                    cfg: FinetuneConfig, rng: np.random.Generator, progress: bool = True
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pool5 vectors of a fixed sample of each image's labelled windows, kept in memory (float16).

    Each image contributes up to ``windows_per_image`` windows, ``fg_fraction`` of them positives
    when it has enough. Mini-batches are then drawn from this pool across all images, as the
    paper samples over all windows, and each step costs only the fc layers.

    Returns:
        (N, D) float16 pool5 vectors and (N,) labels (class + 1, or BACKGROUND).
    """
    xs, ys = [], []
    for record, w in zip(tqdm(records, desc="fine-tune windows", disable=not progress), windows):
        idx, labels = sample_windows(w, cfg, rng)
        if idx.numel():
            xs.append(source.pool5(record, w.boxes[idx]).cpu().half())
            ys.append(labels)
    if not xs:
        raise InputError("fine-tuning", "no training window overlaps a ground truth; check the dataset")
    return torch.cat(xs), torch.cat(ys)


def sample_windows(w: ImageWindows, cfg: FinetuneConfig, rng: np.random.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The windows of one image kept for fine-tuning: (M,) ascending indices and their (M,) labels.

    Up to ``windows_per_image``, ``fg_fraction`` of them positives when the image has enough; the
    draws depend only on the windows, so every rank of a distributed run can replay them.
    """
    labels = window_labels(w, cfg)
    fg, bg = np.flatnonzero(labels.numpy() > 0), np.flatnonzero(labels.numpy() == BACKGROUND)
    fg = rng.choice(fg, min(fg.size, round(cfg.windows_per_image * cfg.fg_fraction)), replace=False)
    bg = rng.choice(bg, min(bg.size, cfg.windows_per_image - fg.size), replace=False)
    idx = torch.from_numpy(np.sort(np.concatenate([fg, bg])))
    return idx, labels[idx]


def sample_batch(labels: torch.Tensor, cfg: FinetuneConfig, rng: np.random.Generator) -> np.ndarray:
    """Indices of one mini-batch: ``fg_fraction`` positives (fewer if short), negatives for the rest."""
    fg, bg = np.flatnonzero(labels.numpy() > 0), np.flatnonzero(labels.numpy() == BACKGROUND)
    n_fg = min(fg.size, round(cfg.batch_size * cfg.fg_fraction))
    n_bg = min(bg.size, cfg.batch_size - n_fg)
    return np.concatenate([rng.choice(fg, n_fg, replace=False), rng.choice(bg, n_bg, replace=False)])


CHECKPOINT_EVERY = 200  # steps between fine-tuning checkpoints (tools/train_det.py --checkpoint-every)


def save_checkpoint(path: Path, head: nn.Module, opt: torch.optim.Optimizer,
                     sched: torch.optim.lr_scheduler.LRScheduler, step: int, rng: np.random.Generator,
                     loss_avg: float | None, num_windows: int) -> None:
    """Everything the steps after ``step`` depend on, written atomically (a kill keeps the old one).

    Besides the weights, optimiser (momentum buffers) and schedule, a bit-identical continuation
    needs both random streams: numpy's, which draws the mini-batches (the data order), and torch's,
    which draws the dropout masks.
    """
    state = {"head": head.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
             "step": step, "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
             "loss_avg": loss_avg, "num_windows": num_windows}
    device = next(head.parameters()).device
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    atomic_write(path, lambda f: torch.save(state, f))


def restore_checkpoint(state: dict, head: nn.Module, opt: torch.optim.Optimizer,
                       sched: torch.optim.lr_scheduler.LRScheduler, rng: np.random.Generator
                       ) -> tuple[int, float | None]:
    """Put a checkpoint's state back (in place); returns its step and smoothed loss."""
    head.load_state_dict(state["head"])
    opt.load_state_dict(state["opt"])
    sched.load_state_dict(state["sched"])
    rng.bit_generator.state = state["rng"]  # the mini-batches still to draw
    torch.set_rng_state(state["torch_rng"])  # the dropout masks still to draw
    if "cuda_rng" in state and next(head.parameters()).is_cuda:
        torch.cuda.set_rng_state(state["cuda_rng"], next(head.parameters()).device)
    return int(state["step"]), state["loss_avg"]


_CHECKPOINT_KEYS = ("head", "opt", "sched", "step", "rng", "torch_rng", "loss_avg", "num_windows")


def read_checkpoint(path: Path, num_windows: int) -> dict | None:
    """The checkpoint at ``path``, None when there is none.

    A checkpoint holds hours of fine-tuning: one that cannot be read or does not fit this run is
    reported by name and left as it is, never deleted or silently replaced.

    Raises:
        InputError: naming the checkpoint, when it is unreadable or not of this run.
    """
    if not path.is_file():
        return None
    state = load_torch_file(path, "fine-tuning checkpoint")
    missing = [k for k in _CHECKPOINT_KEYS if k not in state]
    problem = (f"no {', '.join(missing)}" if missing else
               f"it holds {int(state['num_windows'])} windows, this run {num_windows}"
               if int(state["num_windows"]) != num_windows else None)
    if problem:
        raise InputError(path, f"fine-tuning checkpoint does not fit this run ({problem}); run without --resume "
                               "to start again")
    return state


def start_or_resume(head: FcHead, cfg: FinetuneConfig, seed: int, checkpoint: Path | None, num_windows: int
                    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler, np.random.Generator,
                               int, float | None]:
    """The paper's SGD and step schedule for ``head``, with the mini-batch stream of ``seed``: fresh,
    or as the checkpoint left them. Returns (optimiser, schedule, rng, first step, smoothed loss)."""
    opt = torch.optim.SGD(head.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    start, loss_avg, rng = 0, None, np.random.default_rng(seed)
    state = read_checkpoint(checkpoint, num_windows) if checkpoint is not None else None
    if state is not None:
        start, loss_avg = restore_checkpoint(state, head, opt, sched, rng)
        log.info("fine-tuning resumed at step %d from %s", start, checkpoint)
    return opt, sched, rng, start, loss_avg


def finetune(head: FcHead, records: Sequence[ImageRecord], windows: Sequence[ImageWindows],
             source: Pool5Source, cfg: FinetuneConfig, seed: int, checkpoint: Path | None = None,
             progress: bool = True, checkpoint_every: int = CHECKPOINT_EVERY) -> FcHead:
    """Train ``head`` (in place) with SGD on windows of ``records``; returns it in eval mode.

    Dropout draws from torch's global generator, which the caller seeds (``new_head``); a resumed
    run restores it from the checkpoint, so it ends bit-identical to an uninterrupted one.

    Args:
        records, windows: the training images and their windows, aligned.
        source: gives pool5 vectors of windows (SPP-net: from cached conv5).
        checkpoint: where to save and resume from (every ``checkpoint_every`` steps); the caller
            deletes it once the trained head is saved.
    """
    x_all, y_all = collect_windows(records, windows, source, cfg, np.random.default_rng(seed), progress)
    log.info("fine-tuning on %d windows (%d positives), %.2f GiB in memory", len(y_all),
             int((y_all > 0).sum()), x_all.numel() * 2 / 2**30)
    opt, sched, rng, start, loss_avg = start_or_resume(head, cfg, seed, checkpoint, len(y_all))
    device = next(head.parameters()).device
    head.train()
    bar = tqdm(range(start, cfg.iterations), desc="fine-tune", disable=not progress, initial=start,
               total=cfg.iterations)
    for step in bar:
        idx = torch.from_numpy(sample_batch(y_all, cfg, rng))
        x, y = x_all[idx].to(device).float(), y_all[idx].to(device)
        loss = nn.functional.cross_entropy(head(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
        bar.set_postfix(loss=f"{loss_avg:.3f}")
        if checkpoint is not None and (step + 1) % checkpoint_every == 0 and step + 1 < cfg.iterations:
            save_checkpoint(checkpoint, head, opt, sched, step + 1, rng, loss_avg, len(y_all))
    log.info("fine-tuning done: %d steps, final smoothed loss %s", cfg.iterations,
             f"{loss_avg:.4f}" if loss_avg is not None else "n/a")
    return head.eval()
