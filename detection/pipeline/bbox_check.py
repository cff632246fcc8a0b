"""Do the box regressors generalise? Their effect on held-out proposals, and as training data grows.

Box regression (R-CNN appendix C) adds 3.5 mAP in SPP-net's Table 9; the detector is trained on
proposals that overlap a ground truth by IoU >= ``min_iou`` and judged by mAP alone. This module
measures the regressors where mAP cannot say why: on the proposals of another split that overlap a
non-difficult ground truth by the same IoU, the mean |target| (how far the proposals are from
their objects, in ``data.boxes.encode`` units) against the mean |target - predicted delta| left
after regression, and the mean IoU with the object before and after. The same figures on the
training samples themselves (``bbox_samples.npz``) show the fit; refitting on the first fraction
of those samples (image order, so fewer objects) gives a learning curve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from data.boxes import box_iou, encode, paired_iou
from data.errors import InputError
from data.progress import track
from data.records import ImageRecord
from detection.models.bbox_regression import (
    BBoxRegConfig,
    BBoxRegressors,
    apply_deltas,
    fit_bbox_regressors,
    predict_deltas,
)
from detection.pipeline.bbox_samples import load_samples
from detection.workdir import Detector, WorkDir


@dataclass(frozen=True)
class RegressionSamples:
    """Proposals near a ground truth, with what box regression needs.

    Attributes:
        x: (N, D) raw pool5 vectors. boxes: (N, 4) the proposals. gt: (N, 4) each one's ground
        truth (the highest IoU). labels: (N,) that ground truth's class. ious: (N,) their IoU.
    """

    x: np.ndarray
    boxes: np.ndarray
    gt: np.ndarray
    labels: np.ndarray
    ious: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def first(self, n: int) -> RegressionSamples:
        """The first ``n`` samples (in image order: the samples of the first images)."""
        return RegressionSamples(self.x[:n], self.boxes[:n], self.gt[:n], self.labels[:n], self.ious[:n])

    def num_objects(self) -> int:
        """Distinct ground-truth boxes the samples belong to."""
        return len(np.unique(self.gt, axis=0))


@dataclass(frozen=True)
class RegressionEffect:
    """What regression does to a set of samples (means over the samples).

    Attributes:
        target: mean |encode(proposal, gt)| over the 4 coordinates: the regressors' task.
        residual: mean |target - predicted delta|: what is left of it.
        iou_before, iou_after: mean IoU with the ground truth before and after regression.
        good_before, good_after: share with IoU >= 0.7 before and after.
    """

    target: float
    residual: float
    iou_before: float
    iou_after: float
    good_before: float
    good_after: float

    @property
    def reduction(self) -> float:
        """1 - residual / target: the share of the task the regressors do (0: none, < 0: worse)."""
        return 1.0 - self.residual / self.target


def training_samples(work: WorkDir) -> tuple[RegressionSamples, float]:
    """The samples the work dir's regressors were fitted on, and the feature scale they used."""
    s = load_samples(work.bbox_samples, work.bbox_samples_x)
    if s is None:
        raise InputError(work.bbox_samples, "missing, corrupt or without its rows (bbox_samples_x.npy); rerun the "
                                            "svm stage of tools/train_det.py")
    return (RegressionSamples(np.asarray(s["x"]), s["boxes"], s["gt"], s["labels"], s["ious"]),  # rows in memory
            float(s["pool_scale"]))


def held_out_samples(detector: Detector, records: Sequence[ImageRecord], proposals: Mapping[str, np.ndarray],
                     min_iou: float, progress: bool = False) -> RegressionSamples:
    """The proposals of ``records`` with IoU >= ``min_iou`` to a non-difficult ground truth, with
    their pool5 vectors from ``detector``'s extractor (images without such a proposal add none)."""
    parts: list[tuple[np.ndarray, ...]] = []
    for record in track(records, desc="held-out samples", show=progress):
        keep = ~record.difficult
        boxes = torch.as_tensor(proposals.get(record.image_id, np.zeros((0, 4))), dtype=torch.float32).reshape(-1, 4)
        if len(boxes) == 0 or not keep.any():
            continue
        gt = torch.as_tensor(record.boxes[keep], dtype=torch.float32)
        best, match = box_iou(boxes, gt).max(1)  # each proposal's nearest object
        near = best >= min_iou
        if not near.any():
            continue
        x = detector.source.pool5(record, boxes[near]).cpu().numpy()
        parts.append((x, boxes[near].numpy(), gt[match[near]].numpy(), record.labels[keep][match[near].numpy()],
                      best[near].numpy()))
    if not parts:
        return RegressionSamples(np.zeros((0, 0), np.float32), np.zeros((0, 4), np.float32),
                                 np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32))
    return RegressionSamples(*(np.concatenate(column) for column in zip(*parts)))


def regression_effect(regs: BBoxRegressors, samples: RegressionSamples) -> RegressionEffect:
    """Each sample's own class's regressor applied, as test time does (``detection.inference.detect``)."""
    boxes, gt = torch.as_tensor(samples.boxes, dtype=torch.float64), torch.as_tensor(samples.gt, dtype=torch.float64)
    targets = encode(boxes, gt).numpy()  # (N, 4)
    deltas = predict_deltas(regs, samples.x)[np.arange(len(samples)), samples.labels]  # (N, 4)
    moved = apply_deltas(deltas[:, None, :], samples.boxes)[:, 0]  # (N, 4)
    before = paired_iou(boxes.float(), gt.float()).numpy()
    after = paired_iou(torch.as_tensor(moved), gt.float()).numpy()
    return RegressionEffect(float(np.abs(targets).mean()), float(np.abs(targets - deltas).mean()),
                            float(before.mean()), float(after.mean()), float((before >= 0.7).mean()),
                            float((after >= 0.7).mean()))


@dataclass(frozen=True)
class CurvePoint:
    """Regressors refit on the first ``samples`` training samples (``objects`` distinct ground truths)."""

    fraction: float
    samples: int
    objects: int
    on_training: RegressionEffect
    held_out: RegressionEffect


def learning_curve(training: RegressionSamples, held_out: RegressionSamples, feature_scale: float,
                   num_classes: int, cfg: BBoxRegConfig, fractions: Sequence[float]) -> list[CurvePoint]:
    """Refit the regressors (``cfg``) on the first fraction of ``training`` for each fraction, and
    measure each fit on the samples it saw and on ``held_out``."""
    points = []
    for fraction in fractions:
        part = training.first(max(1, round(fraction * len(training))))
        regs = fit_bbox_regressors(part.x.astype(np.float32), part.boxes, part.gt, part.labels, part.ious,
                                   num_classes, cfg, feature_scale)
        points.append(CurvePoint(fraction, len(part), part.num_objects(), regression_effect(regs, part),
                                 regression_effect(regs, held_out)))
    return points
