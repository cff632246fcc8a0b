"""Training the reference Faster R-CNN with the one SGD loop (``detection.training.sgd``).

That loop drives a torchvision detector as it drives fine-tuning: its ``step`` callback draws the
step's images from the run's numpy stream, sums the detector's loss dict (RPN objectness and box,
RoI classifier and box, weighted 1 each as torchvision does) and back-propagates it; the loop
owns SGD, the schedule, the checkpoint every few steps and its resume, which restores the numpy
stream and torch's generator (the RPN's and RoI head's sampling, the resize choice), so a resumed
run ends bit-identical to an uninterrupted one. What it does not have, and the run goes without:
torchvision's linear warm-up over the first 1000 steps, and a second lr drop.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torchvision.models.detection import FasterRCNN

from data.records import ImageRecord
from detection.reference.config import FasterRCNNConfig
from detection.reference.model import training_pair
from detection.training.config import FinetuneConfig
from detection.training.sgd import CHECKPOINT_EVERY, sgd_steps

log = logging.getLogger(__name__)


@dataclass
class StepLog:
    """What the training steps of this process measured: each step's loss and seconds."""

    losses: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def median_seconds(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None


def sgd_settings(cfg: FasterRCNNConfig) -> FinetuneConfig:
    """The SGD loop's settings from ``cfg`` (the loop reads iterations, lr, its schedule, momentum and
    weight decay; the other FinetuneConfig fields are fine-tuning's, unused here)."""
    return FinetuneConfig(iterations=cfg.iterations, lr=cfg.lr, lr_step=cfg.lr_step, lr_gamma=cfg.lr_gamma,
                          momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def detector_step(model: FasterRCNN, records: list[ImageRecord], cfg: FasterRCNNConfig, device: torch.device,
                  steps: StepLog):
    """The ``step`` of :func:`sgd_steps`: ``cfg.batch_images`` images drawn without replacement, each
    flipped with probability 1/2, forward in training mode, the summed losses' backward."""

    def step(rng: np.random.Generator) -> float:
        start = time.perf_counter()
        picked = rng.choice(len(records), size=min(cfg.batch_images, len(records)), replace=False)
        flips = rng.random(len(picked)) < 0.5 if cfg.flip else np.zeros(len(picked), bool)
        pairs = [training_pair(records[i], bool(f), cfg.use_difficult) for i, f in zip(picked, flips)]
        images = [image.to(device) for image, _ in pairs]
        targets = [{k: v.to(device) for k, v in target.items()} for _, target in pairs]
        loss = sum(model(images, targets).values())
        loss.backward()
        steps.losses.append(loss.item())
        steps.seconds.append(time.perf_counter() - start)
        return steps.losses[-1]

    return step


def train_faster_rcnn(model: FasterRCNN, records: list[ImageRecord], cfg: FasterRCNNConfig, device: torch.device,
                      checkpoint: Path | None, progress: bool = True,
                      checkpoint_every: int = CHECKPOINT_EVERY) -> StepLog:
    """Train ``model`` (on ``device``) for ``cfg.iterations`` steps on ``records``, resuming from
    ``checkpoint`` when it exists; returns this process's steps.

    Args:
        records: the training images; their number must match a checkpoint's.
        checkpoint: written every ``checkpoint_every`` steps; None: no checkpoint.
    """
    model.to(device).train()
    torch.manual_seed(cfg.seed)  # the RPN's and RoI head's sampling, until a checkpoint restores its state
    params = [p for p in model.parameters() if p.requires_grad]
    steps = StepLog()
    sgd_steps(model, [{"params": params}], sgd_settings(cfg), cfg.seed, detector_step(model, records, cfg, device, steps),
              len(records), checkpoint, progress, checkpoint_every, desc="faster r-cnn")
    model.eval()
    return steps
