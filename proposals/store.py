"""Proposals for a whole split: one cache entry per image, computed by worker processes.

Layout: ``cache_dir/<mode>-<params_key>/<image_id>.npz``, the key hashing the config, the cache
version and OpenCV's version. Each entry holds ``boxes`` (R, 4) float32, ``image_hash`` (SHA-1 of
the image file's bytes), ``image_size`` (2,) (height, width) and ``seconds`` (compute time; NaN
for imported boxes). An entry is used only when it loads, its hash matches the image file and its
size matches the record; otherwise it is recomputed (a corrupt one is reported once). Entries are
written atomically as each image finishes, so an interrupted run (Ctrl-C) resumes where it stopped.

Runs sharing ``cache_dir`` compute each image once: the parent claims an entry (``data.claims``)
just before handing its image to a worker and releases it once the entry is written; images that
another run has claimed are skipped, then waited for and taken from its entries at the end.

Workers (``proposals.workers``) only run OpenCV and return rects; clipping, filtering and writing
happen in the parent.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data.cache import ArraySpec, file_digest, load_arrays, params_key, save_arrays
from data.claims import Claim, try_claim, wait_for
from data.images import size_mismatch
from data.progress import track
from data.records import ImageRecord
from data.safe_input import check_name
from proposals.config import CACHE_VERSION, ProposalConfig
from proposals.mat import read_mat_proposals
from proposals.selective_search import RawProposals, filter_boxes, rects_to_boxes
from proposals.workers import run_tasks

log = logging.getLogger(__name__)

ENTRY_LAYOUT = {"boxes": ArraySpec(("R", 4), "f"), "image_hash": ArraySpec((), "U"),
                "image_size": ArraySpec((2,), "iu"), "seconds": ArraySpec((), "f")}


@dataclass(frozen=True)
class ProposalRun:
    """Proposals of a set of images.

    Attributes:
        boxes: image id -> (R, 4) float32 boxes (x1, y1, x2, y2), ranked, in record order.
        failed: image id -> one-line reason, for the images that could not be processed.
        seconds_per_image: mean compute seconds of the images computed in this run, or (when all
            came from the cache) of those recorded in the cache entries; NaN when unknown.
        computed: ids of the images computed (or imported) in this run, not loaded from cache.
        images_per_second: throughput of this run's computation: images computed / wall-clock
            seconds from starting the workers to the last result written (with N workers about N
            times 1 / seconds_per_image); NaN when nothing was computed.
    """

    boxes: dict[str, np.ndarray]
    failed: dict[str, str]
    seconds_per_image: float
    computed: tuple[str, ...] = field(default=())
    images_per_second: float = math.nan


def cache_folder(cache_dir: Path, cfg: ProposalConfig) -> Path:
    """The folder of the entries of ``cfg``: cache_dir/<mode>-<params_key>."""
    return Path(cache_dir) / f"{cfg.mode}-{params_key(cfg.cache_params())}"


def _entry_path(folder: Path, image_id: str) -> Path:
    return folder / f"{check_name(image_id, folder, 'image id')}.npz"  # readers check ids too; a record built by hand may not be


def _load_valid(folder: Path, record: ImageRecord) -> tuple[np.ndarray, float] | None:
    """The cached (boxes, seconds) of ``record``, or None when missing, corrupt or stale."""
    entry = load_arrays(_entry_path(folder, record.image_id), ENTRY_LAYOUT, CACHE_VERSION)
    if entry is None:
        return None
    try:
        current = file_digest(record.path)
    except OSError:
        return None  # the image itself is unreadable: let the computation report it
    size = tuple(int(v) for v in entry["image_size"])
    stale = str(entry["image_hash"]) != current or size != tuple(record.size)
    if stale:
        log.info("cache entry of %s is stale (image changed); recomputing it", record.image_id)
        return None
    return entry["boxes"].astype(np.float32).reshape(-1, 4), float(entry["seconds"])


def _save(folder: Path, image_id: str, boxes: np.ndarray, image_hash: str, size: tuple[int, int],
          seconds: float) -> None:
    save_arrays(
        _entry_path(folder, image_id),
        version=CACHE_VERSION,
        boxes=boxes.astype(np.float32),
        image_hash=np.array(image_hash),
        image_size=np.array(size, dtype=np.int64),
        seconds=np.array(seconds, dtype=np.float64),
    )


def _store(record: ImageRecord, raw: RawProposals | None, error: str, folder: Path, cfg: ProposalConfig,
           boxes: dict[str, np.ndarray], failed: dict[str, str]) -> float | None:
    """Filter and cache one worker result; fills ``boxes`` / ``failed``; returns its seconds."""
    if raw is not None and raw.size != tuple(record.size):
        error = f"{record.path}: {size_mismatch(record.path, raw.size, tuple(record.size))}"
    if error or raw is None:
        log.warning("skipping image %s: %s", record.image_id, error)
        failed[record.image_id] = error
        return None
    out = filter_boxes(rects_to_boxes(raw.rects, raw.scale_xy), raw.size, cfg)
    _save(folder, record.image_id, out, raw.image_hash, raw.size, raw.seconds)
    boxes[record.image_id] = out
    return raw.seconds


def _compute(todo: list[ImageRecord], folder: Path, cfg: ProposalConfig, workers: int, progress: bool,
             boxes: dict[str, np.ndarray], failed: dict[str, str]) -> tuple[list[str], list[float], int]:
    """Compute and cache the proposals of ``todo`` that no other run computes (``data.claims``).

    Fills ``boxes`` / ``failed``. Returns the ids computed here, their seconds, and how many images
    were taken from entries that other runs wrote meanwhile.
    """
    by_id = {r.image_id: r for r in todo}
    computed: list[str] = []
    seconds: list[float] = []
    by_others = 0
    bar = track(total=len(todo), desc=f"proposals ({cfg.mode})", show=progress)
    while todo:
        busy: list[ImageRecord] = []
        claims: dict[str, Claim] = {}

        def claimed() -> Iterator[ImageRecord]:
            nonlocal by_others
            for record in todo:
                held = try_claim(_entry_path(folder, record.image_id))
                if held is None:  # another run is computing it: come back to it at the end
                    busy.append(record)
                elif (hit := _load_valid(folder, record)) is not None:  # written since we looked
                    held.release()
                    boxes[record.image_id], by_others = hit[0], by_others + 1
                    bar.update()
                else:
                    claims[record.image_id] = held
                    yield record

        # 1. the images nobody else is computing, each claimed until its entry is written
        try:
            for image_id, raw, error in run_tasks(claimed(), cfg, workers):
                spent = _store(by_id[image_id], raw, error, folder, cfg, boxes, failed)
                claims.pop(image_id).release()
                bar.update()
                if spent is not None:
                    computed.append(image_id)
                    seconds.append(spent)
        finally:
            for held in claims.values():
                held.release()
        # 2. wait for the others' claims (holding none of ours); compute what they did not write
        todo = []
        for record in busy:
            wait_for(_entry_path(folder, record.image_id), "proposals of")
            if (hit := _load_valid(folder, record)) is None:
                todo.append(record)
            else:
                boxes[record.image_id], by_others = hit[0], by_others + 1
                bar.update()
    bar.close()
    return computed, seconds, by_others


def _import_mat(todo: list[ImageRecord], folder: Path, cfg: ProposalConfig, boxes: dict[str, np.ndarray],
                failed: dict[str, str]) -> None:
    """Take the proposals of ``todo`` from ``cfg.mat_file`` (clipped, filtered, capped) and cache them."""
    assert cfg.mat_file is not None
    found = read_mat_proposals(Path(cfg.mat_file), [r.image_id for r in todo])
    for record in todo:
        if record.image_id not in found:
            failed[record.image_id] = f"{cfg.mat_file}: no proposals for image {record.image_id}"
            continue
        try:
            image_hash = file_digest(record.path)
        except OSError as err:
            failed[record.image_id] = f"{record.path}: cannot read image file ({err.strerror})"
            continue
        out = filter_boxes(found[record.image_id], tuple(record.size), cfg)
        _save(folder, record.image_id, out, image_hash, tuple(record.size), math.nan)
        boxes[record.image_id] = out


def ensure_proposals(records: Sequence[ImageRecord], cache_dir: Path, cfg: ProposalConfig, workers: int,
                     progress: bool = True) -> ProposalRun:
    """Proposals of every record: loaded from the cache when valid, otherwise computed and cached.

    Args:
        records: the images (duplicate ids are processed once).
        cache_dir: root of the proposal caches; entries go to cache_dir/<mode>-<key>/<id>.npz.
        cfg: the proposal config ("mat" mode imports from cfg.mat_file instead of computing).
        workers: worker processes for the computation (1 = in this process).
        progress: show tqdm progress bars.
    Returns:
        the boxes in record order, the failures, the mean seconds per image, the computed ids.
    """
    folder = cache_folder(cache_dir, cfg)
    unique = list({r.image_id: r for r in records}.values())
    # 1. load the valid entries
    boxes: dict[str, np.ndarray] = {}
    cached_seconds: list[float] = []
    todo: list[ImageRecord] = []
    for record in track(unique, desc="checking proposal cache", show=progress and len(unique) >= 100):
        hit = _load_valid(folder, record)
        if hit is None:
            todo.append(record)
        else:
            boxes[record.image_id] = hit[0]
            cached_seconds.append(hit[1])
    log.info("proposals: %d cached in %s, %d to compute", len(boxes), folder, len(todo))
    # 2. compute (or import) the rest
    failed: dict[str, str] = {}
    seconds: list[float] = []
    computed: list[str] = []
    by_others = 0
    images_per_second = math.nan
    if todo and cfg.mode == "mat":
        _import_mat(todo, folder, cfg, boxes, failed)
        computed = [r.image_id for r in todo if r.image_id in boxes]
    elif todo:
        start = time.perf_counter()
        done, seconds, by_others = _compute(todo, folder, cfg, workers, progress, boxes, failed)
        computed = [r.image_id for r in todo if r.image_id in set(done)]  # record order
        images_per_second = len(seconds) / (time.perf_counter() - start) if seconds else math.nan
    log.info("proposals cache: computed %d, reused %d (%d written by another run meanwhile)",
             len(computed), len(boxes) - len(computed), by_others)
    # 3. summary, in record order
    timed = [s for s in (seconds or cached_seconds) if not math.isnan(s)]
    spi = float(np.mean(timed)) if timed else math.nan
    ordered = {r.image_id: boxes[r.image_id] for r in unique if r.image_id in boxes}
    if failed:
        log.warning("proposals failed for %d of %d images: %s",
                    len(failed), len(unique), ", ".join(sorted(failed)))
    return ProposalRun(ordered, failed, spi, tuple(computed), images_per_second)
