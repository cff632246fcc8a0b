"""VOC 2007's classification AP (VOCevalcls) against a slow reference, the image-level label rule,
and Caltech101's mean per-class accuracy over random splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data.records import ImageRecord
from eval.image_classification import (
    IGNORED,
    NEGATIVE,
    POSITIVE,
    classification_ap,
    image_labels,
    mean_class_accuracy,
    random_split,
    voc_classification,
)


def slow_classification_ap(scores, truth):
    """VOCevalcls.m (VOC 2007 devkit) line by line: sort(-out), tp / fp, 11-point loop with MATLAB's
    max, which skips NaN (0/0 precision before the first counted image)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # Python's sort is stable, as MATLAB's
    tp = fp = 0
    recall, precision = [], []
    npos = sum(1 for t in truth if t > 0)
    for i in order:
        tp += truth[i] > 0
        fp += truth[i] < 0
        recall.append(tp / npos)
        precision.append(tp / (tp + fp) if tp + fp else float("nan"))
    ap = 0.0
    for k in range(11):
        t = k * 0.1 if k <= 5 else 1 - (10 - k) * 0.1  # MATLAB's 0:0.1:1
        reached = [p for r, p in zip(recall, precision) if r >= t and p == p]
        ap += (max(reached) if reached else 0.0) / 11
    return ap


def test_ap_of_a_hand_made_case():
    # Ranked: + - + (0) - + -; the tie at 0.8 keeps file order (the negative first), the ignored
    # image counts as nothing. Precision at recall 1/3: 1; at 2/3: 2/3; at 1: 0.6.
    scores = np.array([0.9, 0.8, 0.8, 0.7, 0.3, 0.2, 0.1])
    truth = np.array([POSITIVE, NEGATIVE, POSITIVE, IGNORED, NEGATIVE, POSITIVE, NEGATIVE])
    by_hand = (4 * 1.0 + 3 * (2 / 3) + 4 * 0.6) / 11
    assert classification_ap(scores, truth) == pytest.approx(by_hand, abs=1e-12)
    assert slow_classification_ap(scores, truth) == pytest.approx(by_hand, abs=1e-12)
    swapped = truth.copy()
    swapped[[1, 2]] = swapped[[2, 1]]  # the tie broken the other way: another AP
    assert classification_ap(scores, swapped) != pytest.approx(by_hand)


def test_ap_equals_the_slow_reference_on_random_cases_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 30))
        scores = np.round(rng.normal(size=n), 1)  # coarse: many ties
        truth = rng.choice([POSITIVE, IGNORED, NEGATIVE], n, p=[0.3, 0.1, 0.6])
        if not (truth == POSITIVE).any():
            assert classification_ap(scores, truth) is None
            continue
        assert classification_ap(scores, truth) == pytest.approx(slow_classification_ap(scores, truth), abs=1e-12)


def _record(labels, difficult):
    g = len(labels)
    return ImageRecord(
        "x",
        Path("x.jpg"),
        (10, 10),
        np.zeros((g, 4), np.float32),
        np.array(labels, np.int64),
        np.array(difficult, bool),
        np.zeros(g, bool),
    )


def test_an_image_is_positive_only_for_a_non_difficult_object():
    records = [
        _record([0, 1, 1], [False, True, False]),  # class 1: difficult AND non-difficult -> positive
        _record([1, 2], [True, True]),  # difficult-only classes: ignored, not positive
        _record([], []),
    ]
    assert image_labels(records, 4).tolist() == [[1, 1, -1, -1], [-1, 0, 0, -1], [-1, -1, -1, -1]]


def test_voc_classification_leaves_out_classes_without_positives():
    truth = np.array([[1, -1], [-1, 0]], np.int8)
    aps = voc_classification(np.array([[0.9, 0.1], [0.1, 0.2]]), truth, ["a", "b"])
    assert aps == {"a": 1.0}


def test_mean_class_accuracy_weighs_classes_not_images():
    labels, predicted = np.array([0, 0, 0, 1]), np.array([0, 1, 1, 1])
    assert mean_class_accuracy(predicted, labels, 3) == pytest.approx((1 / 3 + 1) / 2)  # 0.5 per image


def test_random_splits_are_per_class_disjoint_and_seeded():
    labels = np.repeat([0, 1, 2], [5, 8, 3])
    train, test = random_split(labels, 2, 4, seed=7)
    assert np.bincount(labels[train]).tolist() == [2, 2, 2] and np.bincount(labels[test]).tolist() == [3, 4, 1]
    assert not set(train) & set(test)
    again = random_split(labels, 2, 4, seed=7)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    assert not np.array_equal(train, random_split(labels, 2, 4, seed=8)[0])
    with pytest.raises(ValueError, match="class 2 has 3 images"):
        random_split(labels, 3, 4, seed=0)
