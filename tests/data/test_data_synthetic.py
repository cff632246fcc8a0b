"""The synthetic benchmark: determinism, VOC layout, splits, flags, classes, shapes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from data.synthetic import BASE_CLASSES, CLASSES, generate
from data.synthetic.generate import _class_stream
from data.synthetic.shapes import render
from data.voc import load_voc, read_classes, read_split


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "a"
    generate(root, num_trainval=4, num_test=2, seed=0)
    return root


def test_same_seed_byte_identical_other_seed_differs(synth, tmp_path):
    generate(tmp_path / "b", num_trainval=4, num_test=2, seed=0)
    generate(tmp_path / "c", num_trainval=4, num_test=2, seed=1)
    a, b, c = files(synth), files(tmp_path / "b"), files(tmp_path / "c")
    assert a == b
    assert a.keys() == c.keys()
    assert a["JPEGImages/trainval_000000.jpg"] != c["JPEGImages/trainval_000000.jpg"]


def test_worker_processes_write_the_same_bytes(synth, tmp_path):
    """Images drawn in 2 worker processes (the CLI's default on 2 cores) are the serial run's files."""
    generate(tmp_path / "w", num_trainval=4, num_test=2, seed=0, workers=2)
    assert files(tmp_path / "w") == files(synth)


def test_images_do_not_depend_on_split_size(synth, tmp_path):
    generate(tmp_path / "small", num_trainval=2, num_test=1, seed=0)
    small = files(tmp_path / "small")
    for name in ("JPEGImages/trainval_000001.jpg", "Annotations/trainval_000001.xml", "JPEGImages/test_000000.jpg"):
        assert small[name] == files(synth)[name]


def test_voc_layout_splits_and_flags(synth):
    classes = read_classes(synth)
    assert classes == BASE_CLASSES and len(classes) >= 10  # the default config's
    train, val, trainval, test = (set(read_split(synth, s)) for s in ("train", "val", "trainval", "test"))
    assert train | val == trainval and not train & val and not trainval & test
    assert len(trainval) == 4 and len(test) == 2
    for split in ("trainval", "test"):
        ds = load_voc(synth, split)
        for rec in ds.records:
            h, w = rec.size
            assert max(h, w) == 500 and 1 <= rec.num_objects <= 8
            assert rec.difficult.dtype == bool and rec.truncated.dtype == bool
            assert (rec.boxes[:, :2] >= 0).all() and (rec.boxes[:, 2] <= w).all() and (rec.boxes[:, 3] <= h).all()
            assert (rec.boxes[:, 2:] > rec.boxes[:, :2]).all()
            assert rec.path.suffix == ".jpg" and rec.path.is_file()


def test_class_stream_is_balanced():
    for k in (len(BASE_CLASSES), len(CLASSES)):
        counts = Counter(_class_stream(0, "trainval", 10 * k + 5, k))
        assert set(counts) == set(range(k))
        assert max(counts.values()) - min(counts.values()) <= 1
    assert _class_stream(0, "trainval", 30, 12) != _class_stream(0, "test", 30, 12)


@pytest.mark.parametrize("class_id", range(len(CLASSES)))
def test_render_size_and_variation(class_id):
    a = render(class_id, 60.0, np.random.default_rng(1))
    b = render(class_id, 60.0, np.random.default_rng(2))
    assert a.dtype == np.uint8 and 55 <= max(a.shape) <= 62  # longer side ~ requested size
    assert (a > 127).any(axis=0).all() and (a > 127).any(axis=1).all()  # cropped tight
    assert a.shape != b.shape or not np.array_equal(a, b)  # intra-class variation


def test_ring_has_a_hole_circle_does_not():
    ring = render(CLASSES.index("ring"), 80.0, np.random.default_rng(0))
    circle = render(CLASSES.index("circle"), 80.0, np.random.default_rng(0))
    cy, cx = ring.shape[0] // 2, ring.shape[1] // 2
    assert ring[cy, cx] < 128 and circle[circle.shape[0] // 2, circle.shape[1] // 2] > 127
