"""Composing one synthetic image: background, objects and distractors pasted back to front.

Annotation rule (as VOC): the box is the VISIBLE extent of the object, i.e. the tight box of its
pixels that are inside the image and not covered by objects or distractors pasted above it.

* truncated = the object's full box crosses the image border;
* difficult = the object is tiny (square root of its visible box area < ``tiny_px``) or mostly
  hidden (more than ``hidden_frac`` of its pixels are covered or outside the image);
* an object with fewer than ``min_visible_px`` visible pixels is not annotated at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.synthetic.appearance import pick_look
from data.synthetic.backgrounds import make_background
from data.synthetic.shapes import render, render_distractor
from data.synthetic.textures import make_fill

DISTRACTOR = -1  # layer label of an unannotated distractor


@dataclass(frozen=True)
class ComposeConfig:
    """How objects are sized, placed and flagged (all sizes in pixels)."""

    min_size: float = 16.0  # smallest object's longer side (task brief: objects from ~16 px)
    max_size_frac: float = 0.7  # largest object's longer side / shorter image side (brief: ~70%)
    crowd_ref: int = 3  # beyond this many objects, the largest size shrinks as sqrt(crowd_ref / n)
    max_outside: float = 0.35  # an object may stick out of the image by this fraction of its size
    tiny_px: float = 20.0  # VOC marks very small objects difficult (brief: < ~20 px)
    hidden_frac: float = 0.6  # ... and mostly hidden ones (brief: > ~60 % occluded)
    min_visible_px: int = 12  # fewer visible pixels: the object is not in the image at all
    max_distractors: int = 3  # unannotated clutter objects per image, 0..max
    # VOC-like sizes and boxes (the voc07 preset); None = off, i.e. the log-uniform longer side
    # above and each shape's own aspect, randomly rotated (the small preset).
    rel_side_median: float | None = None  # median sqrt(box area) / sqrt(image area), log-normal
    rel_side_sigma: float = 0.0  # ... standard deviation of its log
    aspect_median: float | None = None  # median box width / height, log-normal
    aspect_sigma: float = 0.0  # ... standard deviation of its log
    max_stretch: float | None = None  # a shape is stretched toward its drawn box aspect by at most this
    upright: float | None = None  # None: any rotation; else a quarter turn tilted by at most this (deg)
    # Share of objects filled with one of their class's typical looks (data.synthetic.appearance),
    # the rest at random; 0: shape alone tells a class (no look is drawn at all).
    typicality: float = 0.0


@dataclass(frozen=True)
class Composed:
    """One composed image and its annotations (boxes (G, 4) 0-based x1, y1, x2, y2)."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    boxes: np.ndarray  # (G, 4) float32
    labels: np.ndarray  # (G,) int64
    difficult: np.ndarray  # (G,) bool
    truncated: np.ndarray  # (G,) bool


def _object_size(n: int, size: tuple[int, int], cfg: ComposeConfig, rng: np.random.Generator) -> float:
    top = cfg.max_size_frac * min(size) * min(1.0, np.sqrt(cfg.crowd_ref / max(n, 1)))
    top = max(top, cfg.min_size + 1)
    return float(np.exp(rng.uniform(np.log(cfg.min_size), np.log(top))))  # log-uniform, as scales are


def _object_box(n: int, size: tuple[int, int], cfg: ComposeConfig,
                rng: np.random.Generator) -> tuple[float, float | None]:  # fmt: skip
    """(size, box aspect) to render one of ``n`` layers with (see :func:`shapes.render`).

    Without VOC-like settings: (longer side, None), drawing exactly what earlier versions drew, so
    that the small preset's files stay byte-identical.
    """
    if cfg.rel_side_median is None or cfg.aspect_median is None:
        return _object_size(n, size, cfg, rng), None
    crowd = min(1.0, np.sqrt(cfg.crowd_ref / max(n, 1)))  # crowded scenes hold smaller objects
    rel = np.exp(rng.normal(np.log(cfg.rel_side_median), cfg.rel_side_sigma)) * crowd
    side = float(np.clip(rel, 0.0, 1.0) * np.sqrt(size[0] * size[1]))  # sqrt(box area), px
    aspect = float(np.exp(rng.normal(np.log(cfg.aspect_median), cfg.aspect_sigma)))
    return max(side, cfg.min_size), float(np.clip(aspect, 0.2, 5.0))


def _paste(canvas: np.ndarray, owner: np.ndarray, alpha: np.ndarray, fill: np.ndarray,
           x0: int, y0: int, layer: int) -> tuple[int, int]:  # fmt: skip
    """Alpha-blend ``fill`` at (x0, y0); returns (pixels inside the image, pixels in total)."""
    H, W = owner.shape
    h, w = alpha.shape
    ya, yb, xa, xb = max(y0, 0), min(y0 + h, H), max(x0, 0), min(x0 + w, W)
    inside = alpha > 127
    if yb <= ya or xb <= xa:
        return 0, int(inside.sum())
    a = alpha[ya - y0 : yb - y0, xa - x0 : xb - x0, None].astype(np.float32) / 255.0
    f = fill[ya - y0 : yb - y0, xa - x0 : xb - x0]
    canvas[ya:yb, xa:xb] = a * f + (1 - a) * canvas[ya:yb, xa:xb]
    owner[ya:yb, xa:xb][inside[ya - y0 : yb - y0, xa - x0 : xb - x0]] = layer
    return int(inside[ya - y0 : yb - y0, xa - x0 : xb - x0].sum()), int(inside.sum())


def compose(size: tuple[int, int], classes: list[int], rng: np.random.Generator,
            cfg: ComposeConfig = ComposeConfig()) -> Composed:  # fmt: skip
    """Draw one image of ``size`` = (height, width) holding one object per entry of ``classes``.

    Returns:
        the image and the annotations of the objects still visible, in back-to-front order.
    """
    H, W = size
    canvas = make_background(size, rng)
    owner = np.full((H, W), -1, np.int32)  # layer index that owns each pixel (-1: background)
    # 1. depth order: objects and distractors shuffled together
    layers = list(classes) + [DISTRACTOR] * int(rng.integers(0, cfg.max_distractors + 1))
    layers = [layers[i] for i in rng.permutation(len(layers))]
    placed = []  # (layer index, label, full box, total pixels)
    for idx, label in enumerate(layers):
        # 2. draw, fill and place each layer, possibly across the border
        s, aspect = _object_box(len(layers), size, cfg, rng)
        if label == DISTRACTOR:
            alpha = render_distractor(s, rng, aspect)
        else:
            alpha = render(label, s, rng, aspect, cfg.max_stretch, cfg.upright)
        h, w = alpha.shape
        x0 = int(rng.integers(-int(cfg.max_outside * w), max(W - int((1 - cfg.max_outside) * w), 0) + 1))
        y0 = int(rng.integers(-int(cfg.max_outside * h), max(H - int((1 - cfg.max_outside) * h), 0) + 1))
        look = None if label == DISTRACTOR else pick_look(label, cfg.typicality, rng)
        _, total = _paste(canvas, owner, alpha, make_fill(h, w, rng, look), x0, y0, idx)
        if label != DISTRACTOR:
            placed.append((idx, label, (x0, y0, x0 + w, y0 + h), total))
    # 3. annotate what is left visible of each object
    boxes, labels, difficult, truncated = [], [], [], []
    for idx, label, (bx0, by0, bx1, by1), total in placed:
        ya, yb, xa, xb = max(by0, 0), min(by1, H), max(bx0, 0), min(bx1, W)
        ys, xs = np.nonzero(owner[ya:yb, xa:xb] == idx) if yb > ya and xb > xa else ((), ())
        if len(ys) < cfg.min_visible_px:
            continue
        box = [xa + xs.min(), ya + ys.min(), xa + xs.max() + 1.0, ya + ys.max() + 1.0]
        tiny = np.sqrt((box[2] - box[0]) * (box[3] - box[1])) < cfg.tiny_px
        boxes.append(box)
        labels.append(label)
        difficult.append(bool(tiny or 1 - len(ys) / total > cfg.hidden_frac))
        truncated.append(bool(bx0 < 0 or by0 < 0 or bx1 > W or by1 > H))
    # 4. a little sensor noise so that flat fills are not perfectly flat
    canvas += rng.normal(0, rng.uniform(0, 4), canvas.shape).astype(np.float32)
    image = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    g = len(boxes)
    return Composed(image, np.asarray(boxes, np.float32).reshape(g, 4), np.asarray(labels, np.int64),
                    np.asarray(difficult, bool), np.asarray(truncated, bool))  # fmt: skip
