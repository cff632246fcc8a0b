"""Per-class linear SVMs trained with one pass of hard-negative mining (R-CNN rcnn_train.m, SPP-net 4.1).

The pass visits the training images once, in the given order, calling ``load_regions`` once per
image. For every image it:
  1. keeps the ground-truth windows of class k as positives of class k (GT only, the paper's recipe);
  2. scores all windows with the current SVMs; a class not trained yet has w = 0, b = 0, so all its
     negatives score 0 > -1.0001 and are hard: R-CNN's first-image bootstrap;
  3. caches, per class, the hard negatives (svm.mining.hard_negatives: IoU < 0.3 with the class's
     GT, score > -1.0001, de-duplicated at IoU > 0.7);
  4. retrains a class once ``retrain_every`` new negatives have been cached for it since its last
     training (counted per class, like R-CNN's caches{k}.num_added) and it has a positive, then
     evicts the negatives the new SVM scores below -1.2 and caps the cache (ours, below).
After the pass every class is retrained on all its positives and cached negatives.

Parallel work (``workers`` > 1). The classes due at one image, and the final K, are independent
fits: they run in worker processes (``svm.pool``) and are applied in class order, and the next
image's features are loaded while they run (they do not depend on the SVMs). Every fit sees the
inputs the serial pass gives it, so the SVMs are bit-identical to ``workers=1``'s.

numpy's BLAS runs on one thread during the pass. Its products here are small (scores, a fit's
checks), and OpenBLAS's idle threads spin for a while after each one, on the cores that
``load_regions`` (torch's threads, in this project) is waiting for: the main job's SVM stage took
77 s with two BLAS threads and 49 s with one on 2 cores, with the same SVMs bit for bit (CHANGELOG, history;
2026-12-04).

Memory bound. Let D be the feature length, K the classes, P the positives, R the most windows of
one image, E = retrain_every and Nc = max_negatives_per_class. A class caches at most
Nc + E + R negatives (a class without positives stops caching at Nc + E), the shared store holds
at most K (Nc + E + R) rows of D float32, the positives P rows, and one training run at most
(P_k + Nc + E + R) rows of about 28 bytes per entry (float32 matrix, sklearn's float64 copy,
liblinear's sparse copy). VOC 2007 trainval with SPP's 12,800-d pool5, K = 20, R = 2500,
P ~ 12,600, P_k <= 4,700: store <= 10.0 GiB, positives 0.6 GiB, training <= 5.1 GiB; about 16 GiB
in the worst case (no negative shared between classes); fc7 (4096-d) needs a third of that.
The store and the positives are held by one ``svm.row_store.RowStore``: in memory up to
``memory_budget`` bytes, in files of ``spill_dir`` past it, so that the memory they take is bounded
whatever the images; the rows read back are the rows written, so the SVMs are bit-identical to an
unbounded run's. The fits' transient copies (about 28 bytes per entry) are bounded by the cap and,
since at most ``workers`` fits are in flight and their copies held together stay within
``memory_budget`` too (``svm.pool``), by the budget: store + fits <= 2 x ``memory_budget``, one
fit larger than the budget running alone.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from data.errors import InputError
from data.progress import track
from svm.config import SVMConfig
from svm.mining import hard_negatives, negatives_to_keep
from svm.model import LinearSVMs
from svm.negative_cache import NegativeCache
from svm.pool import MIN_POOLED_ENTRIES, FitResult, SolverPool
from svm.regions import RegionSet, check_region_set
from svm.row_store import RowStore
from svm.solver import log_fit

log = logging.getLogger(__name__)


def train_svms(
    image_ids: Sequence[str],
    load_regions: Callable[[str], RegionSet],
    num_classes: int,
    cfg: SVMConfig,
    feature_scale: float,
    progress: bool = True,
    *,
    classes: Sequence[int] | None = None,
    workers: int = 1,
    min_pooled_entries: int = MIN_POOLED_ENTRIES,
    memory_budget: int | None = None,
    spill_dir: Path | None = None,
) -> LinearSVMs:
    """Train one linear SVM per class with one pass of hard-negative mining (see the module doc).

    Args:
        image_ids: the training images, in the order they are mined (deterministic).
        load_regions: image id -> its windows and raw features; called exactly once per image, in
            the order of ``image_ids`` (with ``workers`` > 1, while the previous image's fits run).
        num_classes: K.
        cfg: the recipe.
        feature_scale: multiplies every feature (svm.model.compute_feature_scale).
        progress: show a tqdm bar over the images.
        classes: mine and train only these classes (the others keep w = 0, b = 0). Classes never
            interact during mining, so each class comes out as a run over all classes gives it:
            the ranks of a distributed run each take some of the classes.
        workers: processes fitting classes at once (1: one after another, in this process); the
            result does not depend on it.
        min_pooled_entries: smaller fits run in this process (``svm.pool``).
        memory_budget: bytes the positives and the negative cache may take in memory (None: no
            bound), the rest going to ``spill_dir``, and the bytes the fits in flight may take; the
            result does not depend on it.
        spill_dir: a folder of this pass alone, deleted before and after it (None: a temporary one).
    Returns:
        the trained SVMs, weights (D, K), bias (K,).
    """
    if spill_dir is not None:
        shutil.rmtree(spill_dir, ignore_errors=True)  # a killed pass's files: this pass starts afresh
    with ExitStack() as stack:
        stack.enter_context(threadpool_limits(limits=1, user_api="blas"))
        pool = stack.enter_context(SolverPool(workers, min_pooled_entries, memory_budget))
        trainer = HardNegativeMiner(num_classes, cfg, feature_scale, classes, pool, memory_budget, spill_dir)
        stack.callback(trainer.close)
        regions = load_regions(image_ids[0]) if image_ids else None
        for i, image_id in enumerate(track(image_ids, desc="SVM hard-negative mining", show=progress)):
            assert regions is not None
            due = trainer.visit(i, image_id, regions, wait=False)
            # 1. the next image's features while this image's fits run, 2. then apply the fits
            regions = load_regions(image_ids[i + 1]) if i + 1 < len(image_ids) else None
            trainer.apply(due)
        return trainer.finish()


class HardNegativeMiner:
    """The state of one mining pass: the current SVMs, the positives and the negative cache."""

    def __init__(self, num_classes: int, cfg: SVMConfig, feature_scale: float,
                 classes: Sequence[int] | None = None, pool: SolverPool | None = None,
                 memory_budget: int | None = None, spill_dir: Path | None = None) -> None:
        if num_classes < 1:
            raise InputError("SVM training", f"num_classes must be >= 1, got {num_classes}")
        self.k, self.cfg, self.scale = num_classes, cfg, float(feature_scale)
        self.classes = list(range(num_classes)) if classes is None else sorted(set(classes))
        self.dim: int | None = None
        self.weights = np.zeros((0, num_classes), np.float32)  # (D, K) once D is known
        self.bias = np.zeros(num_classes, np.float32)
        self.num_pos = np.zeros(num_classes, np.int64)  # positives of class k: the store's ("pos", k)
        self.num_added = np.zeros(num_classes, np.int64)
        self.budget, self.spill_dir = memory_budget, spill_dir
        self.store = RowStore(0)
        self.cache = NegativeCache(num_classes, 0, self.store)
        self.capped = np.zeros(num_classes, bool)
        self.pool = pool or SolverPool(1)

    def close(self) -> None:
        """Delete the rows spilled to disk; logs how much was spilled."""
        if self.store.spills:
            log.info("SVM store: %d entries were spilled to disk (memory budget %.2f GiB)", self.store.spills,
                     (self.budget or 0) / 2**30)
        self.store.close()

    def visit(self, index: int, image_id: str, regions: RegionSet,
              wait: bool = True) -> list[tuple[int, Future[FitResult]]]:
        """Take the positives and the hard negatives of one image; retrain classes that are due.

        With ``wait=False`` the retraining is only started: the caller must pass the returned
        (class, fit) pairs to :meth:`apply` before the next visit.
        """
        check_region_set(regions, self.k, self.dim, f"regions of image {image_id}")
        if self.dim is None:
            self.dim = int(regions.features.shape[1])
            self.weights = np.zeros((self.dim, self.k), np.float32)
            self.store = RowStore(self.dim, self.budget, self.spill_dir)
            self.cache = NegativeCache(self.k, self.dim, self.store)
        x = regions.features.astype(np.float32) * np.float32(self.scale)  # (R, D)
        for k in self.classes:
            rows = np.flatnonzero(regions.gt_labels == k)
            if rows.size:
                self.store.append(("pos", k), x[rows])
                self.num_pos[k] += rows.size
        scores = x @ self.weights + self.bias  # (R, K)
        windows = [np.zeros(0, np.int64)] * self.k
        for k in self.classes:
            hard = hard_negatives(scores[:, k], regions.overlaps[:, k], regions.boxes,
                                  self.cfg.neg_overlap, self.cfg.hard_threshold, self.cfg.neg_dedupe_iou)
            windows[k] = hard if self.num_pos[k] else hard[: self._room(k)]
        self.num_added += np.asarray(self.cache.add(index, x, windows), np.int64)
        due = [k for k in self.classes if self.num_added[k] >= self.cfg.retrain_every and self.num_pos[k]]
        fits = [(k, self._start(k)) for k in due]
        if wait:
            self.apply(fits)
            return []
        return fits

    def _room(self, k: int) -> int:
        """How many negatives class k, which has no positive yet (so no SVM), may still add."""
        room = max(0, self.cfg.max_negatives_per_class + self.cfg.retrain_every - self.cache.count(k))
        if room == 0 and not self.capped[k]:
            self.capped[k] = True
            log.warning("class %d has no positive yet; its negative cache is full, skipping new ones", k)
        return room

    def _start(self, k: int) -> Future[FitResult]:
        """Start fitting class k on all its positives and cached negatives."""
        return self.pool.submit(self.store.get(("pos", k)), self.cache.features(k), self.cfg, f"class {k}")

    def apply(self, fits: Sequence[tuple[int, Future[FitResult]]], evict: bool = True) -> None:
        """Take the finished fits, in class order: new weights, then (``evict``) the cache's eviction."""
        for k, fit in fits:
            w, b, neg_scores, stats = fit.result()
            log_fit(f"class {k}", stats, self.cfg)
            self.weights[:, k], self.bias[k] = w, b
            self.num_added[k] = 0
            if evict:
                keep = negatives_to_keep(neg_scores, self.cfg.evict_threshold, self.cfg.max_negatives_per_class)
                if (neg_scores >= self.cfg.evict_threshold).sum() > keep.size:
                    log.warning("class %d: cache capped at %d negatives (memory guard)", k, keep.size)
                self.cache.keep(k, keep)
            log.info("class %d: %d negatives cached; store %d rows, %.2f GiB in memory, %.2f GiB on disk", k,
                     self.cache.count(k), self.cache.num_rows, self.store.ram_bytes / 2**30,
                     self.store.disk_bytes / 2**30)

    def finish(self) -> LinearSVMs:
        """Retrain every class on everything it holds and return the SVMs."""
        if self.dim is None:
            raise InputError("SVM training", "no training images were given")
        for k in self.classes:
            if not self.num_pos[k]:
                raise InputError("SVM training", f"class {k} has no ground-truth window (no positive)")
            if self.cache.count(k) == 0:
                raise InputError("SVM training", f"class {k} has no negative window (IoU < "
                                 f"{self.cfg.neg_overlap} with its ground truth)")
        self.apply([(k, self._start(k)) for k in self.classes], evict=False)
        return LinearSVMs(self.weights.copy(), self.bias.copy(), self.scale)
