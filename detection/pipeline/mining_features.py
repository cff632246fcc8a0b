"""The feature pass of hard-negative mining, sharded over the ranks of a torchrun job.

Mining itself is sequential over the images (each image is mined with the SVMs the earlier images
trained), but the classes never interact, so each rank mines its classes (k -> rank k % world)
over every image; what costs per image is the pass that turns every window into pool5 and
SVM-layer features. Each rank runs that pass for its images (i -> rank i % world) and writes one
entry per image, then every rank mines its classes reading the entries in the single-process order:

    WORK_DIR/mining_features/<key>/<image_id>.npz
        features   (R, D_layer) float32  SVM-layer features of every window (exactly what the
                   single-process pass computes and hands to the miner)
        near       (M,) int64            the windows kept as box-regression samples
        pool5_near (M, D) float16        their pool5 vectors
        digest     ()                    SHA-1 of the image file

The key hashes the config and the fine-tuned head's bytes, so a finished entry is reused by a
rerun of the same model (a killed rank loses only its unfinished images) and never by another.
The folder is deleted once the SVMs are saved. Float32 features take R x D_layer x 4 bytes per
image (VOC's 2,000 windows x fc7's 4,096: 33 MB; the whole split at once is the price of sharding).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from data.cache import ArraySpec, file_digest, load_arrays, params_key, save_arrays
from data.progress import track
from data.records import ImageRecord
from detection.config import DetectorConfig
from detection.features.spp_source import Pool5Source
from detection.models.head import FcHead
from detection.runtime.config_io import config_to_dict
from detection.runtime.distributed import Dist
from detection.training.windows import ImageWindows

log = logging.getLogger(__name__)

MINING_FEATURES_VERSION = 1
BBOX_SAMPLES_PER_IMAGE = 32  # proposals with IoU >= bbox.min_iou kept per image (bounds memory)
ENTRY_LAYOUT = {"features": ArraySpec(("R", None), "f"), "near": ArraySpec(("M",), "iu"),
                "pool5_near": ArraySpec(("M", None), "f"), "digest": ArraySpec((), "U")}


def layer_features(head: FcHead, pool5: torch.Tensor, layer: str) -> np.ndarray:
    """(R, D) pool5 -> (R, D_layer) float32 features of ``layer`` (no dropout)."""
    with torch.no_grad():
        return head.features(pool5.to(next(head.parameters()).device), layer).float().cpu().numpy()


def bbox_sample_rows(w: ImageWindows, min_iou: float, rng: np.random.Generator) -> np.ndarray:
    """(M,) proposals of one image kept as box-regression samples: up to BBOX_SAMPLES_PER_IMAGE of
    those with IoU >= ``min_iou`` (ground-truth windows excluded), drawn from ``rng``."""
    near = np.flatnonzero(((w.max_iou >= min_iou) & (w.gt_labels < 0)).numpy())
    return rng.choice(near, min(BBOX_SAMPLES_PER_IMAGE, near.size), replace=False) if near.size else near


def features_folder(root: Path, cfg: DetectorConfig, head_file: Path) -> Path:
    """Where the entries of this config and this fine-tuned head go."""
    key = params_key({"config": config_to_dict(cfg), "head": file_digest(head_file),
                      "version": MINING_FEATURES_VERSION})
    return Path(root) / "mining_features" / key


def load_entry(folder: Path, record: ImageRecord, digest: str | None = None) -> dict[str, np.ndarray] | None:
    """The entry of ``record``, None when missing, corrupt or of another image file."""
    entry = load_arrays(folder / f"{record.image_id}.npz", ENTRY_LAYOUT, MINING_FEATURES_VERSION)
    if entry is None or str(entry["digest"]) != (digest or file_digest(record.path)):
        return None
    return entry


def sharded_feature_pass(cfg: DetectorConfig, folder: Path, records: Sequence[ImageRecord],
                         windows: Sequence[ImageWindows], source: Pool5Source, head: FcHead, d: Dist,
                         progress: bool) -> None:
    """Write the entry of each of this rank's images that has no valid one; returns when all ranks are done.

    Every rank replays the box-regression draws of every image in order (the stream
    ``default_rng(cfg.seed)`` that the single-process miner uses), so the samples are the same.
    """
    rng = np.random.default_rng(cfg.seed)
    todo = 0
    for i, (record, w) in enumerate(zip(track(records, desc="mining features", show=progress), windows)):
        near = bbox_sample_rows(w, cfg.bbox.min_iou, rng)
        if d.owner(i) != d.rank:
            continue
        digest = file_digest(record.path)
        if load_entry(folder, record, digest) is not None:
            continue
        pool5 = source.pool5(record, w.boxes)  # (R, D)
        save_arrays(folder / f"{record.image_id}.npz", version=MINING_FEATURES_VERSION,
                    features=layer_features(head, pool5, cfg.svm_layer), near=np.asarray(near, np.int64),
                    pool5_near=pool5[near].cpu().numpy().astype(np.float16), digest=np.array(digest))
        todo += 1
    log.info("mining features: %d images computed on rank %d, %d reused", todo, d.rank,
             len(d.shard(records)) - todo)
    d.barrier()
