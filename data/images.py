"""Reading images: one place that turns a file into an (H, W, 3) uint8 RGB array or a clear error."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from data.errors import InputError


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB.

    Returns:
        (H, W, 3) uint8 array, RGB order.
    Raises:
        InputError: the file is missing or cannot be decoded as an image.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "image file not found")
    # imdecode on the bytes rather than imread: it never prints libjpeg warnings on its own.
    buf = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if img is None:
        raise InputError(path, "cannot decode image (corrupt or not an image file)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
