"""Backgrounds: random crops of real photos with flips and colour jitter (never a plain colour)."""

from __future__ import annotations

import cv2
import numpy as np

from data.synthetic import photos


def jitter_colour(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast, saturation and per-channel gain; float32 in, float32 out."""
    grey = img.mean(axis=2, keepdims=True)
    img = grey + (img - grey) * rng.uniform(0.3, 1.4)  # saturation
    mean = float(img.mean())
    img = mean + (img - mean) * rng.uniform(0.6, 1.3)  # contrast
    img = img * rng.uniform(0.6, 1.3) * rng.uniform(0.85, 1.15, 3).astype(np.float32)  # brightness, tint
    return np.clip(img, 0, 255).astype(np.float32)


def make_background(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A background of ``size`` = (height, width): (H, W, 3) float32 RGB in 0..255."""
    pool = photos.photos()
    img = photos.random_crop(rng, pool[int(rng.integers(len(pool)))], size).astype(np.float32)
    if rng.random() < 0.2:
        img = img[::-1]  # upside down: photos are not the point, their clutter is
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(np.ascontiguousarray(img), (0, 0), rng.uniform(0.8, 2.5))
    return jitter_colour(np.ascontiguousarray(img), rng)
