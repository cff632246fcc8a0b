"""mAP per object size, against counts worked out by hand."""

import math

import pytest

from data.errors import InputError
from eval.size_bands import map_by_size
from tests.eval.test_threshold import dets, rec


def test_bands_by_hand():
    # class 0: a small (10 px) and a large (60 px) object; class 1: one medium (30 px) object
    records = [rec("a", [[0, 0, 10, 10], [20, 20, 80, 80]], [0, 0], [False, False]),
               rec("b", [[0, 0, 30, 40], [50, 50, 55, 55]], [1, 0], [False, True])]
    detections = {"a": dets([[20, 20, 80, 80], [0, 0, 10, 10]], [0.9, 0.8], [0, 0]),  # both class-0 objects
                  "b": dets([[60, 0, 90, 40]], [0.7], [1])}  # class 1 on nothing
    small, medium, large = map_by_size(detections, records, ("a", "b"), [20, 50])
    assert (small.low, small.high, medium.low, large.high) == (0, 20, 20, math.inf)
    # small: class 0's 10 px object found (the large hit is ignored, not a false positive); class 1 none
    assert small.num_objects == 1 and small.map == pytest.approx(1.0)
    # medium: class 1's object missed by its only detection -> 0; class 0 has none there (left out)
    assert medium.num_objects == 1 and medium.map == 0.0
    assert large.num_objects == 1 and large.map == pytest.approx(1.0)


def test_edges_must_increase():
    with pytest.raises(InputError, match="increasing"):
        map_by_size({}, [rec("a", [[0, 0, 10, 10]], [0], [False])], ("a",), [64, 32])
