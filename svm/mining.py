"""Hard-negative mining, as pure functions on one image and one class (R-CNN / SPP-net recipe).

A window is a *negative* of class k when its IoU with every ground truth of class k is below
``neg_overlap`` (0.3); ground-truth windows of other classes are negatives too, as in R-CNN's
sample_negative_features. A negative is *hard* when the current SVM scores it above
``hard_threshold`` (-1.0001, just below the margin -1). SPP-net (section 4.1) also removes a negative
that overlaps another negative by more than 70%; we apply that among the hard negatives of one
class in one image, greedily from the highest score down (ties: the earlier window first), so each
removed negative is near a harder one that is kept. Because the hard set is the top of that order,
de-duplicating the hard negatives gives the same result as de-duplicating all negatives first.
"""

from __future__ import annotations

import numpy as np
import torch

from data.boxes import as_tensor, batched_nms


def dedupe_negatives(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy suppression of windows overlapping a higher-scoring kept window by > ``iou_threshold``.

    Args:
        boxes: (M, 4) windows. scores: (M,) their scores; ties go to the earlier window.
        iou_threshold: a window with IoU strictly above this with a kept window is removed.
    Returns:
        (M',) int64 indices of the kept windows, ascending.
    """
    m = boxes.shape[0]
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    # Rank scores (m for the best, 1 for the worst) make NMS deterministic on ties, which are
    # common: before a class is first trained every window scores exactly 0.
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    rank = np.empty(m, dtype=np.float32)
    rank[order] = np.arange(m, 0, -1, dtype=np.float32)
    keep = batched_nms(as_tensor(boxes), torch.from_numpy(rank), torch.zeros(m, dtype=torch.long),
                       iou_threshold)
    return np.sort(keep.numpy().astype(np.int64))


def hard_negatives(
    scores: np.ndarray,
    overlaps: np.ndarray,
    boxes: np.ndarray,
    neg_overlap: float,
    hard_threshold: float,
    dedupe_iou: float,
) -> np.ndarray:
    """The hard negatives of one class in one image.

    Args:
        scores: (R,) the current SVM's scores of the image's windows for this class.
        overlaps: (R,) each window's best IoU with the ground truth of this class.
        boxes: (R, 4) the windows.
        neg_overlap: negatives have overlap < this. hard_threshold: hard if score > this.
        dedupe_iou: see :func:`dedupe_negatives`.
    Returns:
        (M,) int64 window indices, ascending.
    """
    idx = np.flatnonzero((overlaps < neg_overlap) & (scores > hard_threshold))
    return idx[dedupe_negatives(boxes[idx], scores[idx], dedupe_iou)]


def negatives_to_keep(scores: np.ndarray, evict_threshold: float, max_count: int) -> np.ndarray:
    """Which cached negatives survive a retraining: not easy, and at most ``max_count`` of them.

    R-CNN evicts the negatives the new model scores below ``evict_threshold`` (-1.2). Our memory
    cap then keeps the ``max_count`` highest-scoring ones (ties: the earlier); the ones it drops
    score below the others, and as long as fewer than ``max_count`` score above -1 no support
    vector is lost.

    Args:
        scores: (M,) the new model's scores of the cached negatives.
    Returns:
        (M',) int64 indices of the survivors, ascending.
    """
    idx = np.flatnonzero(scores >= evict_threshold)
    if idx.size > max_count:
        best = np.argsort(-scores[idx].astype(np.float64), kind="stable")[:max_count]
        idx = np.sort(idx[best])
    return idx
