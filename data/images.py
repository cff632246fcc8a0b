"""Reading images: one place that turns a file into an (H, W, 3) uint8 RGB array or a clear error.

OpenCV does the decoding, and :data:`cv2.IMREAD_COLOR` normalises the odd files real datasets
hold: grey, 16-bit (scaled to 8 bits), RGBA (alpha dropped) and CMYK JPEGs all come back as
8-bit RGB. A JPEG's EXIF orientation is applied, as every photo viewer does (a phone photo comes
out upright). An empty, truncated or non-image file, and a "decompression bomb" whose header declares
more pixels than OpenCV's guard allows (``CV_IO_MAX_IMAGE_PIXELS``, 2**30 by default; checked
before decoding), are an :class:`InputError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from data.errors import InputError
from data.records import ImageRecord


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
    if not buf.size:
        raise InputError(path, "image file is empty (0 bytes)")
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as err:
        if "CV_IO_MAX_IMAGE_PIXELS" in str(err):
            raise InputError(path, "image declares more pixels than CV_IO_MAX_IMAGE_PIXELS allows "
                             "(a decompression bomb?); refused before decoding") from None
        raise InputError(path, f"cannot decode image (OpenCV: {str(err).strip().splitlines()[-1]})") from None
    if img is None:
        raise InputError(path, "cannot decode image (corrupt or not an image file)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def record_image(record: ImageRecord) -> np.ndarray:
    """The image of ``record``: its pixels when it holds them (``ImageRecord.from_array``), else its file read."""
    return record.pixels if record.pixels is not None else read_image(record.path)


def size_mismatch(path: str | Path, size: tuple[int, int], expected: tuple[int, int]) -> str:
    """Why an image decoded at ``size`` (height, width) is not the ``expected`` size its annotation
    gives: one line, naming the EXIF orientation when that is what turned it."""
    text = f"image is {size[0]}x{size[1]} but its annotation says {expected[0]}x{expected[1]}"
    if tuple(size[::-1]) == tuple(expected):
        raw = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if raw is not None and tuple(raw.shape[:2]) == tuple(expected):
            text += (" (height x width): its EXIF orientation turns it, and the annotation was made on the "
                     "unturned pixels; save the image turned (e.g. mogrify -auto-orient) and annotate that")
    return text
