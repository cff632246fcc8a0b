"""Tiny images with coloured rectangles on a photo background, and their records."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from data.records import ImageRecord

# (x1, y1, x2, y2) continuous boxes of the rectangles painted into every test image (120 x 160).
RECTS = np.array([[20, 30, 70, 90], [90, 10, 150, 50], [100, 70, 140, 110]], np.float32)
COLOURS = ((230, 40, 40), (40, 200, 60), (40, 60, 230))


def make_image(variant: int, size: tuple[int, int] = (120, 160), rects: np.ndarray = RECTS) -> np.ndarray:
    """(H, W, 3) uint8 RGB: a crop of a real photo plus solid rectangles (pixels x1..x2-1)."""
    photo = skdata.astronaut() if variant % 2 == 0 else skdata.coffee()
    h, w = size
    y0, x0 = 40 * variant % 200, 30 * variant % 200
    img = cv2.resize(photo[y0 : y0 + 300, x0 : x0 + 400], (w, h), interpolation=cv2.INTER_AREA).copy()
    scale = np.array([w / 160, h / 120, w / 160, h / 120])
    for box, colour in zip(rects * scale, COLOURS):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        img[y1:y2, x1:x2] = colour
    return img


def write_image(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # PNG: lossless, so a test that rewrites an image changes its bytes only where intended.
    assert cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return path


def make_record(image_id: str, path: Path, size: tuple[int, int] = (120, 160),
                boxes: np.ndarray = RECTS, difficult: np.ndarray | None = None) -> ImageRecord:
    g = len(boxes)
    diff = np.zeros(g, bool) if difficult is None else np.asarray(difficult, bool)
    return ImageRecord(image_id, path, size, np.asarray(boxes, np.float32), np.zeros(g, np.int64), diff,
                       np.zeros(g, bool))


@pytest.fixture
def three_records(tmp_path: Path) -> list[ImageRecord]:
    return [make_record(f"im{i}", write_image(tmp_path / "images" / f"im{i}.png", make_image(i))) for i in range(3)]


# Helpers as fixtures: with --import-mode=importlib test files cannot import conftest directly.
@pytest.fixture(name="make_image")
def _make_image_fixture():
    return make_image


@pytest.fixture(name="write_image")
def _write_image_fixture():
    return write_image


@pytest.fixture(name="make_record")
def _make_record_fixture():
    return make_record


@pytest.fixture(name="rects")
def _rects_fixture() -> np.ndarray:
    return RECTS.copy()
