"""Detecting every image of a split with an opened work dir, one cached entry per image.

The per-image detections go to WORK_DIR/detections/<split>-<key>/<image_id>.npz, where the key
hashes the resolved config and the trained model files, and each entry holds the SHA-1 of the image
it was computed from: an interrupted test run resumes, and neither a retrained model nor an image
replaced under the same id (a regenerated test set) ever reuses stale detections. In a torchrun
job the ranks share the images (i -> rank i % world) and rank 0 gathers the entries.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from data.cache import ArraySpec, file_digest, load_arrays, params_key, save_arrays
from data.errors import InputError
from data.progress import track
from data.records import Dataset, Detections, ImageRecord
from detection.features.rcnn_cache import CachedRCNNSource
from detection.inference.detect import detect_image
from detection.pipeline.sharded import sharded_proposals
from detection.runtime.config_io import config_to_dict
from detection.runtime.distributed import SINGLE, Dist
from detection.runtime.stopwatch import Stopwatch
from detection.workdir import Detector
from proposals.store import ensure_proposals

log = logging.getLogger(__name__)

DETECTIONS_VERSION = 2  # bump when what an entry stores changes (2: the image's digest)
_LAYOUT = {"boxes": ArraySpec(("R", 4), "f"), "scores": ArraySpec(("R",), "f"), "labels": ArraySpec(("R",), "iu"),
           "digest": ArraySpec((), "U")}


def model_key(detector: Detector) -> str:
    """Hash of the config and of every trained file that decides the detections."""
    work = detector.work
    digests = {p.name: file_digest(p) for p in (work.head, work.trunk, work.svms, work.bbox) if p.is_file()}
    return params_key({"config": config_to_dict(detector.cfg), "files": digests})


def detect_split(detector: Detector, dataset: Dataset, workers: int, progress: bool = True,
                 sw: Stopwatch | None = None, d: Dist = SINGLE) -> dict[str, Detections]:
    """Detections of every image of ``dataset`` in record order (images without proposals are skipped, warned).

    Selective search runs in ``workers`` processes, then each image is detected here. Detection of
    an image depends only on the image and its proposals, so the detections are the same whatever
    ``workers`` is.

    ``d``: in a torchrun job each rank detects its shard of the images (proposals too) into the
    per-image cache; then rank 0 reads every entry and returns them all, the other ranks {}.
    """
    if tuple(dataset.classes) != detector.classes:
        raise InputError(dataset.root, f"classes {list(dataset.classes)} differ from the {len(detector.classes)} "
                                       f"the detector was trained on ({detector.work.meta})")
    cfg, work = detector.cfg, detector.work
    folder = work.root / "detections" / f"{dataset.split}-{model_key(detector)}"
    if d.active:
        run = sharded_proposals(dataset.records, work.cache / "proposals", cfg.proposals, workers, progress, d)
        mine = d.shard([r for r in dataset.records if r.image_id in run.boxes])
        for record in track(mine, desc=f"detect {dataset.split}", show=progress and d.is_main):
            _detect_cached(detector, record, run.boxes[record.image_id], folder, sw)
        d.barrier()
        if not d.is_main:
            return {}
        out = {r.image_id: _detect_cached(detector, r, run.boxes[r.image_id], folder, sw)  # rank 0 reads them
               for r in dataset.records if r.image_id in run.boxes}
    else:
        run = ensure_proposals(dataset.records, work.cache / "proposals", cfg.proposals, workers, progress)
        todo = [r for r in dataset.records if r.image_id in run.boxes]
        out = {r.image_id: _detect_cached(detector, r, run.boxes[r.image_id], folder, sw)
               for r in track(todo, desc=f"detect {dataset.split}", show=progress)}
    log.info("detections of %d images in %s (%.1f per image)", len(out), folder,
             np.mean([len(det) for det in out.values()]) if out else 0.0)
    if isinstance(detector.source, CachedRCNNSource):
        log.info("%s", detector.source.summary())
    return out


def _detect_cached(detector: Detector, record: ImageRecord, proposals: np.ndarray, folder: Path,
                   sw: Stopwatch | None) -> Detections:
    """The detections of one image: from its cache entry when valid, else detected and cached."""
    path = folder / f"{record.image_id}.npz"
    digest = file_digest(record.path)
    cached = load_arrays(path, _LAYOUT, DETECTIONS_VERSION)
    if cached is not None and str(cached["digest"]) == digest:
        return Detections(cached["boxes"], cached["scores"], cached["labels"])
    rcnn = detector.source if isinstance(detector.source, CachedRCNNSource) else None
    computed = rcnn.computed if rcnn is not None else 0
    det = detect_image(record, proposals, detector.source, detector.model, detector.cfg.test, sw)
    if sw is not None and rcnn is not None and rcnn.computed == computed:
        sw.drop_image()  # R-CNN's vectors all read from its cache: a read is not R-CNN's test time
    elif sw is not None:
        sw.next_image()
    save_arrays(path, version=DETECTIONS_VERSION, boxes=det.boxes, scores=det.scores, labels=det.labels,
                digest=np.array(digest))
    return det
