"""The embedded classification set's drawing: deterministic, balanced, disjoint from detection."""

import numpy as np

from data.synthetic import classify
from data.synthetic.generate import SPLIT_CODES as DETECTION_CODES
from data.synthetic.shapes import BASE_CLASSES as SHAPES


def test_classes_are_background_then_the_detection_shapes():
    assert classify.CLASSES == ("background", *SHAPES)
    assert [classify.sample_label(i) for i in range(14)] == [*range(13), 0]


def test_split_codes_never_reuse_a_detection_stream():
    assert not set(classify.SPLIT_CODES.values()) & set(DETECTION_CODES.values())
    assert len(set(classify.SPLIT_CODES.values())) == len(classify.SPLIT_CODES)


def test_same_seed_same_pixels_and_shorter_side_is_side():
    a = classify.draw_sample(3, 40, np.random.default_rng([0, 10, 3, 5]))
    b = classify.draw_sample(3, 40, np.random.default_rng([0, 10, 3, 5]))
    c = classify.draw_sample(3, 40, np.random.default_rng([0, 11, 3, 5]))
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
    assert min(a.shape[:2]) == 40 and max(a.shape[:2]) <= 40 * classify.MAX_ASPECT + 1
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_draw_split_labels_and_images():
    samples = classify.draw_split("test", 13, 32, seed=1)
    assert [label for _, label in samples] == list(range(13))
    assert all(min(im.shape[:2]) == 32 for im, _ in samples)


def test_frame_keeps_aspect_within_limit():
    rng = np.random.default_rng(0)
    for hw in [(10, 200), (200, 10), (50, 60)]:
        H, W, y0, x0 = classify._frame(hw, 0.6, rng)
        assert max(H, W) / min(H, W) <= classify.MAX_ASPECT + 0.05
        assert 0 <= y0 and y0 + hw[0] <= H + 1 and 0 <= x0 and x0 + hw[1] <= W + 1


def test_objects_come_at_varied_scales_and_positions():
    """A square object spans its share of the image's side, anywhere inside it: small and large, left and right, over a few hundred frames."""
    rng = np.random.default_rng(0)
    lo, hi = classify.OBJECT_SHARE
    shares = np.exp(rng.uniform(np.log(lo), np.log(hi), 400))
    frames = np.array([classify._frame((100, 100), s, rng) for s in shares], float)
    spans = 100 / frames[:, 1]
    assert np.allclose(spans, shares, atol=0.01)
    assert spans.min() < 0.4 and spans.max() > 0.9
    centre = (frames[:, 3] + 50) / frames[:, 1]  # the object's centre across the image, 0..1
    assert centre.min() < 0.35 and centre.max() > 0.65
