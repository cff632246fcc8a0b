"""Fills for objects: colours, patterns, real-photo patches and shading.

Every fill is an (h, w, 3) float32 RGB array in 0..255: either a random one (kind, colours and
pattern drawn per object, so that colour and texture alone never identify a class) or a class's
typical look drawn with jitter (``data.synthetic.appearance``); a shading gradient is then applied
to mimic lighting.
"""

from __future__ import annotations

import cv2
import numpy as np

from data.synthetic import photos
from data.synthetic.appearance import Look

# Probability of each fill kind (solid, stripes, checker, smooth noise, photo patch, texture photo).
FILL_KINDS = ("solid", "stripes", "checker", "noise", "photo", "texture")
FILL_PROBS = (0.25, 0.15, 0.1, 0.15, 0.2, 0.15)


def random_colour(rng: np.random.Generator) -> np.ndarray:
    """An RGB colour (3,) float32; mixes saturated and muted colours through random HSV."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(40, 255), rng.uniform(50, 255)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _two_tone(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    a, b = random_colour(rng), random_colour(rng)
    return np.where(mask[..., None], a, b).astype(np.float32)


def _pattern_coords(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Pixel coordinates projected on a random direction, shape (h, w)."""
    angle = rng.uniform(0, np.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs * np.cos(angle) + ys * np.sin(angle), -xs * np.sin(angle) + ys * np.cos(angle)


def _fill_kind(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "solid":
        return np.broadcast_to(random_colour(rng), (h, w, 3)).astype(np.float32)
    if kind == "stripes":
        u, _ = _pattern_coords(h, w, rng)
        return _two_tone((u // rng.uniform(3, 12)) % 2 == 0, rng)
    if kind == "checker":
        u, v = _pattern_coords(h, w, rng)
        period = rng.uniform(4, 14)
        return _two_tone(((u // period) + (v // period)) % 2 == 0, rng)
    if kind == "noise":
        coarse = rng.random((int(rng.integers(2, 6)), int(rng.integers(2, 6)), 1)).astype(np.float32)
        t = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)[..., None]
        return (t * random_colour(rng) + (1 - t) * random_colour(rng)).astype(np.float32)
    if kind == "photo":
        pool = photos.photos()
        img = pool[int(rng.integers(len(pool)))]
        return photos.random_crop(rng, img, (h, w), min_frac=0.1).astype(np.float32)
    pool = photos.textures()
    grey = photos.random_crop(rng, pool[int(rng.integers(len(pool)))], (h, w), min_frac=0.1)
    return (grey.astype(np.float32)[..., None] / 255.0) * random_colour(rng) * 1.3


def shading(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A multiplicative lighting gradient (h, w, 1) float32 around 1 (linear or radial)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    strength = rng.uniform(0.0, 0.45)
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * np.pi)
        t = (xs - w / 2) * np.cos(angle) + (ys - h / 2) * np.sin(angle)
        t = t / max(1.0, float(np.abs(t).max()))  # -1..1 along the light direction
    else:  # a highlight, as on a rounded surface
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        t = 1 - 2 * np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2) / max(h, w)
    return (1 + strength * t)[..., None]


def _jittered(hsv: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    """A look's colour (OpenCV HSV) drawn again with a little hue, saturation and brightness jitter."""
    h, s, v = hsv
    jittered = [(h + rng.uniform(-4, 4)) % 180, np.clip(s * rng.uniform(0.85, 1.15), 0, 255),
                np.clip(v * rng.uniform(0.85, 1.15), 0, 255)]
    return cv2.cvtColor(np.array([[jittered]], np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _look_fill(look: Look, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """(h, w, 3) float32: ``look`` (one of ``appearance.LOOK_KINDS``) drawn once more: its colours
    jittered, its pattern at a random direction and +-25 % of its period, a random crop of its texture."""
    a, b = _jittered(look.colours[0], rng), _jittered(look.colours[1], rng)
    period = look.period * rng.uniform(0.8, 1.25)
    if look.kind == "solid":
        return np.broadcast_to(a, (h, w, 3)).astype(np.float32)
    if look.kind in ("stripes", "checker"):
        u, v = _pattern_coords(h, w, rng)
        on = (u // period) % 2 == 0 if look.kind == "stripes" else ((u // period) + (v // period)) % 2 == 0
        return np.where(on[..., None], a, b).astype(np.float32)
    pool = photos.textures()  # the one kind left: a tinted texture photo
    grey = photos.random_crop(rng, pool[look.source % len(pool)], (h, w), min_frac=0.1)
    return (grey.astype(np.float32)[..., None] / 255.0) * a * 1.3


def make_fill(h: int, w: int, rng: np.random.Generator, look: Look | None = None) -> np.ndarray:
    """A fill for an (h, w) object: (h, w, 3) float32 RGB in 0..255, shaded; ``look`` (a class's
    typical look, ``data.synthetic.appearance``) or, when None, a random one."""
    if look is not None:
        return np.clip(_look_fill(look, h, w, rng) * shading(h, w, rng), 0, 255)
    kind = FILL_KINDS[int(rng.choice(len(FILL_KINDS), p=FILL_PROBS))]
    fill = _fill_kind(kind, h, w, rng) * shading(h, w, rng)
    return np.clip(fill, 0, 255)
