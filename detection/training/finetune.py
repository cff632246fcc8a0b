"""Fine-tuning fc6, fc7 and a new (K+1)-way fc8 on pooled windows, conv fixed (SPP-net sec. 4.1).

Mini-batches of ``batch_size`` windows, ``fg_fraction`` of them positives (IoU in [fg_iou, 1] with
a ground truth, labelled with its class) and the rest negatives (IoU in [bg_iou_low, bg_iou_high),
labelled background). Since conv is fixed, a sample of every image's windows is drawn once
(:func:`draw_windows`) and batches are drawn from it. The pool5 vectors of the windows some batch
will draw (:func:`batch_draws`) are pooled once and held (:func:`pool_windows`: in memory up to a
budget, on disk past it), so a step costs only the fc layers. ``detection.training.sgd`` runs the
steps and their checkpoints.

Under torchrun (``d``) the same steps run on every rank, each computing its share:
  1. every rank replays the same window draws for every image, so all ranks know the whole pool's
     labels, but pools the vectors of its own images only (image i -> rank i % world): the pool5
     pass is sharded, and so is the memory;
  2. every rank draws the same mini-batch indices (same numpy stream) and the same dropout masks
     for the whole batch (same torch stream, ``FcHead.draw_masks``);
  3. each rank computes the loss of the batch rows it holds, summed and divided by B, times world:
     DDP averages the gradients over the ranks, so the gradient every rank applies is the
     single-process gradient of the mean loss over the B rows, up to float summation order.
A single process is the case world = 1: it holds every row.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from data.errors import InputError
from data.progress import track
from data.records import ImageRecord
from detection.features.spp_source import Pool5Source
from detection.models.head import FcHead
from detection.runtime.distributed import SINGLE, Dist
from detection.training.config import FinetuneConfig
from detection.training.sgd import CHECKPOINT_EVERY, sgd_steps
from detection.training.windows import ImageWindows, sample_fg_bg, window_labels
from svm.row_store import RowStore

log = logging.getLogger(__name__)


def draw_windows(windows: Sequence[ImageWindows], cfg: FinetuneConfig, rng: np.random.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """The pool: a fixed sample of each image's labelled windows, drawn once for the whole run.

    Each image contributes up to ``windows_per_image`` windows, ``fg_fraction`` of them positives
    when it has enough; the draws depend only on the windows, so every rank can replay them.
    Mini-batches are then drawn from this pool across all images, as the paper samples over all
    windows.

    Returns:
        (N,) labels of the whole pool (class + 1, or BACKGROUND); (N,) the image of each row, whose
        rank ``d.owner`` gives (image 0's rows first, then 1's, ...); per image, the (n_i,) indices
        of its drawn windows (empty for an image without any).
    """
    ys, images, picked = [], [], []
    for i, w in enumerate(windows):
        labels = window_labels(w, cfg)
        idx = torch.from_numpy(np.sort(sample_fg_bg(labels, cfg.windows_per_image, cfg.fg_fraction, rng)))
        picked.append(idx)
        if not idx.numel():
            continue
        ys.append(labels[idx])
        images.append(torch.full((idx.numel(),), i, dtype=torch.long))
    if not ys:
        raise InputError("fine-tuning", "no training window overlaps a ground truth; check the dataset")
    return torch.cat(ys), torch.cat(images), picked


def pool_windows(records: Sequence[ImageRecord], windows: Sequence[ImageWindows], picked: Sequence[torch.Tensor],
                 source: Pool5Source, d: Dist, store: RowStore, progress: bool = True) -> None:
    """Pool5 vectors (float16) of this rank's images' drawn windows into ``store``, one entry per image
    (its index): in memory up to the store's budget, on disk past it."""
    for i, (record, w, idx) in enumerate(zip(track(records, desc="fine-tune windows", show=progress), windows,
                                             picked)):
        if idx.numel() and d.owner(i) == d.rank:
            store.put(i, source.pool5(record, w.boxes[idx]).cpu().half().numpy())


def batch_draws(y_all: torch.Tensor, cfg: FinetuneConfig, seed: int) -> np.ndarray:
    """(N,) bool: the rows of the pool that some step's mini-batch will draw.

    ``sgd_steps`` hands each step the numpy stream ``default_rng(seed)``, from which the step draws
    its batch with one :func:`sample_fg_bg` of the pool's labels; replaying that stream gives every
    batch ahead. Only these rows need pool5 vectors: on VOC 2007, 1,500 batches of 128 read ~28 %
    of a pool of 604,318 windows (19 GB of float16 vectors).
    """
    rng, drawn = np.random.default_rng(seed), np.zeros(len(y_all), bool)
    for _ in range(cfg.iterations):
        drawn[sample_fg_bg(y_all, cfg.batch_size, cfg.fg_fraction, rng)] = True
    return drawn


def keep_drawn(drawn: np.ndarray, picked: Sequence[torch.Tensor]) -> tuple[np.ndarray, list[torch.Tensor]]:
    """The pool cut to its ``drawn`` rows: (N,) each row's place among its image's kept rows (-1:
    not kept) and, per image, the indices of its kept windows (the pool holds image 0's rows, then 1's, ...)."""
    row, kept, start = np.full(len(drawn), -1), [], 0
    for idx in picked:
        mine = drawn[start:start + len(idx)]
        row[start:start + len(idx)][mine] = np.arange(int(mine.sum()))
        kept.append(idx[torch.from_numpy(mine)])
        start += len(idx)
    return row, kept


def gather_rows(store: RowStore, image: np.ndarray, row: np.ndarray) -> torch.Tensor:
    """(B, D) float16: row ``row[b]`` of entry ``image[b]`` for each b, each entry read once."""
    out = np.empty((len(image), store.dim), store.dtype)
    for key in np.unique(image):
        at = np.flatnonzero(image == key)
        out[at] = store.take(int(key), row[at])
    return torch.from_numpy(out)


def finetune(head: FcHead, records: Sequence[ImageRecord], windows: Sequence[ImageWindows],
             source: Pool5Source, cfg: FinetuneConfig, seed: int, checkpoint: Path | None = None,
             progress: bool = True, checkpoint_every: int = CHECKPOINT_EVERY, d: Dist = SINGLE,
             memory_budget: int | None = None, spill: Path | None = None) -> FcHead:
    """Train ``head`` (in place) with SGD on windows of ``records``; returns it in eval mode.

    Dropout draws from torch's global generator, which the caller seeds (``new_head``, identically
    on every rank); a resumed run restores it from the checkpoint, so it ends bit-identical to an
    uninterrupted one.

    Args:
        records, windows: the training images and their windows, aligned.
        source: gives pool5 vectors of windows (SPP-net: from cached conv5).
        checkpoint: where to save and resume from (every ``checkpoint_every`` steps); the caller
            deletes it once the trained head is saved.
        d: this process's rank in a torchrun job (every rank calls this), or SINGLE.
        memory_budget: bytes the pool's vectors may hold in memory, the rest in files of ``spill``
            (deleted at the start and the end); None: no bound. The same head either way.
    """
    if spill is not None:
        shutil.rmtree(spill, ignore_errors=True)  # a killed run's files: the pool is drawn again
    y_all, image, picked = draw_windows(windows, cfg, np.random.default_rng(seed))
    row, picked = keep_drawn(batch_draws(y_all, cfg, seed), picked)
    store = RowStore(head.fc6.in_features, memory_budget, spill, np.float16)
    try:
        pool_windows(records, windows, picked, source, d, store, progress)
        owner = d.owner(image)  # image i's rows are rank i % world's
        log.info("fine-tuning on %d windows (%d positives), %d of them drawn by a batch, %d of those here, "
                 "%.2f GiB in memory, %.2f GiB on disk", len(y_all), int((y_all > 0).sum()), int((row >= 0).sum()),
                 int(((row >= 0) & (owner == d.rank).numpy()).sum()), store.ram_bytes / 2**30, store.disk_bytes / 2**30)
        _steps(head, store, y_all, owner, image.numpy(), row, cfg, seed, checkpoint, progress, checkpoint_every, d)
    finally:
        store.close()
    return head.eval()


def _steps(head: FcHead, store: RowStore, y_all: torch.Tensor, owner: torch.Tensor, image: np.ndarray,
           row: np.ndarray, cfg: FinetuneConfig, seed: int, checkpoint: Path | None, progress: bool,
           checkpoint_every: int, d: Dist) -> None:
    """The SGD steps on batches drawn from the pool (:func:`draw_windows`'s arrays)."""
    device = next(head.parameters()).device
    model = DistributedDataParallel(head, device_ids=[device.index] if device.type == "cuda" else None) \
        if d.active else head

    def step(rng: np.random.Generator) -> float:
        # 1. the whole batch and its dropout masks, the same on every rank
        idx = torch.from_numpy(sample_fg_bg(y_all, cfg.batch_size, cfg.fg_fraction, rng))
        masks = head.draw_masks(len(idx))
        # 2. this rank's rows of it
        mine = owner[idx] == d.rank
        held = idx[mine].numpy()
        if (row[held] < 0).any():  # batch_draws replays the stream step draws from: never, unless they part
            raise RuntimeError("fine-tuning drew a window that batch_draws did not keep")
        x = gather_rows(store, image[held], row[held]).to(device).float()
        rows = mine.to(device)
        logits = model(x, None if masks is None else (masks[0][rows], masks[1][rows]))
        # 3. sum over my rows / B; DDP's mean over the ranks then gives the mean over the B rows
        loss = nn.functional.cross_entropy(logits, y_all[idx[mine]].to(device), reduction="sum") * (d.world / len(idx))
        loss.backward()
        return d.all_sum(loss.item()) / d.world  # the mean over the whole batch, for the log

    head.train()
    sgd_steps(head, [{"params": list(head.parameters())}], cfg, seed, step, len(y_all), checkpoint, progress,
              checkpoint_every, d)
