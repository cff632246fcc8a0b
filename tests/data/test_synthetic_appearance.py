"""Class-typical looks: fixed per class, shared by confusable pairs, drawn as often as asked."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from data.synthetic.appearance import SHARED_LOOK, Look, class_looks, pick_look
from data.synthetic.compose import ComposeConfig, compose
from data.synthetic.shapes import CLASSES
from data.synthetic.textures import make_fill


def test_looks_depend_on_the_class_alone_and_pairs_share_one():
    assert class_looks(3) == class_looks(3)
    for name, shared in SHARED_LOOK.items():
        partners = [c for c, s in SHARED_LOOK.items() if s == shared and c != name]
        assert len(partners) == 1
        a, b = CLASSES.index(name), CLASSES.index(partners[0])
        assert class_looks(a)[1] == class_looks(b)[1] and class_looks(a)[0] != class_looks(b)[0]


def test_typicality_zero_draws_nothing_and_one_always_a_look():
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    assert pick_look(0, 0.0, rng) is None and rng.bit_generator.state == before
    assert all(pick_look(0, 1.0, rng) in class_looks(0) for _ in range(20))
    share = np.mean([pick_look(0, 0.7, rng) is not None for _ in range(4000)])
    assert share == pytest.approx(0.7, abs=0.03)


def test_a_solid_look_is_drawn_near_its_hue():
    look = Look("solid", ((30.0, 200.0, 200.0), (120.0, 200.0, 200.0)), 8.0, 0)
    rng = np.random.default_rng(1)
    for _ in range(10):
        fill = make_fill(12, 12, rng, look)
        hue = cv2.cvtColor(np.clip(fill, 0, 255).astype(np.uint8)[None, 6:7, 6], cv2.COLOR_RGB2HSV)[0, 0, 0]
        assert abs(int(hue) - 30) <= 8  # +-6 of jitter, shading keeps the hue


def test_typical_objects_of_a_class_look_alike_random_ones_do_not():
    """Mean colour of the same class's objects: close with typicality 1, spread with 0."""
    def object_colours(typicality: float) -> np.ndarray:
        colours = []
        for i in range(40):
            c = compose((200, 200), [0], np.random.default_rng(i), ComposeConfig(max_distractors=0, typicality=typicality))
            if len(c.boxes):
                x1, y1, x2, y2 = c.boxes[0].astype(int)
                colours.append(c.image[y1:y2, x1:x2].reshape(-1, 3).mean(0))
        return np.array(colours)
    assert object_colours(1.0).std(0).mean() < 0.75 * object_colours(0.0).std(0).mean()
