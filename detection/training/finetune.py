"""Fine-tuning fc6, fc7 and a new (K+1)-way fc8 on pooled windows, conv fixed (SPP-net sec. 4.1).

Mini-batches of ``batch_size`` windows, ``fg_fraction`` of them positives (IoU in [fg_iou, 1] with
a ground truth, labelled with its class) and the rest negatives (IoU in [bg_iou_low, bg_iou_high),
labelled background). Since conv is fixed, the pool5 vectors of a sample of every image's windows
are pooled once (:func:`collect_windows`) and batches are drawn from them, so a step costs only
the fc layers. Checkpoints (head, optimiser, step, RNG) make it resumable.
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

from data.errors import InputError
from data.model_files import load_torch_file
from data.records import ImageRecord
from detection.features.spp_source import Pool5Source
from detection.models.head import BACKGROUND, FcHead
from detection.training.windows import ImageWindows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning fc6, fc7 and a new (K+1)-way fc8 on pooled vectors, conv fixed (SPP-net sec. 4.1)."""

    enabled: bool = True
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
    bg_iou_high: float = 0.5
    # Windows per image whose pool5 vectors are kept in memory for fine-tuning (float16: memory
    # = images x windows_per_image x D x 2 bytes); batches are drawn from them across all images.
    # The paper samples over all windows; this bounds memory and makes a step cost only the fc.
    windows_per_image: int = 128

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
        ]
        for ok, problem in checks:
            if not ok:
                raise InputError("config", problem)


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
    n_fg_max = round(cfg.windows_per_image * cfg.fg_fraction)
    for record, w in zip(tqdm(records, desc="fine-tune windows", disable=not progress), windows):
        labels = window_labels(w, cfg)
        fg, bg = np.flatnonzero(labels.numpy() > 0), np.flatnonzero(labels.numpy() == BACKGROUND)
        fg = rng.choice(fg, min(fg.size, n_fg_max), replace=False)
        bg = rng.choice(bg, min(bg.size, cfg.windows_per_image - fg.size), replace=False)
        idx = torch.from_numpy(np.sort(np.concatenate([fg, bg])))
        if idx.numel():
            xs.append(source.pool5(record, w.boxes[idx]).cpu().half())
            ys.append(labels[idx])
    if not xs:
        raise InputError("fine-tuning", "no training window overlaps a ground truth; check the dataset")
    return torch.cat(xs), torch.cat(ys)


def sample_batch(labels: torch.Tensor, cfg: FinetuneConfig, rng: np.random.Generator) -> np.ndarray:
    """Indices of one mini-batch: ``fg_fraction`` positives (fewer if short), negatives for the rest."""
    fg, bg = np.flatnonzero(labels.numpy() > 0), np.flatnonzero(labels.numpy() == BACKGROUND)
    n_fg = min(fg.size, round(cfg.batch_size * cfg.fg_fraction))
    n_bg = min(bg.size, cfg.batch_size - n_fg)
    return np.concatenate([rng.choice(fg, n_fg, replace=False), rng.choice(bg, n_bg, replace=False)])


def _save_checkpoint(path: Path, head: nn.Module, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler,
                     step: int, rng: np.random.Generator) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"head": head.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                "step": torch.tensor(step), "rng": rng.bit_generator.state}, tmp)
    tmp.replace(path)


def finetune(head: FcHead, records: Sequence[ImageRecord], windows: Sequence[ImageWindows],
             source: Pool5Source, cfg: FinetuneConfig, seed: int, checkpoint: Path | None = None,
             progress: bool = True) -> FcHead:
    """Train ``head`` (in place) with SGD on windows of ``records``; returns it in eval mode.

    Args:
        records, windows: the training images and their windows, aligned.
        source: gives pool5 vectors of windows (SPP-net: from cached conv5).
        checkpoint: where to save/resume (every 200 steps and at the end).
    """
    opt = torch.optim.SGD(head.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    start, rng = 0, np.random.default_rng(seed)
    if checkpoint is not None and checkpoint.is_file():
        state = load_torch_file(checkpoint, "fine-tuning checkpoint")
        try:
            head.load_state_dict(state["head"])
            opt.load_state_dict(state["opt"])
            start = int(state["step"])
            rng.bit_generator.state = state["rng"]
            sched.load_state_dict(state["sched"])
        except (KeyError, RuntimeError, TypeError, ValueError) as err:
            raise InputError(checkpoint, f"fine-tuning checkpoint does not fit this run ({type(err).__name__}: "
                                         f"{str(err).splitlines()[0][:200]}); run without --resume to start "
                                         "again") from None
        log.info("fine-tuning resumed at step %d from %s", start, checkpoint)
    x_all, y_all = collect_windows(records, windows, source, cfg, np.random.default_rng(seed), progress)
    log.info("fine-tuning on %d windows (%d positives), %.2f GiB in memory", len(y_all),
             int((y_all > 0).sum()), x_all.numel() * 2 / 2**30)
    device = next(head.parameters()).device
    head.train()
    loss_avg, bar = None, tqdm(range(start, cfg.iterations), desc="fine-tune", disable=not progress,
                               initial=start, total=cfg.iterations)
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
        if checkpoint is not None and (step + 1) % 200 == 0:
            _save_checkpoint(checkpoint, head, opt, sched, step + 1, rng)
    if checkpoint is not None:
        _save_checkpoint(checkpoint, head, opt, sched, cfg.iterations, rng)
    log.info("fine-tuning done: %d steps, final smoothed loss %s", cfg.iterations,
             f"{loss_avg:.4f}" if loss_avg is not None else "n/a")
    return head.eval()
