"""Whole-image classification scored as the papers score it: VOC 2007's classification task and
Caltech101's mean per-class accuracy over random splits (SPP-net sec. 3.2 and 3.3).

VOC 2007 (the devkit's ``VOCevalcls``), per class, numbered as the devkit does it:

1. image-level ground truth: an image is POSITIVE (1) for a class when it holds a non-difficult
   object of it, IGNORED (0) when its only objects of the class are difficult, NEGATIVE (-1)
   otherwise (the devkit's ``<class>_test.txt``);
2. images sorted by descending score with a STABLE sort (MATLAB's ``sort(-out)``), ties kept in
   split-file order;
3. tp = positives, fp = negatives, ignored images count as neither; rec = cumsum(tp) / #positives,
   prec = cumsum(tp) / (cumsum(tp) + cumsum(fp));
4. the 11-point AP of the VOC 2007 devkit, :func:`eval.voc_ap.voc07_ap` (the same loop as
   ``VOCevaldet``'s); mAP is the mean over the classes that have a positive image.

Caltech101 (sec. 3.3): per class, ``train_per_class`` images drawn at random for training and up
to ``test_per_class`` of the rest for testing (30 and 50 in the paper), 10 such splits; a split's
figure is the mean over classes of each class's accuracy (the usual Caltech101 measure, which does
not let a large class dominate), and the splits' figures are averaged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from data.records import ImageRecord
from eval.voc_ap import voc07_ap

POSITIVE, IGNORED, NEGATIVE = 1, 0, -1  # VOCevalcls's image-level ground truth
CALTECH_TRAIN_PER_CLASS = 30  # SPP-net sec. 3.3: "30 images per category for training"
CALTECH_TEST_PER_CLASS = 50  # "and up to 50 images per category for testing"
CALTECH_SPLITS = 10  # "We repeat 10 random splits and average the accuracy"


def image_labels(records: Sequence[ImageRecord], num_classes: int) -> np.ndarray:
    """(N, K) int8 image-level ground truth of N records: POSITIVE, IGNORED or NEGATIVE (step 1)."""
    out = np.full((len(records), num_classes), NEGATIVE, np.int8)
    for i, record in enumerate(records):
        out[i, np.unique(record.labels[record.difficult])] = IGNORED
        out[i, np.unique(record.labels[~record.difficult])] = POSITIVE  # a non-difficult object wins
    return out


def classification_ap(scores: np.ndarray, truth: np.ndarray) -> float | None:
    """VOC 2007 classification AP of one class (steps 2-4).

    Args:
        scores: (N,) one score per image.
        truth: (N,) POSITIVE / IGNORED / NEGATIVE per image (:func:`image_labels`'s column).
    Returns:
        the 11-point AP, or None when no image is positive (the class has no AP).
    """
    npos = int(np.sum(truth == POSITIVE))
    if npos == 0:
        return None
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    tp = np.cumsum(truth[order] == POSITIVE)
    fp = np.cumsum(truth[order] == NEGATIVE)
    recall = tp / npos
    # Before the first counted image MATLAB's precision is 0/0 = NaN, which its max skips; 0 gives
    # the same maxima because a precision is never below 0 (as eval.voc_ap does).
    precision = np.divide(tp, tp + fp, out=np.zeros(len(tp)), where=(tp + fp) > 0)
    return voc07_ap(recall, precision)


def voc_classification(scores: np.ndarray, truth: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """{class: AP} of the classes with a positive image; ``scores`` and ``truth`` are (N, K)."""
    aps = {c: classification_ap(scores[:, k], truth[:, k]) for k, c in enumerate(classes)}
    return {c: ap for c, ap in aps.items() if ap is not None}


def per_class_accuracy(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(K,) accuracy of each class over its (N,) test images; NaN for a class with none."""
    out = np.full(num_classes, np.nan)
    for k in range(num_classes):
        mine = labels == k
        if mine.any():
            out[k] = float(np.mean(predicted[mine] == k))
    return out


def mean_class_accuracy(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """Mean over the classes present in ``labels`` of their accuracy (Caltech101's measure)."""
    return float(np.nanmean(per_class_accuracy(predicted, labels, num_classes)))


def random_split(
    labels: np.ndarray, train_per_class: int, test_per_class: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """One Caltech101-style split: per class, ``train_per_class`` random images to train on and up
    to ``test_per_class`` of the others to test on.

    Args:
        labels: (N,) class ids.
        seed: the split's seed; the same seed gives the same split.
    Returns:
        sorted (N_train,) and (N_test,) indices into ``labels``.
    Raises:
        ValueError: a class has no image left to test on (fewer than train_per_class + 1).
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for k in np.unique(labels):
        mine = np.flatnonzero(labels == k)
        if len(mine) <= train_per_class:
            raise ValueError(f"class {k} has {len(mine)} images; {train_per_class} to train on leave none to test")
        mine = mine[rng.permutation(len(mine))]
        train.append(mine[:train_per_class])
        test.append(mine[train_per_class : train_per_class + test_per_class])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
