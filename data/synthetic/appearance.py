"""Class-typical looks: why features pre-trained on ImageNet tell VOC's classes apart.

Real objects have typical looks (most buses are yellow or red, cats furry), and a network trained on
ImageNet sees colour and texture far more than outline (Geirhos et al., ICLR 2019). On VOC 2007 its
frozen features therefore carry most of the detector's signal (R-CNN, pool5 without fine-tuning:
44.2 of 58.5 mAP). A set whose every fill is random (``typicality`` 0, the shape-only case) tests
something else; this module gives each class a family of looks instead.

Each class has two looks: its own, and one it shares with the class it is most easily confused
with by shape (circle / ellipse, square / notched square, star5 / star6, ...), as cats and dogs share
fur. An object takes one of its class's two looks with probability ``typicality`` (its own one
more often) and a random fill otherwise, so that appearance is evidence, shape decides the rest, and confusable pairs
stay confusable. A look is a fill kind with fixed colours, period and photo; each object draws it
with jitter (hue, saturation, brightness, pattern scale and direction, texture crop).

Looks depend on the class alone, so the detection set and the classification set
(``data.synthetic.classify``) share them: our ZF-5 is
pre-trained on the looks it then detects, as ImageNet's classes overlap VOC's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from data.synthetic.shapes import BASE_CLASSES, CLASSES

LOOK_SEED = 0x5EED
# The look each class shares with its partner (by name), the pairs a shape alone confuses most.
SHARED_LOOK: dict[str, str] = {
    "circle": "round", "ellipse": "round", "ring": "hollow", "crescent": "hollow",
    "square": "boxy", "notched_square": "boxy", "star5": "spiky", "star6": "spiky",
    "hexagon": "polygon", "triangle": "polygon", "cross": "pointer", "arrow": "pointer",
    # the classes of 20-class sets only
    "pentagon": "gabled", "house": "gabled", "trapezoid": "tapered", "semicircle": "tapered",
    "chevron": "bent", "l_shape": "bent", "heart": "pointed", "drop": "pointed",
}  # fmt: skip
assert set(SHARED_LOOK) == set(CLASSES), "every class needs a shared look"


def _look_names(classes: tuple[str, ...]) -> tuple[str, ...]:
    return (*classes, *dict.fromkeys(SHARED_LOOK[c] for c in classes))


# Every look by name: the base classes' own, then their shared ones, then the same for the classes
# added after them (so that a look's place, and the base classes' looks, never change when classes
# are added). A look's kind and first colour follow from its place in this list, spread so that
# no two looks are alike: hues the golden angle apart, kinds in turn. Its second colour, pattern
# scale and texture photo are drawn from the same place.
LOOK_NAMES: tuple[str, ...] = (*_look_names(BASE_CLASSES), *_look_names(CLASSES[len(BASE_CLASSES):]))
LOOK_KINDS = ("solid", "stripes", "checker", "texture")  # textures.FILL_KINDS but the weakest (noise, photo)
OWN_SHARE = 0.9  # of the typical objects, those with their class's own look (the rest: the shared one)


@dataclass(frozen=True)
class Look:
    """A typical fill: its kind, two HSV colours (OpenCV ranges: hue 0..180), a pattern period in
    pixels and the texture photo it cuts from (an index into ``data.synthetic.photos.textures``)."""

    kind: str
    colours: tuple[tuple[float, float, float], tuple[float, float, float]]
    period: float
    source: int


def _draw_look(name: str) -> Look:
    """The look called ``name`` (a class name or a shared look's)."""
    j = LOOK_NAMES.index(name)
    rng = np.random.default_rng([LOOK_SEED, j])
    hue = (j * 0.618034 * 180) % 180
    first = (hue, rng.uniform(150, 255), rng.uniform(120, 255))
    second = ((hue + rng.uniform(45, 135)) % 180, rng.uniform(60, 255), rng.uniform(40, 255))
    return Look(LOOK_KINDS[j % len(LOOK_KINDS)], (first, second), float(rng.uniform(4, 12)), int(rng.integers(3)))


@functools.cache
def class_looks(class_id: int) -> tuple[Look, Look]:
    """(own look, shared look) of class ``CLASSES[class_id]``."""
    name = CLASSES[class_id]
    return _draw_look(name), _draw_look(SHARED_LOOK[name])


def pick_look(class_id: int, typicality: float, rng: np.random.Generator) -> Look | None:
    """One of the class's looks with probability ``typicality`` (its own with :data:`OWN_SHARE` of
    that), else None (a random fill). Draws nothing from ``rng`` when ``typicality`` is 0, so
    shape-only sets stay as they were."""
    if typicality <= 0 or rng.random() >= typicality:
        return None
    return class_looks(class_id)[0 if rng.random() < OWN_SHARE else 1]
