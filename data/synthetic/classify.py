"""The embedded classification set: one object with context per image, or background only.

SPP-net's first half trains classifiers on whole images of any size and aspect (ImageNet). Our
stand-in draws, per sample, ONE of the detection set's 12 shapes (``shapes.BASE_CLASSES``, also
for the 20-class preset; same renderer, fills, looks, backgrounds and distractors) with context
around it, at the object's OWN aspect ratio: the image is the object's box grown to a random scale
(the object spans 35-95 % of the image's side) with the object anywhere inside, so a tall arrow
gives a tall image and nothing is warped. A 13th class, ``background``, is the same recipe without
the object: its image size comes from a rendered (and discarded) random object, so the size and
aspect of an image say nothing about its class.

Images are drawn at the shorter side ``side`` (pixels; the tool picks 8/7 of the training crop,
ImageNet's 256 / 224), so every sample is a (side, W, 3) or (H, side, 3) uint8 RGB array.

Determinism and disjointness: sample i of split s is drawn from
``numpy.random.default_rng([seed, code_s, 3, i])`` alone, with split codes :data:`SPLIT_CODES`
that the detection generator (``data.synthetic.generate.SPLIT_CODES``) does not use, so no
classification image shares a random stream with a detection image, and train never shares one
with test. Labels cycle through the classes (sample i has label i mod 13, background first), so
every class has the same count.
"""

from __future__ import annotations

import cv2
import numpy as np

from data.synthetic.appearance import pick_look
from data.synthetic.backgrounds import make_background
from data.synthetic.generate import SPLIT_CODES as DETECTION_SPLIT_CODES
from data.synthetic.shapes import BASE_CLASSES as SHAPES
from data.synthetic.shapes import render, render_distractor
from data.synthetic.textures import make_fill

BACKGROUND_CLASS = "background"
CLASSES: tuple[str, ...] = (BACKGROUND_CLASS, *SHAPES)  # label 0 = background, shape k = k + 1
SPLIT_CODES = {"train": 10, "test": 11}
assert not set(SPLIT_CODES.values()) & set(DETECTION_SPLIT_CODES.values()), "streams must stay disjoint"
# The object's side over its image's, log-uniform: ImageNet's objects fill anything from a third of
# the photo to most of it, and multi-size training (SPP-net sec. 2.4) is about that variety of scale.
# The median (~0.58) is what a margin of 0.15-0.6 object sides on each side gave before (2026-12-07).
OBJECT_SHARE = (0.35, 0.95)
MAX_ASPECT = 3.0  # images are grown (more context) until longer / shorter side <= this


def _blend(canvas: np.ndarray, alpha: np.ndarray, fill: np.ndarray, x0: int, y0: int) -> None:
    """Alpha-blend (h, w) ``alpha`` x ``fill`` into ``canvas`` at (x0, y0), clipped to it (in place)."""
    H, W = canvas.shape[:2]
    h, w = alpha.shape
    ya, yb, xa, xb = max(y0, 0), min(y0 + h, H), max(x0, 0), min(x0 + w, W)
    if yb <= ya or xb <= xa:
        return
    a = alpha[ya - y0:yb - y0, xa - x0:xb - x0, None].astype(np.float32) / 255.0
    canvas[ya:yb, xa:xb] = a * fill[ya - y0:yb - y0, xa - x0:xb - x0] + (1 - a) * canvas[ya:yb, xa:xb]


def _frame(obj_hw: tuple[int, int], s: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(H, W, y0, x0): an image around an (h, w) object whose sides are the share ``s`` of the
    image's, anywhere inside it; aspect <= MAX_ASPECT (more context across a long thin object)."""
    h, w = obj_hw
    H, W = max(h / s, w / s / MAX_ASPECT), max(w / s, h / s / MAX_ASPECT)
    y0, x0 = rng.uniform(0, H - h), rng.uniform(0, W - w)
    return int(round(H)), int(round(W)), int(round(y0)), int(round(x0))


def draw_sample(label: int, side: int, rng: np.random.Generator, typicality: float = 0.0,
                object_share: tuple[float, float] = OBJECT_SHARE) -> np.ndarray:
    """One image of class ``CLASSES[label]`` at shorter side ``side``: (H, W, 3) uint8 RGB; the object
    takes one of its class's typical looks with probability ``typicality`` (as in the detection set)
    and spans a log-uniform ``object_share`` of the image's sides.

    Steps: 1. render the object (a random one for background) at ~1.3x the final size;
    2. frame it with random context; 3. background photo and 0-2 distractors; 4. paste the object
    (not for background); 5. sensor noise; 6. resize so that the shorter side is ``side``.
    """
    # 1. the object's share of the image's side (log-uniform), then the object, drawn ~1.3x larger
    # than it will be in the image and shrunk at the end (clean edges)
    shape = int(rng.integers(len(SHAPES))) if label == 0 else label - 1
    s = float(np.exp(rng.uniform(np.log(object_share[0]), np.log(object_share[1]))))
    alpha = render(shape, 1.3 * side * s * rng.uniform(0.8, 1.2), rng)
    # 2. the frame
    H, W, y0, x0 = _frame(alpha.shape, s, rng)
    # 3. background and clutter (distractors may lie under the object, as in the detection set)
    canvas = make_background((H, W), rng)
    for _ in range(int(rng.integers(0, 3))):
        d = render_distractor(min(H, W) * rng.uniform(0.2, 0.5), rng)
        _blend(canvas, d, make_fill(*d.shape, rng),
               int(rng.integers(-d.shape[1] // 3, W - d.shape[1] // 2)),
               int(rng.integers(-d.shape[0] // 3, H - d.shape[0] // 2)))
    # 4. the object itself
    if label != 0:
        _blend(canvas, alpha, make_fill(*alpha.shape, rng, pick_look(shape, typicality, rng)), x0, y0)
    # 5. a little sensor noise so that flat fills are not perfectly flat
    canvas += rng.normal(0, rng.uniform(0, 4), canvas.shape).astype(np.float32)
    image = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    # 6. shorter side = side
    scale = side / min(H, W)
    size = (max(side, int(round(W * scale))), max(side, int(round(H * scale))))  # cv2: (width, height)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def sample_label(index: int) -> int:
    """Label of sample ``index``: the classes in turn, background first (balanced)."""
    return index % len(CLASSES)


def sample_rng(split: str, index: int, seed: int) -> np.random.Generator:
    """The random stream of sample ``index`` of ``split`` (see the module's docstring)."""
    return np.random.default_rng([seed, SPLIT_CODES[split], 3, index])


def draw_split(split: str, count: int, side: int, seed: int, typicality: float = 0.0,
               object_share: tuple[float, float] = OBJECT_SHARE) -> list[tuple[np.ndarray, int]]:
    """The first ``count`` samples of ``split`` ("train" or "test"): [(image, label)]."""
    return [(draw_sample(sample_label(i), side, sample_rng(split, i, seed), typicality, object_share),
             sample_label(i)) for i in range(count)]
