"""The linear probe: how much of a set's classes a frozen trunk already tells, before any detector.

SPP-net's and R-CNN's results rest on features pre-trained on ImageNet carrying most of VOC's
signal (R-CNN, pool5 without fine-tuning: 44.2 of 58.5 mAP). The probe measures that on any
VOC-layout or COCO set: each non-difficult ground-truth box is warped to ``size`` x ``size`` with
``padding`` pixels of context (R-CNN's warp, ``rcnn_source.warp_windows``), the frozen trunk's
conv5 map is averaged over its cells into one vector, and a multinomial logistic regression
(scikit-learn, C chosen by cross-validation on the training split) trained on the training
split's boxes names the class of the test split's. Its
top-1 accuracy is the share of test objects whose class the frozen features tell.

The papers give no such figure for VOC 2007's object crops; our target for the embedded stand-in,
top-1 >= 0.75, is an ESTIMATE of what ImageNet features tell of VOC's objects (the ratio of pool5's
mAP without fine-tuning to the final one is 0.74-0.76 in both papers), not a measured VOC value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegressionCV
from sklearn.preprocessing import StandardScaler

from data.errors import InputError
from data.images import read_image
from data.progress import track
from data.records import ImageRecord
from detection.features.rcnn_source import warp_windows
from detection.models.backbones import normalise

PROBE_SIZE = 224  # ImageNet's crop (R-CNN warps to 227)
PROBE_PADDING = 16  # R-CNN sec. 2.1: 16 pixels of context at the warped size
# Inverse regularisation strengths the probe chooses from (C = 1 overfits ~1,000 objects of 1,280
# features: 100 % training accuracy); a linear probe's C is tuned on the training data, as usual.
PROBE_CS = (0.001, 0.01, 0.1, 1.0)


@dataclass(frozen=True)
class ProbeResult:
    """Top-1 accuracy over the test objects, per class, and the majority class's share (chance)."""

    top1: float
    chance: float
    per_class: dict[str, float]
    train_objects: int
    test_objects: int
    C: float  # the regularisation the cross-validation chose


def box_vectors(trunk: torch.nn.Module, records: Sequence[ImageRecord], device: torch.device,
                size: int = PROBE_SIZE, padding: int = PROBE_PADDING, batch: int = 32,
                progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) float32 conv5 vectors (mean over cells) of the N non-difficult ground-truth boxes of
    ``records``, warped; (N,) int64 their labels."""
    vectors, labels = [], []
    pending: list[np.ndarray] = []

    def flush() -> None:
        x = torch.from_numpy(np.concatenate(pending)).permute(0, 3, 1, 2).to(device)
        with torch.no_grad():
            vectors.append(trunk(normalise(x)).mean((2, 3)).float().cpu().numpy())
        pending.clear()

    for record in track(records, desc="probe: ground-truth boxes", show=progress, leave=False):
        keep = ~record.difficult
        if keep.any():
            pending.append(warp_windows(read_image(record.path), record.boxes[keep], size, padding))
            labels.append(record.labels[keep])
        if sum(len(p) for p in pending) >= batch:
            flush()
    if pending:
        flush()
    dim = vectors[0].shape[1] if vectors else 0
    return (np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32),
            np.concatenate(labels).astype(np.int64) if labels else np.zeros(0, np.int64))


def fit_probe(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
              classes: Sequence[str], seed: int = 0) -> ProbeResult:
    """Logistic regression on standardised ``train`` = (X, y), its inverse regularisation C chosen
    from :data:`PROBE_CS` by 3-fold cross-validation on ``train`` alone (2-fold where no class has 3
    objects); scored on ``test``."""
    scaler = StandardScaler().fit(train[0])
    folds = min(3, int(np.bincount(train[1]).max()))  # a tiny set: as many folds as its largest class allows
    if folds < 2:
        raise InputError("probe", f"{len(train[1])} training objects, none of a class seen twice: too few to "
                                  "choose C by cross-validation")
    model = LogisticRegressionCV(Cs=list(PROBE_CS), cv=folds, max_iter=3000, random_state=seed)
    model.fit(scaler.transform(train[0]), train[1])
    x, y = test
    right = model.predict(scaler.transform(x)) == y
    per_class = {c: float(right[y == k].mean()) for k, c in enumerate(classes) if (y == k).any()}
    return ProbeResult(float(right.mean()), float(np.bincount(y).max() / len(y)), per_class, len(train[1]), len(y),
                       float(model.C_[0]))
