"""Devkit result files: format, round trip, reader errors."""

from __future__ import annotations

import numpy as np
import pytest

from data.errors import InputError
from eval.result_files import read_result_files, result_path, write_result_files

CLASSES = ("cat", "dog")


def test_written_lines_use_voc_one_based_coords(tmp_path, make_dets):
    det = {"img1": make_dets([[0, 1, 10, 20.25]], [0.75], [1])}
    paths = write_result_files(tmp_path, det, CLASSES, "test")
    assert [p.name for p in paths] == ["comp4_det_test_cat.txt", "comp4_det_test_dog.txt"]
    assert paths[0].read_text() == ""  # every class gets a file, even an empty one
    # xmin = x1 + 1 = 1, ymin = y1 + 1 = 2, xmax = x2 = 10, ymax = y2 = 20.25 -> 20.2 (1 decimal)
    assert paths[1].read_text() == "img1 0.75 1.0 2.0 10.0 20.2\n"


def test_round_trip(tmp_path, make_dets):
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, size=(7, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0, 50, size=(7, 2))], axis=1)
    scores = rng.normal(size=7).astype(np.float32)
    labels = np.array([0, 1, 0, 1, 1, 0, 0])
    original = {"a": make_dets(boxes[:4], scores[:4], labels[:4]), "b": make_dets(boxes[4:], scores[4:], labels[4:])}
    write_result_files(tmp_path, original, CLASSES, "val")
    back = read_result_files(tmp_path, CLASSES, "val", ["a", "b", "c"])
    assert list(back) == ["a", "b", "c"] and len(back["c"]) == 0
    for image_id, det in original.items():
        # back in class order, file order within a class (stable sort by label)
        order = np.argsort(det.labels, kind="stable")
        np.testing.assert_array_equal(back[image_id].labels, det.labels[order])
        np.testing.assert_array_equal(back[image_id].scores, det.scores[order])  # exact
        np.testing.assert_allclose(back[image_id].boxes, det.boxes[order], atol=0.05 + 1e-4)


def test_absent_class_file_means_no_detections(tmp_path):
    result_path(tmp_path, "test", "dog").write_text("a 0.5 1 1 10 10\n\n")  # blank lines are skipped
    back = read_result_files(tmp_path, CLASSES, "test", ["a"])
    np.testing.assert_array_equal(back["a"].labels, [1])
    np.testing.assert_array_equal(back["a"].boxes, [[0, 0, 10, 10]])


@pytest.mark.parametrize(
    "line, message",
    [
        ("a 0.5 1 1 10", "line 2.*expected"),
        ("a 0.5 1 1 10 x", "line 2.*numbers"),
        ("a nan 1 1 10 10", "line 2.*finite"),
        ("zz 0.5 1 1 10 10", "line 2.*'zz' is not in the split"),
        ("a 0.5 10 1 5 10", "line 2.*x2 < x1"),
        ("a 0.5 1 10 10 5", "line 2.*y2 < y1"),
    ],
)
def test_reader_errors_name_file_and_line(tmp_path, line, message):
    path = result_path(tmp_path, "test", "cat")
    path.write_text(f"a 0.9 1 1 10 10\n{line}\n")
    with pytest.raises(InputError, match=message) as err:
        read_result_files(tmp_path, CLASSES, "test", ["a"])
    assert err.value.where.startswith(str(path))


def test_one_pixel_box_is_valid(tmp_path):
    # VOC xmin == xmax is a 1-pixel-wide box: 0-based width 1, not an error.
    result_path(tmp_path, "test", "cat").write_text("a 0.5 5 5 5 5\n")
    back = read_result_files(tmp_path, CLASSES, "test", ["a"])
    np.testing.assert_array_equal(back["a"].boxes, [[4, 4, 5, 5]])


def test_missing_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_result_files(tmp_path / "nope", CLASSES, "test", ["a"])
