"""Training a detector, stage by stage, each resumable (R-CNN / SPP-net training recipe).

  1. proposals   selective search on every training image (per-image cache), in worker processes
  2. conv5       SPP-net only: conv5 maps of every training image (per-image cache), computed here
                 while the workers run step 1: each image as soon as its proposals are known; with
                 finetune.mode=e2e the fixed first blocks' maps instead
  3. finetune    fc6, fc7, fc8 on pooled windows (skipped when finetune.enabled is false); with
                 finetune.mode=e2e the conv layers too (detection.training.e2e), saved as trunk.pt,
                 whose conv5 maps (another cache folder: keyed by the weights) stages 4-5 use
  4. svm         one pass of hard-negative mining over the training images; the same pass keeps
                 the pool5 vectors of proposals near a ground truth for step 5
  5. bbox        per-class ridge regression on those pool5 vectors

A stage is done when its output exists and ``meta.json`` lists it; ``resume`` skips done stages.
Stages 1, 2 and 3 continue an interrupted run where it stopped (per-image caches, fine-tuning
checkpoints); 4 and 5 start again from their beginning. Either way the result is bit-identical to
an uninterrupted run's.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from data.cache import ArraySpec, atomic_write, corrupt_entries_reported, file_digest, load_arrays, save_arrays
from data.datasets import dataset_source
from data.errors import InputError
from data.model_files import load_module_state
from data.records import Dataset
from detection.config import DetectorConfig
from detection.features.rcnn_cache import CachedRCNNSource
from detection.features.spp_source import Pool5Source
from detection.models.bbox_regression import fit_bbox_regressors
from detection.models.head import FcHead
from detection.pipeline.mining_features import (
    bbox_sample_rows,
    features_folder,
    layer_features,
    load_entry,
    sharded_feature_pass,
)
from detection.pipeline.sharded import sharded_conv5, sharded_proposals
from detection.runtime.distributed import SINGLE, Dist
from detection.runtime.usage import StageMeter
from detection.training.e2e import finetune_e2e
from detection.training.e2e_regions import make_regions
from detection.training.finetune import finetune
from detection.training.sgd import CHECKPOINT_EVERY
from detection.training.windows import ImageWindows, build_windows
from detection.workdir import (
    TRAINING_VERSION,
    WorkDir,
    build_network,
    classifier_file,
    load_finetuned_trunk,
    make_source,
    new_head,
    trains_trunk,
    trunk_weights_file,
)
from svm.model import LinearSVMs, compute_feature_scale
from svm.regions import RegionSet
from svm.train import train_svms

log = logging.getLogger(__name__)

TRAIN_STAGES = ("proposals", "conv5", "finetune", "svm", "bbox")  # in order; meta.json lists those done
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
              d: Dist = SINGLE, workers: int = 1, untrained: Sequence[str] = ()) -> None:
    """Stage 4: SVMs on ``cfg.svm_layer`` features; keeps bbox-regression samples on the way.

    ``entries``: a folder of the sharded feature pass (``mining_features``) to read each image's
    features from, instead of computing them here (a torchrun job's ranks). ``d``: each rank mines
    the classes k with k % world == rank over every image (classes never interact in mining, so
    each comes out as in one process); rank 0 gathers them and writes the SVMs and the samples.
    ``workers`` processes fit the classes due at once while the next image's features are computed
    here; the SVMs do not depend on it (``svm.train``). The ``untrained`` classes keep w = 0, b = 0.
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
    svms = train_svms(ids, load_regions, dataset.num_classes, cfg.svm, scale, progress, classes=classes,
                      workers=workers)
    if d.active:  # every rank's classes into one model
        weights, bias = svms.weights.copy(), svms.bias.copy()
        for ks, w, b in d.all_gather((classes, svms.weights[:, classes], svms.bias[classes])):
            weights[:, ks], bias[ks] = w, b
        svms = LinearSVMs(weights, bias, svms.feature_scale)
    if d.is_main:
        save_arrays(work.bbox_samples, pool_scale=np.array(pool_scale),
                    **{k: np.concatenate(v) for k, v in samples.items()})
        svms.save(work.svms)


def fit_bbox(cfg: DetectorConfig, work: WorkDir, num_classes: int) -> None:
    """Stage 5: per-class ridge regressors on the samples that stage 4 kept."""
    s = load_arrays(work.bbox_samples, BBOX_SAMPLES_LAYOUT)
    if s is None:
        raise InputError(work.bbox_samples, "missing or corrupt; rerun the svm stage (drop --resume)")
    regs = fit_bbox_regressors(s["x"].astype(np.float32), s["boxes"], s["gt"], s["labels"], s["ious"],
                               num_classes, cfg.bbox, float(s["pool_scale"]))
    regs.save(work.bbox)


def train_detector(cfg: DetectorConfig, work: WorkDir, dataset: Dataset, device: torch.device,
                   workers: int, resume: bool, progress: bool = True,
                   checkpoint_every: int = CHECKPOINT_EVERY, pretrained_trunk: Path | None = None,
                   d: Dist = SINGLE, meter: StageMeter | None = None,
                   untrained: Sequence[str] = ()) -> None:
    """Run every stage not yet done for ``cfg`` on the training split ``dataset``.

    ``meta.json``'s ``stages_done`` is always a prefix of :data:`TRAIN_STAGES`, written (atomically)
    only after the stage's output is complete. With ``resume`` a stage is skipped when it is listed
    and its output file exists; otherwise it and every later stage run again. Without ``resume``
    the list is cleared before anything else, so a run killed early never trusts an older run's
    files; a work dir trained by another version of the training code is trained again.

    ``pretrained_trunk``: the ZF-5 just pre-trained on crops (``features.pretrained=crops``); meta.json
    records the trunk file a work dir is trained from, by path and SHA-1 (``trunk_file``), so that it
    keeps using it whatever other runs pre-train in a shared cache, and refuses it if it changes.

    ``d``: in a torchrun job every rank calls this; proposals, conv5 maps, the fine-tuning pool5
    pass and the mining feature pass are sharded over the ranks by image, fine-tuning runs under
    DDP, SVM mining is shared by class, and rank 0 alone writes meta.json and the models and fits
    the box regressors (the other ranks return after the SVMs). Every stage decision is rank 0's,
    broadcast.

    ``meter`` records each stage's wall and CPU time (the stage table train_det prints); ``workers``
    are the processes for proposals and for fitting SVMs.

    ``untrained``: classes without a training object, left out (``data.class_counts.check_trainable``):
    they get no SVM, and meta.json lists them so that detection never reports them.
    """
    meter = meter or StageMeter()
    meta = d.broadcast(work.read_meta() if resume else {})
    team = d  # the ranks still working; rank 0 goes on alone after the SVMs

    def write_meta() -> None:
        if d.is_main:
            work.write_meta(meta)

    if meta and meta.get("training_version", 1) != TRAINING_VERSION:
        log.warning("%s was trained by version %s of the training code, this is version %d: training it again "
                    "(cached proposals and conv5 maps are reused)", work.root, meta.get("training_version", 1),
                    TRAINING_VERSION)
        meta = {}
        if d.is_main:
            work.finetune_ckpt.unlink(missing_ok=True)
    meta["training_version"] = TRAINING_VERSION
    if meta.get("torch_threads", torch.get_num_threads()) != torch.get_num_threads():
        log.warning("resuming with %d torch threads where the run began with %d: the model will differ from an "
                    "uninterrupted run's in its last bits (set OMP_NUM_THREADS=%d for the same)",
                    torch.get_num_threads(), meta["torch_threads"], meta["torch_threads"])
    done: list[str] = list(meta.get("stages_done", []))
    while done and done != list(TRAIN_STAGES[: len(done)]):
        done.pop()  # an unordered list (hand-edited?) keeps only its valid prefix
    meta.update({"classes": list(dataset.classes), "untrained_classes": list(untrained), **dataset_source(dataset),
                 "train_split": dataset.split,
                 "cache_dir": str(work.cache), "stages_done": done,
                 "torch_threads": torch.get_num_threads()})  # the model's last bits depend on it (docs/reliability.md)
    write_meta()

    def is_done(stage: str, *outputs: Path) -> bool:
        """Listed as done with its outputs present; if not, forget it and every later stage."""
        i = TRAIN_STAGES.index(stage)
        missing = team.broadcast([str(p) for p in outputs if not p.is_file()])
        if len(done) > i and not missing:
            return True
        if len(done) > i:
            log.warning("stage %s is listed as done but %s is missing; running it again", stage, missing[0])
            del done[i:]
            write_meta()
        return False

    def finish(stage: str) -> None:
        done.append(stage)
        write_meta()
        log.info("stage %s done", stage)

    weights = trunk_weights_file(cfg, work, meta.get("trunk_file"), pretrained_trunk)
    if weights is not None:  # the work dir names the trunk file it was trained from
        meta["trunk_file"] = {"path": str(weights.resolve()), "sha1": file_digest(weights)}
    trunk, info = build_network(cfg, device, weights)
    e2e = trains_trunk(cfg)
    if e2e and d.active:
        raise InputError("finetune.mode", "e2e fine-tuning runs in one process; torchrun shards fc-only "
                                          "fine-tuning only (run without torchrun)")
    if e2e:  # the conv layers are trained: the fixed blocks' output is what gets cached
        regions = make_regions(cfg.method, cfg.features, cfg.finetune.freeze_blocks, trunk, info, work.cache, device)
    else:
        source = make_source(cfg, trunk, info, work, device, cache_conv5=True)
    spp = cfg.method == "spp"
    maps = (regions if e2e else source).cache if spp else None
    # 1. proposals (per-image cache: an interrupted stage continues where it stopped); under
    # torchrun each rank does its shard of the images
    with meter.stage("proposals"):
        run = sharded_proposals(dataset.records, work.cache / "proposals", cfg.proposals, workers, progress, d)
    if run.failed:
        log.warning("skipping %d training images without proposals", len(run.failed))
        dataset = Dataset(dataset.root, dataset.split, dataset.classes,
                          tuple(r for r in dataset.records if r.image_id in run.boxes))
    meta["num_train_images"] = len(dataset.records)
    if not is_done("proposals"):
        finish("proposals")
    windows = [build_windows(r, run.boxes[r.image_id], dataset.num_classes) for r in dataset.records]
    # 2. conv5 maps (e2e: the fixed blocks' maps), once per image (per-image cache, continues too):
    # under torchrun each rank its shard
    if spp:
        with meter.stage("conv5"):
            sharded_conv5(maps, dataset.records, progress, d)
    if not is_done("conv5"):
        finish("conv5")
    # 3. fine-tuning (continues from its last checkpoint)
    head = new_head(cfg, info, dataset.num_classes, classifier_file(cfg, weights)).to(device)
    if is_done("finetune", work.head, *([work.trunk] if e2e else [])):
        load_module_state(head, work.head, "fine-tuned head", device)
        load_finetuned_trunk(cfg, work, trunk, device)
    else:
        with meter.stage("finetune"):
            if e2e:
                finetune_e2e(regions.trained, head, dataset.records, windows, regions, cfg.finetune, cfg.seed,
                             work.finetune_ckpt, progress, checkpoint_every)
                atomic_write(work.trunk, lambda f: torch.save(trunk.state_dict(), f))
            elif cfg.finetune.enabled:
                finetune(head, dataset.records, windows, source, cfg.finetune, cfg.seed, work.finetune_ckpt,
                         progress, checkpoint_every, d)
        if d.is_main:
            atomic_write(work.head, lambda f: torch.save(head.state_dict(), f))
        finish("finetune")
        if d.is_main:
            work.finetune_ckpt.unlink(missing_ok=True)  # head.pt (and trunk.pt) hold its result now
        d.barrier()  # head.pt is on disk for every rank (it keys the mining features)
    head.eval()
    if e2e:  # SVMs and box regressors on the fine-tuned trunk's conv5 (its own cache folder)
        source = make_source(cfg, trunk, info, work, device, cache_conv5=True)
        if cfg.method == "spp":
            with meter.stage("conv5 of the fine-tuned trunk"):
                sharded_conv5(source.cache, dataset.records, progress, d)
    # 4. SVMs with hard-negative mining (+ bbox-regression samples); restarts from its beginning
    if not is_done("svm", work.svms, work.bbox_samples):
        with meter.stage("svm"):
            entries = features_folder(work.root, cfg, work.head) if d.active else None
            if entries is not None:  # the feature pass sharded by image, then the mining by class
                sharded_feature_pass(cfg, entries, dataset.records, windows, source, head, d, progress)
            mine_svms(cfg, work, dataset, windows, source, head, progress, entries, d, workers, untrained)
        finish("svm")
        if entries is not None and d.is_main:
            shutil.rmtree(entries.parent, ignore_errors=True)  # svms.npz and bbox_samples.npz hold the result
    if isinstance(source, CachedRCNNSource):
        log.info("%s", source.summary())
    if not d.is_main:
        return  # the rest is rank 0's
    team = SINGLE
    # 5. bounding-box regression (seconds; restarts from its beginning)
    if not is_done("bbox", work.bbox):
        with meter.stage("bbox"):
            fit_bbox(cfg, work, dataset.num_classes)
        finish("bbox")
    if corrupt_entries_reported():
        log.warning("%d corrupt cache entries were found (each reported above) and recomputed",
                    corrupt_entries_reported())
