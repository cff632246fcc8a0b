"""A trained work dir written by hand: the files tools/train_det.py leaves, with random weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from detection.config import DetectorConfig
from detection.models.bbox_regression import BBoxRegressors
from detection.runtime.config_io import save_config
from detection.workdir import TRAINING_VERSION, WorkDir, build_network, new_head, trunk_weights_file
from svm.model import LinearSVMs


def write_work_dir(root: Path, cfg: DetectorConfig, cache_dir: Path | None = None, seed: int = 0,
                   classes: tuple[str, ...] = ("circle", "square")) -> WorkDir:
    """A complete work dir for ``cfg`` with random head, SVMs and box regressors (seeded)."""
    work = WorkDir(root, cache_dir)
    save_config(cfg, work.config)
    work.write_meta({"classes": list(classes), "cache_dir": str(work.cache), "stages_done": [],
                     "training_version": TRAINING_VERSION})
    _, info = build_network(cfg, torch.device("cpu"), trunk_weights_file(cfg))
    head = new_head(cfg, info, len(classes))
    torch.save(head.state_dict(), work.head)
    rng = np.random.default_rng(seed)
    k = len(classes)
    LinearSVMs(rng.normal(size=(cfg.head.fc7, k)).astype(np.float32), np.zeros(k, np.float32), 1.0).save(work.svms)
    d = head.fc6.in_features
    BBoxRegressors(rng.normal(size=(k, d, 4)).astype(np.float32), np.zeros((k, 4), np.float32), 1.0).save(work.bbox)
    return work
