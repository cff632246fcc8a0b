"""Real photographs shipped by installed packages: backgrounds and texture sources, no download.

scikit-image ships a handful of photos (astronaut, coffee, chelsea, ...) and three grey texture
photos (brick, grass, gravel); scikit-learn ships two (china, flower). They are loaded once per
process and reduced so that the longer side is at most :data:`MAX_SIDE` (crops stay fast).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

# Colour and grey photos used as backgrounds and as patches inside objects. Order matters: the
# generator indexes this tuple, so changing it changes every generated dataset.
PHOTO_NAMES: tuple[str, ...] = (
    "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
    "coins", "camera", "retina", "china", "flower",
)  # fmt: skip
# Grey photos of natural textures, tinted when used as an object's fill.
TEXTURE_NAMES: tuple[str, ...] = ("brick", "grass", "gravel")
MAX_SIDE = 700  # px; the largest synthetic image side is 500, crops are resized anyway


def _load(name: str) -> np.ndarray:
    # Imported here: scikit-image and scikit-learn take a second to import, and a tool that only
    # checks whether a dataset already exists should not pay for that.
    import skimage.data
    from sklearn.datasets import load_sample_images

    if name in ("china", "flower"):
        images = load_sample_images()
        img = images.images[[f.endswith(f"{name}.jpg") for f in images.filenames].index(True)]
    else:
        img = getattr(skimage.data, name)()
    img = np.ascontiguousarray(img[..., :3]) if img.ndim == 3 else np.ascontiguousarray(img)
    scale = MAX_SIDE / max(img.shape[:2])
    if scale < 1:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return img


@functools.cache
def photos() -> tuple[np.ndarray, ...]:
    """The photos of :data:`PHOTO_NAMES` as (H, W, 3) uint8 RGB (grey ones replicated)."""
    out = []
    for name in PHOTO_NAMES:
        img = _load(name)
        out.append(np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img)
    return tuple(out)


@functools.cache
def textures() -> tuple[np.ndarray, ...]:
    """The texture photos of :data:`TEXTURE_NAMES` as (H, W) uint8 grey."""
    return tuple(_load(name) for name in TEXTURE_NAMES)


def random_crop(rng: np.random.Generator, img: np.ndarray, size: tuple[int, int],
                min_frac: float = 0.25) -> np.ndarray:  # fmt: skip
    """A random crop of ``img`` with the aspect of ``size`` resized to ``size`` = (height, width).

    The crop covers between ``min_frac`` and all of the largest window of that aspect, so the
    same photo appears at many scales; it is mirrored half of the time.
    """
    out_h, out_w = size
    h, w = img.shape[:2]
    full = min(h / out_h, w / out_w)  # scale of the largest window with the output's aspect
    frac = rng.uniform(min_frac, 1.0)
    ch, cw = max(2, int(out_h * full * frac)), max(2, int(out_w * full * frac))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = img[y0 : y0 + ch, x0 : x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    interp = cv2.INTER_AREA if ch > out_h else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(crop), (out_w, out_h), interpolation=interp)
