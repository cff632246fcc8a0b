"""Plain data that travels between stages, as frozen dataclasses.

Boxes everywhere are float arrays of shape (R, 4) in (x1, y1, x2, y2), continuous 0-based pixel
coordinates of the ORIGINAL image (width = x2 - x1). Sizes are (height, width). Class ids are
0..K-1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
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
        pixels: the image itself, (H, W, 3) uint8 RGB, when it is held in memory rather than read
            from ``path`` (an array handed to the Python API, :meth:`from_array`); None otherwise.
    """

    image_id: str
    path: Path
    size: tuple[int, int]
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    truncated: np.ndarray
    pixels: np.ndarray | None = None

    @property
    def num_objects(self) -> int:
        return int(self.boxes.shape[0])

    @classmethod
    def unannotated(cls, path: Path, size: tuple[int, int]) -> ImageRecord:
        """An image to detect on, without objects: its file and (height, width), e.g. ``image.shape[:2]``."""
        return cls(image_id=Path(path).stem, path=Path(path), size=(int(size[0]), int(size[1])),
                   boxes=np.zeros((0, 4), np.float32), labels=np.zeros(0, np.int64),
                   difficult=np.zeros(0, bool), truncated=np.zeros(0, bool))

    @classmethod
    def from_array(cls, image: np.ndarray, image_id: str = "image") -> ImageRecord:
        """An image to detect on, held in memory: (H, W, 3) uint8 RGB (as ``data.images.read_image`` gives)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {image.shape} {image.dtype}")
        return replace(cls.unannotated(Path(image_id), image.shape[:2]), pixels=image)


@dataclass(frozen=True)
class CocoIds:
    """Where a dataset read from a COCO json came from, and how our ids map back to its ids.

    Needed to write detections in COCO's results format, whose ids must be the json's own.

    Attributes:
        ann_file: the COCO json the dataset was read from.
        category_ids: (K,) the COCO category id of each class id 0..K-1.
        image_ids: our ``ImageRecord.image_id`` -> the COCO image id.
    """

    ann_file: Path
    category_ids: tuple[int, ...]
    image_ids: Mapping[str, int]


@dataclass(frozen=True)
class Dataset:
    """A split of a dataset: its class names and its image records in split-file order.

    ``root`` is the VOC "year" folder, or for a COCO json its image folder; ``coco`` is set only
    for a dataset read from a COCO json (see :class:`CocoIds`).
    """

    root: Path
    split: str
    classes: tuple[str, ...]
    records: tuple[ImageRecord, ...]
    coco: CocoIds | None = None

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
