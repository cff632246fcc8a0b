"""The one fine-tuning loop (fc-only, end-to-end, single process or DDP): SGD with momentum and a
step schedule (Caffe's solver, as R-CNN and SPP-net use), a checkpoint every few steps, resume.

The caller's ``step`` draws its mini-batch from the run's numpy stream and back-propagates its loss;
everything else, the optimiser, the schedule, the smoothed loss, the checkpoints and their resume,
is here, once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from data.progress import track
from detection.runtime.checkpoint import read_checkpoint, restore_checkpoint, save_checkpoint
from detection.runtime.distributed import SINGLE, Dist
from detection.training.config import FinetuneConfig

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 200  # steps between fine-tuning checkpoints (tools/train_det.py --checkpoint-every)
# (rng) -> the mini-batch's loss: draws the batch from rng, runs forward and backward
Step = Callable[[np.random.Generator], float]


def sgd_steps(model: nn.Module, groups: list[dict], cfg: FinetuneConfig, seed: int, step: Step, fits: int,
              checkpoint: Path | None = None, progress: bool = True, checkpoint_every: int = CHECKPOINT_EVERY,
              d: Dist = SINGLE, desc: str = "fine-tune") -> float | None:
    """Run ``cfg.iterations`` SGD steps on ``model``'s parameter ``groups``; returns the smoothed loss.

    Args:
        cfg: lr, momentum, weight_decay, lr_step, lr_gamma and iterations.
        seed: seeds the numpy stream handed to ``step``.
        fits: the number of training items; a checkpoint of another number is refused.
        checkpoint: saved every ``checkpoint_every`` steps (by rank 0), resumed from when it exists.
        desc: the progress bar's label.
    """
    opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    start, loss_avg, rng = 0, None, np.random.default_rng(seed)
    state = read_checkpoint(checkpoint, fits, "fine-tuning checkpoint") if checkpoint is not None else None
    if state is not None:
        restore_checkpoint(state, checkpoint, model, opt, sched, rng)
        start, loss_avg = int(state["step"]), state["loss_avg"]
        log.info("fine-tuning resumed at step %d from %s", start, checkpoint)
    bar = track(range(start, cfg.iterations), desc=desc, show=progress, initial=start, total=cfg.iterations)
    for i in bar:
        opt.zero_grad(set_to_none=True)
        loss = step(rng)
        opt.step()
        sched.step()
        loss_avg = loss if loss_avg is None else 0.98 * loss_avg + 0.02 * loss
        bar.set_postfix(loss=f"{loss_avg:.3f}")
        if checkpoint is not None and d.is_main and (i + 1) % checkpoint_every == 0 and i + 1 < cfg.iterations:
            save_checkpoint(checkpoint, model, opt, sched, rng, fits, step=i + 1, loss_avg=loss_avg)
    log.info("fine-tuning done (%s): %d steps, final smoothed loss %s", desc, cfg.iterations,
             f"{loss_avg:.4f}" if loss_avg is not None else "n/a")
    return loss_avg
