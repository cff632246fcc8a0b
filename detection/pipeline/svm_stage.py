"""Stages 4 and 5 of training: linear SVMs with hard-negative mining over the training images, the
same pass keeping the pool5 vectors of proposals near a ground truth, and per-class ridge box
regressors on those vectors (R-CNN's recipe, which SPP-net keeps; ``detection.pipeline.train`` runs
them after proposals, conv5 maps and fine-tuning)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data.cache import ArraySpec, load_arrays, save_arrays
from data.errors import InputError
from data.records import Dataset
from detection.config import DetectorConfig
from detection.features.spp_source import Pool5Source
from detection.models.bbox_regression import fit_bbox_regressors
from detection.models.head import FcHead
from detection.pipeline.mining_features import bbox_sample_rows, layer_features, load_entry
from detection.runtime.distributed import SINGLE, Dist
from detection.training.windows import ImageWindows
from detection.workdir import WorkDir
from svm.model import LinearSVMs, compute_feature_scale
from svm.regions import RegionSet
from svm.train import train_svms

log = logging.getLogger(__name__)

FEATURE_SCALE_IMAGES = 20  # images sampled to estimate the mean feature norm (R-CNN: a sample too)
BBOX_SAMPLES_LAYOUT = {"x": ArraySpec(("R", None), "f"), "boxes": ArraySpec(("R", 4), "f"),
                       "gt": ArraySpec(("R", 4), "f"), "labels": ArraySpec(("R",), "iu"),
                       "ious": ArraySpec(("R",), "f"), "pool_scale": ArraySpec((), "f")}


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
    samples: dict[str, list[np.ndarray]] = {"x": [], "boxes": [], "gt": [], "labels": [], "ious": []}

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
        for key, value in (("x", pool5_near.astype(np.float16)), ("boxes", w.boxes[near]),
                           ("gt", w.gt_boxes[near]), ("labels", w.gt_class[near]), ("ious", w.max_iou[near])):
            if d.is_main:
                samples[key].append(np.asarray(value))
        return RegionSet(features, w.boxes.numpy(), w.gt_labels.numpy(), w.overlaps.numpy())

    ids = [r.image_id for r in dataset.records]
    trained = [k for k, name in enumerate(dataset.classes) if name not in set(untrained)]
    classes = [k for k in trained if k % d.world == d.rank] if d.active else trained
    spill = work.root / ("svm_spill" if not d.active else f"svm_spill.rank{d.rank}")
    svms = train_svms(ids, load_regions, dataset.num_classes, cfg.svm, scale, progress, classes=classes,
                      workers=workers, memory_budget=memory_budget, spill_dir=spill)
    if d.active:  # every rank's classes into one model
        weights, bias = svms.weights.copy(), svms.bias.copy()
        for ks, w, b in d.all_gather((classes, svms.weights[:, classes], svms.bias[classes])):
            weights[:, ks], bias[ks] = w, b
        svms = LinearSVMs(weights, bias, svms.feature_scale)
    if d.is_main:
        save_arrays(work.bbox_samples, pool_scale=np.array(pool_scale), **{k: stack(v) for k, v in samples.items()})
        svms.save(work.svms)


def stack(chunks: list[np.ndarray]) -> np.ndarray:
    """``np.concatenate(chunks)``, emptying ``chunks`` as it copies them: the peak is the result and one chunk,
    not twice the result (VOC 2007's box-regression samples: ~160k x pool5's 16,000 float16, 5 GB)."""
    out = np.empty((sum(len(c) for c in chunks), *chunks[0].shape[1:]), chunks[0].dtype)
    at = 0
    chunks.reverse()
    while chunks:
        c = chunks.pop()  # from the end: the first chunk, as the list was reversed
        out[at:at + len(c)] = c
        at += len(c)
    return out


def fit_bbox(cfg: DetectorConfig, work: WorkDir, num_classes: int, progress: bool = False) -> None:
    """Stage 5: per-class ridge regressors on the samples that stage 4 kept."""
    s = load_arrays(work.bbox_samples, BBOX_SAMPLES_LAYOUT)
    if s is None:
        raise InputError(work.bbox_samples, "missing or corrupt; rerun the svm stage (drop --resume)")
    # float16 as stored: each class's rows become float32 in fit_bbox_regressors, the same values
    # without a float32 copy of all the samples (VOC 2007: ~160k x pool5's D)
    regs = fit_bbox_regressors(s["x"], s["boxes"], s["gt"], s["labels"], s["ious"],
                               num_classes, cfg.bbox, float(s["pool_scale"]), progress)
    regs.save(work.bbox)
