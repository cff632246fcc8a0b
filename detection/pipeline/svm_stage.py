"""Stages 4 and 5 of training: linear SVMs with hard-negative mining over the training images, the
same pass keeping the pool5 vectors of proposals near a ground truth, and per-class ridge box
regressors on those vectors (R-CNN's recipe, which SPP-net keeps; ``detection.pipeline.train`` runs
them after proposals, conv5 maps and fine-tuning)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data.errors import InputError
from data.records import Dataset
from detection.config import DetectorConfig
from detection.features.spp_source import Pool5Source
from detection.models.bbox_regression import fit_bbox_regressors
from detection.models.head import FcHead
from detection.pipeline.bbox_samples import SampleWriter, load_samples
from detection.pipeline.mining_features import bbox_sample_rows, layer_features, load_entry
from detection.runtime.distributed import SINGLE, Dist
from detection.training.windows import ImageWindows
from detection.workdir import WorkDir
from svm.model import LinearSVMs, compute_feature_scale
from svm.regions import RegionSet
from svm.train import train_svms

log = logging.getLogger(__name__)

FEATURE_SCALE_IMAGES = 20  # images sampled to estimate the mean feature norm (R-CNN: a sample too)


def estimate_scales(dataset: Dataset, windows: Sequence[ImageWindows], source: Pool5Source, head: FcHead,
                    layer: str, target_norm: float, seed: int) -> tuple[float, float]:
    """Feature scales (SVM layer, pool5) that bring the mean norm of a sample of windows to target."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(windows), min(FEATURE_SCALE_IMAGES, len(windows)), replace=False)
    pool, feats = [], []
    for i in sorted(picks):
        idx = rng.choice(len(windows[i]), min(100, len(windows[i])), replace=False)
        p = source.pool5(dataset.records[i], windows[i].boxes[idx])
        pool.append(p.cpu().numpy())
        feats.append(layer_features(head, p, layer))
    return (compute_feature_scale(np.concatenate(feats), target_norm),
            compute_feature_scale(np.concatenate(pool), target_norm))


def mine_svms(cfg: DetectorConfig, work: WorkDir, dataset: Dataset, windows: Sequence[ImageWindows],
              source: Pool5Source, head: FcHead, progress: bool, entries: Path | None = None,
              d: Dist = SINGLE, workers: int = 1, untrained: Sequence[str] = (),
              memory_budget: int | None = None) -> None:
    """Stage 4: SVMs on ``cfg.svm_layer`` features; keeps bbox-regression samples on the way.

    ``entries``: a folder of the sharded feature pass (``mining_features``) to read each image's
    features from, instead of computing them here (a torchrun job's ranks). ``d``: each rank mines
    the classes k with k % world == rank over every image (classes never interact in mining, so
    each comes out as in one process); rank 0 gathers them and writes the SVMs and the samples.
    ``workers`` processes fit the classes due at once while the next image's features are computed
    here; the SVMs do not depend on it (``svm.train``). The ``untrained`` classes keep w = 0, b = 0.
    ``memory_budget``: bytes the SVMs' positives and negative cache may hold in memory, the rest
    going to WORK_DIR/svm_spill (None: no bound); the SVMs do not depend on it either.
    """
    scale, pool_scale = estimate_scales(dataset, windows, source, head, cfg.svm_layer, cfg.svm.target_norm, cfg.seed)
    scale, pool_scale = d.broadcast((scale, pool_scale))  # the same on every rank, rank 0's to be sure
    log.info("feature scales: %s %.4g, pool5 %.4g", cfg.svm_layer, scale, pool_scale)
    index = {r.image_id: i for i, r in enumerate(dataset.records)}
    rng = np.random.default_rng(cfg.seed)
    samples = SampleWriter(work.bbox_samples, work.bbox_samples_x) if d.is_main else None

    def load_regions(image_id: str) -> RegionSet:
        i = index[image_id]
        w = windows[i]
        near = bbox_sample_rows(w, cfg.bbox.min_iou, rng)
        if entries is None:
            pool5 = source.pool5(dataset.records[i], w.boxes)  # (R, D), computed once per image
            features, pool5_near = layer_features(head, pool5, cfg.svm_layer), pool5[near].cpu().numpy()
        else:
            entry = load_entry(entries, dataset.records[i])
            if entry is None or not np.array_equal(entry["near"], near):
                raise InputError(entries / f"{image_id}.npz", "missing, corrupt or not of this run; rerun the "
                                 "same command with --resume")
            features, pool5_near = entry["features"], entry["pool5_near"]
        if samples is not None:
            samples.add(pool5_near, *(np.asarray(v) for v in (w.boxes[near], w.gt_boxes[near], w.gt_class[near],
                                                                w.max_iou[near])))
        return RegionSet(features, w.boxes.numpy(), w.gt_labels.numpy(), w.overlaps.numpy())

    ids = [r.image_id for r in dataset.records]
    trained = [k for k, name in enumerate(dataset.classes) if name not in set(untrained)]
    classes = [k for k in trained if k % d.world == d.rank] if d.active else trained
    spill = work.root / ("svm_spill" if not d.active else f"svm_spill.rank{d.rank}")
    try:
        svms = train_svms(ids, load_regions, dataset.num_classes, cfg.svm, scale, progress, classes=classes,
                          workers=workers, memory_budget=memory_budget, spill_dir=spill)
    except BaseException:
        if samples is not None:
            samples.abort()
        raise
    if d.active:  # every rank's classes into one model
        weights, bias = svms.weights.copy(), svms.bias.copy()
        for ks, w, b in d.all_gather((classes, svms.weights[:, classes], svms.bias[classes])):
            weights[:, ks], bias[ks] = w, b
        svms = LinearSVMs(weights, bias, svms.feature_scale)
    if samples is not None:
        samples.finish(pool_scale)
        svms.save(work.svms)


def fit_bbox(cfg: DetectorConfig, work: WorkDir, num_classes: int, progress: bool = False) -> None:
    """Stage 5: per-class ridge regressors on the samples that stage 4 kept."""
    s = load_samples(work.bbox_samples, work.bbox_samples_x)
    if s is None:
        raise InputError(work.bbox_samples, "missing, corrupt or without its rows (bbox_samples_x.npy); rerun the "
                                            "svm stage (drop --resume)")
    # float16 rows read on demand (RowFile): fit_bbox_regressors reads one class's rows at a time (VOC 2007:
    # ~160k x pool5's D in all)
    regs = fit_bbox_regressors(s["x"], s["boxes"], s["gt"], s["labels"], s["ious"],
                               num_classes, cfg.bbox, float(s["pool_scale"]), progress)
    regs.save(work.bbox)
