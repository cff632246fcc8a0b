"""Plain data that travels between stages, as frozen dataclasses.

Boxes everywhere are float arrays of shape (R, 4) in (x1, y1, x2, y2), continuous 0-based pixel
coordinates of the ORIGINAL image (width = x2 - x1). Sizes are (height, width). Class ids are
0..K-1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ImageRecord:
    """One annotated image.

    Attributes:
        image_id: the id used in split files and result files (VOC: the file stem).
        path: the image file.
        size: (height, width) in pixels.
        boxes: (G, 4) float32 ground-truth boxes, 0-based x1, y1, x2, y2.
        labels: (G,) int64 class ids in 0..K-1.
        difficult: (G,) bool, VOC "difficult" (COCO: iscrowd).
        truncated: (G,) bool, VOC "truncated".
    """

    image_id: str
    path: Path
    size: tuple[int, int]
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    truncated: np.ndarray

    @property
    def num_objects(self) -> int:
        return int(self.boxes.shape[0])


@dataclass(frozen=True)
class Dataset:
    """A split of a dataset: its class names and its image records in split-file order."""

    root: Path
    split: str
    classes: tuple[str, ...]
    records: tuple[ImageRecord, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def by_id(self) -> dict[str, ImageRecord]:
        return {r.image_id: r for r in self.records}


@dataclass(frozen=True)
class Detections:
    """Detections for one image.

    Attributes:
        boxes: (R, 4) float32, 0-based x1, y1, x2, y2 in original image pixels.
        scores: (R,) float32, higher is more confident.
        labels: (R,) int64 class ids in 0..K-1.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.scores.shape[0])
