"""Object classes and distractors as anti-aliased alpha masks.

Each class draws a list of polygons in a unit frame (extent about [-1, 1]); a polygon with value
255 adds to the shape, one with value 0 cuts a hole or a notch. :func:`render` then stretches the
frame by the class's aspect range, rotates it (any angle, or upright: a quarter turn slightly
tilted), scales it so that the longer side of the result is the requested size (or, for VOC-like
boxes, stretches the rotated shape toward a requested box aspect, by at most a cap that keeps it
recognisable, and scales it to a requested sqrt of box area) and rasterises it with sub-pixel,
anti-aliased edges. Pairs meant to be easy to confuse: circle / ring / ellipse / hexagon, square /
notched_square, star5 / star6, triangle / arrow; among the 8 classes added for 20-class sets
(:data:`BASE_CLASSES` are the first 12, which every other set draws): pentagon / house (and
hexagon), trapezoid / semicircle (a flat base narrowing upward; semicircle / crescent too),
chevron / l_shape (a bent bar), heart / drop (round with one point).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Polys = list[tuple[np.ndarray, int]]  # [(points (P, 2) in the unit frame, 255 = add / 0 = cut)]


def _circle(r: float = 1.0, cx: float = 0.0, cy: float = 0.0, n: int = 64) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def _star(rng: np.random.Generator, points: int, inner: tuple[float, float]) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 2 * points, endpoint=False)
    r = np.where(np.arange(2 * points) % 2 == 0, 1.0, rng.uniform(*inner))
    r = r * rng.uniform(0.93, 1.07, 2 * points)  # hand-drawn irregularity
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


def _circle_cls(rng: np.random.Generator) -> Polys:
    return [(_circle(), 255)]


def _ring(rng: np.random.Generator) -> Polys:
    off = rng.uniform(-0.1, 0.1, 2)
    return [(_circle(), 255), (_circle(rng.uniform(0.3, 0.6), *off), 0)]


def _square(rng: np.random.Generator) -> Polys:
    return [(_rect(-1, -1, 1, 1), 255)]


def _notched_square(rng: np.random.Generator) -> Polys:
    half, depth = rng.uniform(0.2, 0.35), rng.uniform(0.3, 0.7)
    centre = rng.uniform(-0.3, 0.3)
    return [(_rect(-1, -1, 1, 1), 255), (_rect(centre - half, 1 - depth, centre + half, 1.5), 0)]


def _triangle(rng: np.random.Generator) -> Polys:
    t = np.deg2rad(np.array([90.0, 210.0, 330.0]) + rng.uniform(-12, 12, 3))
    r = rng.uniform(0.85, 1.15, 3)
    return [(np.stack([r * np.cos(t), r * np.sin(t)], 1), 255)]


def _hexagon(rng: np.random.Generator) -> Polys:
    t = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    r = rng.uniform(0.95, 1.05, 6)
    return [(np.stack([r * np.cos(t), r * np.sin(t)], 1), 255)]


def _cross(rng: np.random.Generator) -> Polys:
    a, b = rng.uniform(0.2, 0.4), rng.uniform(0.2, 0.4)
    return [(_rect(-1, -a, 1, a), 255), (_rect(-b, -1, b, 1), 255)]


def _crescent(rng: np.random.Generator) -> Polys:
    return [(_circle(), 255), (_circle(rng.uniform(0.75, 0.95), rng.uniform(0.35, 0.6), 0.0), 0)]


def _arrow(rng: np.random.Generator) -> Polys:
    shaft, head, neck = rng.uniform(0.12, 0.28), rng.uniform(0.45, 0.8), rng.uniform(0.0, 0.4)
    pts = [[-1, -shaft], [neck, -shaft], [neck, -head], [1, 0], [neck, head], [neck, shaft], [-1, shaft]]
    return [(np.array(pts, float), 255)]


def _pentagon(rng: np.random.Generator) -> Polys:
    t = np.deg2rad(-90.0) + np.linspace(0, 2 * np.pi, 5, endpoint=False)  # a vertex on top
    r = rng.uniform(0.95, 1.05, 5)
    return [(np.stack([r * np.cos(t), r * np.sin(t)], 1), 255)]


def _house(rng: np.random.Generator) -> Polys:
    """A square with a gable roof: a pentagon whose base corners are right angles."""
    eave, apex = rng.uniform(-0.35, 0.05), rng.uniform(-0.15, 0.15)
    return [(np.array([[-1, 1], [1, 1], [1, eave], [apex, -1], [-1, eave]], float), 255)]


def _trapezoid(rng: np.random.Generator) -> Polys:
    top, shift = rng.uniform(0.3, 0.6), rng.uniform(-0.15, 0.15)  # half the top side; its offset
    return [(np.array([[-1, 1], [1, 1], [shift + top, -1], [shift - top, -1]], float), 255)]


def _semicircle(rng: np.random.Generator) -> Polys:
    t = np.linspace(np.pi, 2 * np.pi, 33)
    return [(np.stack([np.cos(t), np.sin(t)], 1), 255)]


def _chevron(rng: np.random.Generator) -> Polys:
    t = rng.uniform(0.45, 0.7)  # the arms' width along x
    return [(np.array([[-1, -1], [0, 1], [1, -1], [1 - t, -1], [0, 1 - 1.6 * t], [-1 + t, -1]], float), 255)]


def _l_shape(rng: np.random.Generator) -> Polys:
    a, b = rng.uniform(0.45, 0.7), rng.uniform(0.45, 0.7)  # the two bars' widths
    return [(np.array([[-1, -1], [-1 + a, -1], [-1 + a, 1 - b], [1, 1 - b], [1, 1], [-1, 1]], float), 255)]


def _heart(rng: np.random.Generator) -> Polys:
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)  # the classic heart curve, extent ~[-1, 1]
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return [(np.stack([x, y], 1) / 16, 255)]


def _drop(rng: np.random.Generator) -> Polys:
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)  # a teardrop: round below, pointed on top
    m = rng.uniform(1.0, 2.0)  # the higher, the thinner the point
    return [(np.stack([np.sin(t) * np.sin(t / 2) ** m, -np.cos(t)], 1), 255)]


# name -> (polygon maker, aspect range: the unit frame's x is stretched by a factor in it). Append
# new classes at the end: a class id is its place here, and the first 12 are BASE_CLASSES.
_CLASS_DEFS: dict[str, tuple[Callable[[np.random.Generator], Polys], tuple[float, float]]] = {
    "circle": (_circle_cls, (0.9, 1.1)),
    "ring": (_ring, (0.9, 1.1)),
    "ellipse": (_circle_cls, (1.35, 2.3)),
    "square": (_square, (0.9, 1.1)),
    "notched_square": (_notched_square, (0.9, 1.3)),
    "triangle": (_triangle, (0.8, 1.4)),
    "hexagon": (_hexagon, (0.9, 1.1)),
    "star5": (lambda rng: [(_star(rng, 5, (0.38, 0.55)), 255)], (0.85, 1.15)),
    "star6": (lambda rng: [(_star(rng, 6, (0.45, 0.62)), 255)], (0.85, 1.15)),
    "cross": (_cross, (0.8, 1.25)),
    "crescent": (_crescent, (0.85, 1.2)),
    "arrow": (_arrow, (1.0, 1.8)),
    # 20-class sets only (data.synthetic.generate.SyntheticConfig.num_classes), as many as VOC's
    "pentagon": (_pentagon, (0.9, 1.1)),
    "house": (_house, (0.8, 1.2)),
    "trapezoid": (_trapezoid, (1.0, 1.5)),
    "semicircle": (_semicircle, (0.9, 1.1)),
    "chevron": (_chevron, (0.85, 1.25)),
    "l_shape": (_l_shape, (0.8, 1.25)),
    "heart": (_heart, (0.9, 1.1)),
    "drop": (_drop, (0.85, 1.1)),
}
CLASSES: tuple[str, ...] = tuple(_CLASS_DEFS)
# The classes of every set but the 20-class ones (the 12-class presets, the classification set of
# data.synthetic.classify): their images must not change when classes are added after them.
BASE_CLASSES: tuple[str, ...] = CLASSES[:12]
# Classes told apart by their own aspect alone: stretching a circle would draw an ellipse (and the
# reverse), so these are never stretched to a requested box aspect.
FIXED_ASPECT: frozenset[str] = frozenset({"circle", "ellipse"})


def _blob(rng: np.random.Generator) -> Polys:
    """An irregular amoeba: a circle whose radius wobbles with a few random harmonics."""
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    r = np.ones_like(t)
    for k in range(2, 6):
        r += rng.uniform(0.05, 0.2) * np.sin(k * t + rng.uniform(0, 2 * np.pi))
    return [(np.stack([r * np.cos(t), r * np.sin(t)], 1), 255)]


def _scribble(rng: np.random.Generator) -> Polys:
    """A thick zig-zag band: a polyline widened into a polygon outline."""
    xs = np.linspace(-1, 1, int(rng.integers(3, 7)))
    ys = rng.uniform(-1, 1, xs.size)
    half = rng.uniform(0.06, 0.15)
    top = np.stack([xs, ys - half], 1)
    bottom = np.stack([xs, ys + half], 1)[::-1]
    return [(np.concatenate([top, bottom]), 255)]


DISTRACTORS: tuple[Callable[[np.random.Generator], Polys], ...] = (_blob, _scribble)


def _rasterise(polys: Polys, size: float, rng: np.random.Generator, aspect: float,
               box_aspect: float | None = None, stretch: float = np.inf,
               upright: float | None = None) -> np.ndarray:  # fmt: skip
    """Rotate, (optionally) stretch and scale ``polys``, then draw them; see :func:`render`."""
    if upright is None:
        angle = rng.uniform(0, 2 * np.pi)
    else:  # a quarter turn (elongated shapes wide or tall), tilted by at most ``upright`` degrees
        angle = np.pi / 2 * rng.integers(4) + np.deg2rad(rng.uniform(-upright, upright))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = [(p * np.array([aspect, 1.0])) @ rot.T for p, _ in polys]
    adds = np.concatenate([p for p, (_, v) in zip(pts, polys) if v == 255])
    lo, hi = adds.min(0), adds.max(0)
    if box_aspect is None:
        scale = size / max(hi - lo)  # size = the longer side
    else:
        if stretch > 1:  # stretch x after the rotation, so that the BOX gets width / height = box_aspect
            factor = float(np.clip(box_aspect * (hi - lo)[1] / (hi - lo)[0], 1 / stretch, stretch))
            pts = [p * np.array([factor, 1.0]) for p in pts]
            lo, hi = lo * np.array([factor, 1.0]), hi * np.array([factor, 1.0])
        scale = size / np.sqrt(np.prod(hi - lo))  # size = sqrt of the box area
    margin = 2
    h, w = (np.ceil((hi - lo) * scale).astype(int) + 2 * margin)[::-1]
    canvas = np.zeros((h, w), np.uint8)
    shift = 4  # fillPoly's fixed-point bits: sub-pixel vertex positions
    for p, (_, value) in zip(pts, polys):
        q = np.round(((p - lo) * scale + margin) * (1 << shift)).astype(np.int32)
        cv2.fillPoly(canvas, [q], int(value), lineType=cv2.LINE_AA, shift=shift)
    return canvas


def _tight(alpha: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(alpha > 127)
    if ys.size == 0:
        return alpha
    return alpha[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def render(class_id: int, size: float, rng: np.random.Generator, box_aspect: float | None = None,
           max_stretch: float | None = None, upright: float | None = None) -> np.ndarray:
    """An object of class ``class_id``, randomly rotated.

    Args:
        size: without ``box_aspect``, the longer side of the object's box in px; with it, the
            square root of the box's area.
        box_aspect: if given, the rotated shape is stretched along x so that its box has this
            width / height (VOC-like boxes), except for the classes of :data:`FIXED_ASPECT`.
        max_stretch: if given, the stretch factor is clipped to [1 / max_stretch, max_stretch], so
            that a shape keeps its identity (a square stretched 3x is no square); the box then
            gets the aspect nearest ``box_aspect`` that this allows.
        upright: if given, the rotation is a random quarter turn tilted by at most this many
            degrees (objects stand upright, as in photos), not a uniform angle.
    Returns:
        (h, w) uint8 alpha mask (255 inside, anti-aliased edge), cropped to the shape's pixels.
    """
    name = CLASSES[class_id]
    make, aspect_range = _CLASS_DEFS[name]
    aspect = rng.uniform(*aspect_range)
    stretch = 1.0 if name in FIXED_ASPECT else max_stretch if max_stretch is not None else np.inf
    return _tight(_rasterise(make(rng), size, rng, aspect, box_aspect, stretch, upright))


def render_distractor(size: float, rng: np.random.Generator, box_aspect: float | None = None) -> np.ndarray:
    """An unlabelled distractor (blob or scribble), sized and stretched as :func:`render`; (h, w) uint8."""
    make = DISTRACTORS[int(rng.integers(len(DISTRACTORS)))]
    return _tight(_rasterise(make(rng), size, rng, rng.uniform(0.6, 1.6), box_aspect))
