"""Single- and multi-size training of the SPP-net classifier (sec. 3.1), resumable epoch by epoch.

Each epoch trains at ONE size (:func:`epoch_size`: the sizes in turn, the last epoch at
``sizes[0]``): random crops of ``sizes[0]`` pixels with random flips, resized to the epoch's size
when it is smaller (the paper's 180 images are its 224 crops resized), all with the same weights. After every epoch the held-out center-crop accuracy
is measured and a checkpoint is written atomically: model, optimiser, scheduler, the data and
dropout RNG states, the epoch and the history. A resumed run therefore draws the same crops, flips
and dropout masks as an uninterrupted one and ends with the same weights (tests check it).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from data.progress import track
from detection.classification.config import TrainConfig
from detection.classification.dataset import ImageSet, random_crops
from detection.classification.evaluate import evaluate
from detection.classification.network import SPPClassifier
from detection.models.backbones import normalise
from detection.runtime.checkpoint import read_checkpoint, restore_checkpoint, save_checkpoint
from detection.runtime.distributed import SINGLE, Dist

log = logging.getLogger(__name__)


def make_optimizer(model: SPPClassifier, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum (or AdamW); the fc layers at ``head_lr_mult`` times the trunk's rate."""
    head = [p for name, p in model.named_parameters() if not name.startswith("trunk.")]
    groups = [{"params": list(model.trunk.parameters()), "lr": cfg.lr},
              {"params": head, "lr": cfg.lr * cfg.head_lr_mult}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Learning rate / peak at step ``step`` of ``total``: linear warmup over ``warmup`` steps
    (Goyal et al. 2017), then a cosine decay to 0 (Loshchilov & Hutter 2017)."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step warmup + cosine over the whole run (stepped after every batch)."""
    total = cfg.epochs * steps_per_epoch
    warmup = min(total, round(cfg.warmup_epochs * steps_per_epoch))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, total, warmup))


def epoch_size(cfg: TrainConfig, epoch: int) -> int:
    """Input size of epoch ``epoch`` (0-based): the sizes in turn, counted back from the LAST epoch,
    which is at ``sizes[0]``, the crop size the held-out view uses. A batch-normalised trunk keeps
    the running statistics of its last epoch's size: ending at 90 px cost 10 points at 112 (CHANGELOG, history)."""
    return cfg.sizes[(cfg.epochs - 1 - epoch) % len(cfg.sizes)]


def train_epoch(model: SPPClassifier, images: ImageSet, cfg: TrainConfig, size: int,
                opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler,
                data_gen: torch.Generator, device: torch.device, desc: str, progress: bool,
                d: Dist = SINGLE) -> float:
    """One epoch at input ``size``; returns the mean training loss. ``sched`` steps once per batch.

    ``d``: in a torchrun job every rank draws the whole batch's crops and dropout masks (same
    generators, so the same ones), runs rows rank, rank + world, ... through a DDP copy of
    ``model``, and scales its summed loss by world / B: DDP's gradient mean is then the
    single-process gradient, up to float summation order and batch norm, whose statistics are each
    rank's own (no SyncBatchNorm; the default ZF-5 trains with batch norm, so 2 ranks do not match
    1 process there).
    """
    model.train()
    net = DistributedDataParallel(model) if d.active else model
    order = torch.randperm(len(images), generator=data_gen)
    total, seen = 0.0, 0
    bar = track(range(0, len(order), cfg.batch_size), desc=desc, show=progress, leave=False)
    for s in bar:
        idx = order[s:s + cfg.batch_size].tolist()
        crops = random_crops([images.images[i] for i in idx], cfg.crop, cfg.flip, data_gen)  # (B, 3, crop, crop)
        labels = torch.from_numpy(images.labels[idx]).to(device)
        if d.active:  # this rank's rows of the batch, the whole batch's dropout masks
            mine = torch.arange(len(idx)) % d.world == d.rank
            crops, labels, masks = crops[mine], labels[mine.to(device)], model.head.draw_masks(len(idx))
            masks = None if masks is None else (masks[0][mine.to(device)], masks[1][mine.to(device)])
        x = normalise(crops.to(device))
        if size != cfg.crop:  # multi-size: the same crops, resized (sec. 3.1)
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            if d.active:
                loss = F.cross_entropy(net(x, masks), labels, reduction="sum") * (d.world / len(idx))
            else:
                loss = F.cross_entropy(model(x), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        batch_loss = d.all_sum(loss.item()) / d.world  # the mean over the whole batch on every rank
        total, seen = total + batch_loss * len(idx), seen + len(idx)
        bar.set_postfix(loss=f"{batch_loss:.3f}")
    return total / max(1, seen)


def fit(model: SPPClassifier, train: ImageSet, held: ImageSet, cfg: TrainConfig, seed: int,
        device: torch.device, checkpoint: Path, resume: bool = False, progress: bool = True,
        stop_after: int | None = None, d: Dist = SINGLE) -> list[dict]:
    """Train ``model`` for ``cfg.epochs`` epochs (from ``checkpoint`` when ``resume``); returns the history.

    Args:
        checkpoint: written after every epoch; read when ``resume`` and it exists.
        stop_after: end after this many epochs in total (an interruption, for tests).
        d: a torchrun job's ranks share each batch (``train_epoch``); rank 0 alone evaluates and
            writes the checkpoint (the other ranks' history holds no held-out figures).
    Returns:
        one dict per epoch: epoch, size, lr, train_loss, held_loss, held_accuracy (center crop), seconds.
    """
    model.to(device)
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg, math.ceil(len(train) / cfg.batch_size))
    data_gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout
    start, history = 0, []
    state = read_checkpoint(checkpoint, len(train), "classifier checkpoint") if resume else None
    if state is not None:
        restore_checkpoint(state, checkpoint, model, opt, sched, data_gen)
        start, history = int(state["epoch"]), list(state["history"])
        log.info("resuming after epoch %d/%d", start, cfg.epochs)
    for epoch in range(start, cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)):
        t0 = time.time()
        size = epoch_size(cfg, epoch)
        lr = opt.param_groups[0]["lr"]
        loss = train_epoch(model, train, cfg, size, opt, sched, data_gen, device,
                           f"epoch {epoch + 1}/{cfg.epochs} at {size}px", progress, d)
        if not d.is_main:
            history.append({"epoch": epoch + 1, "size": size, "lr": lr, "train_loss": loss})
            d.barrier()  # rank 0 evaluates and writes the checkpoint
            continue
        result = evaluate(model, held, cfg.crop, device, progress=progress, views=("center_crop",))
        acc = 1.0 - result["views"]["center_crop"]["top1"]
        history.append({"epoch": epoch + 1, "size": size, "lr": lr, "train_loss": loss, "held_loss": result["loss"],
                        "held_accuracy": acc, "seconds": round(time.time() - t0, 1)})
        log.info("epoch %d/%d at %dpx: lr %.2e, training loss %.3f, held-out loss %.3f, held-out accuracy "
                 "%.1f%% (center crop; majority class %.1f%%), %.0f s", epoch + 1, cfg.epochs, size, lr, loss,
                 result["loss"], 100 * acc, 100 * result["majority"], time.time() - t0)
        save_checkpoint(checkpoint, model, opt, sched, data_gen, len(train), epoch=epoch + 1, history=history)
        d.barrier()
    return history
