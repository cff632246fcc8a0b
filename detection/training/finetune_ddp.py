"""Fine-tuning with DistributedDataParallel: the single-process recipe, each rank computing its share.

The single-process run (``finetune.finetune``) keeps a pool of pool5 vectors of every image's
windows and draws each mini-batch of B windows from it. Here:
  1. every rank replays the same window draws for every image (``sample_windows``), so all ranks
     know the whole pool's labels, but pools the vectors of its own images only (image i -> rank
     i % world): the pool5 pass is sharded, and so is the memory;
  2. every rank draws the same mini-batch indices (same numpy stream) and the same dropout masks
     for the whole batch (same torch stream, ``FcHead.draw_masks``);
  3. each rank computes the loss of the batch rows it holds, summed and divided by B, times world:
     DDP averages the gradients over the ranks, so the gradient every rank applies is the
     single-process gradient of the mean loss over the B rows, up to float summation order.
Rank 0 writes the checkpoints; every rank resumes from the same one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from data.errors import InputError
from data.records import ImageRecord
from detection.features.spp_source import Pool5Source
from detection.models.head import FcHead
from detection.runtime.distributed import Dist
from detection.training.finetune import (
    CHECKPOINT_EVERY,
    FinetuneConfig,
    sample_batch,
    sample_windows,
    save_checkpoint,
    start_or_resume,
)
from detection.training.windows import ImageWindows

log = logging.getLogger(__name__)


def collect_windows_sharded(records: Sequence[ImageRecord], windows: Sequence[ImageWindows], source: Pool5Source,
                            cfg: FinetuneConfig, rng: np.random.Generator, d: Dist, source_dim: int,
                            progress: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``finetune.collect_windows``'s pool, its vectors spread over the ranks.

    ``source_dim``: D, the shape of an empty array on a rank without images.

    Returns:
        (N_mine, D) float16 pool5 vectors of this rank's images; (N,) labels of the whole pool, in
        the single-process order; (N,) the rank holding each row; (N,) its row in that rank's array.
    """
    xs, ys, owners = [], [], []
    for i, (record, w) in enumerate(zip(tqdm(records, desc="fine-tune windows", disable=not progress), windows)):
        idx, labels = sample_windows(w, cfg, rng)  # every rank replays every image's draws
        if not idx.numel():
            continue
        ys.append(labels)
        owners.append(torch.full((idx.numel(),), d.owner(i), dtype=torch.long))
        if d.owner(i) == d.rank:
            xs.append(source.pool5(record, w.boxes[idx]).cpu().half())
    if not ys:
        raise InputError("fine-tuning", "no training window overlaps a ground truth; check the dataset")
    owner = torch.cat(owners)
    local = torch.zeros_like(owner)
    for r in range(d.world):
        rows = owner == r
        local[rows] = torch.arange(int(rows.sum()))
    x_mine = torch.cat(xs) if xs else torch.zeros((0, source_dim), dtype=torch.float16)
    return x_mine, torch.cat(ys), owner, local


def finetune_ddp(head: FcHead, records: Sequence[ImageRecord], windows: Sequence[ImageWindows],
                 source: Pool5Source, cfg: FinetuneConfig, seed: int, d: Dist, checkpoint: Path | None = None,
                 progress: bool = True, checkpoint_every: int = CHECKPOINT_EVERY) -> FcHead:
    """``finetune.finetune`` on every rank of a torchrun job (same arguments, plus ``d``).

    The caller seeds torch identically on every rank (``new_head``), so the heads start equal and
    the dropout streams stay in step. Returns ``head`` (the same weights on every rank), eval mode.
    """
    x_mine, y_all, owner, local = collect_windows_sharded(records, windows, source, cfg,
                                                          np.random.default_rng(seed), d, head.fc6.in_features,
                                                          progress)
    log.info("fine-tuning on %d windows (%d positives), %d of them on this rank, %.2f GiB", len(y_all),
             int((y_all > 0).sum()), len(x_mine), x_mine.numel() * 2 / 2**30)
    opt, sched, rng, start, loss_avg = start_or_resume(head, cfg, seed, checkpoint, len(y_all))
    device = next(head.parameters()).device
    model = DistributedDataParallel(head, device_ids=[device.index] if device.type == "cuda" else None)
    head.train()
    bar = tqdm(range(start, cfg.iterations), desc="fine-tune", disable=not progress, initial=start,
               total=cfg.iterations)
    for step in bar:
        # 1. the single-process batch and dropout masks, the same on every rank
        idx = torch.from_numpy(sample_batch(y_all, cfg, rng))
        masks = head.draw_masks(len(idx))
        # 2. this rank's rows of it
        mine = owner[idx] == d.rank
        x = x_mine[local[idx[mine]]].to(device).float()
        y = y_all[idx[mine]].to(device)
        rows = mine.to(device)
        logits = model(x, None if masks is None else (masks[0][rows], masks[1][rows]))
        # 3. sum over my rows / B; DDP's mean over the ranks then gives the mean over the B rows
        loss = nn.functional.cross_entropy(logits, y, reduction="sum") * (d.world / len(idx))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        batch_loss = d.all_sum(loss.item()) / d.world  # the single-process loss, for the log
        loss_avg = batch_loss if loss_avg is None else 0.98 * loss_avg + 0.02 * batch_loss
        bar.set_postfix(loss=f"{loss_avg:.3f}")
        if (checkpoint is not None and d.is_main and (step + 1) % checkpoint_every == 0
                and step + 1 < cfg.iterations):
            save_checkpoint(checkpoint, head, opt, sched, step + 1, rng, loss_avg, len(y_all))
    log.info("fine-tuning done: %d steps, final smoothed loss %s", cfg.iterations,
             f"{loss_avg:.4f}" if loss_avg is not None else "n/a")
    return head.eval()
