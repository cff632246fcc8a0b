"""Builders shared by the eval tests, as fixtures (tests use --import-mode=importlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data.records import Detections, ImageRecord


def _record(image_id: str, boxes, labels, difficult=None, size=(100, 200)) -> ImageRecord:
    """An in-memory ground-truth record; boxes 0-based (G, 4)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    g = boxes.shape[0]
    diff = np.zeros(g, bool) if difficult is None else np.asarray(difficult, bool)
    labels = np.asarray(labels, np.int64).reshape(-1)
    return ImageRecord(image_id, Path(f"{image_id}.jpg"), size, boxes, labels, diff, np.zeros(g, bool))


def _dets(boxes, scores, labels) -> Detections:
    """In-memory detections; boxes 0-based (R, 4)."""
    return Detections(
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(scores, np.float32).reshape(-1),
        np.asarray(labels, np.int64).reshape(-1),
    )


@pytest.fixture
def make_record():
    return _record


@pytest.fixture
def make_dets():
    return _dets
