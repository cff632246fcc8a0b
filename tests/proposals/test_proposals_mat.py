"""Reading R-CNN's selective_search_data .mat files (1-based y1, x1, y2, x2)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from data.errors import InputError
from proposals.mat import read_mat_proposals


def _cells(*items) -> np.ndarray:
    arr = np.empty(len(items), dtype=object)  # a MATLAB cell array
    for i, item in enumerate(items):
        arr[i] = item
    return arr


def test_reads_and_converts_by_hand(tmp_path):
    path = tmp_path / "voc_2007_test.mat"
    boxes = _cells(
        np.array([[1, 1, 1, 1], [5, 10, 20, 30]], np.uint16),  # a one-pixel box; rows 5..20, cols 10..30
        np.zeros((0, 4)),
        np.array([[2, 3, 4, 5]], np.float64),
    )
    scipy.io.savemat(path, {"images": _cells("000001", "000002", "000004"), "boxes": boxes})
    out = read_mat_proposals(path)
    assert list(out) == ["000001", "000002", "000004"]
    # x1 = col1 - 1, y1 = row1 - 1, x2 = col2, y2 = row2
    assert np.array_equal(out["000001"], [[0, 0, 1, 1], [9, 4, 30, 20]])
    assert out["000001"].dtype == np.float32
    assert out["000002"].shape == (0, 4)
    assert np.array_equal(out["000004"], [[2, 1, 5, 4]])
    some = read_mat_proposals(path, ["000004", "999999"])
    assert list(some) == ["000004"]


def test_char_matrix_ids(tmp_path):
    path = tmp_path / "ids.mat"
    # savemat writes a list of equal-length strings as a MATLAB char matrix
    scipy.io.savemat(path, {"images": np.array(["a1", "b2"]), "boxes": _cells(np.ones((1, 4)), np.ones((2, 4)))})
    out = read_mat_proposals(path)
    assert list(out) == ["a1", "b2"] and out["b2"].shape == (2, 4)


def test_bad_files_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_mat_proposals(tmp_path / "none.mat")
    garbage = tmp_path / "garbage.mat"
    garbage.write_bytes(b"this is not matlab" * 20)
    with pytest.raises(InputError, match="garbage.mat"):
        read_mat_proposals(garbage)
    no_boxes = tmp_path / "nob.mat"
    scipy.io.savemat(no_boxes, {"images": _cells("x")})
    with pytest.raises(InputError, match="'boxes'"):
        read_mat_proposals(no_boxes)
    bad_shape = tmp_path / "shape.mat"
    scipy.io.savemat(bad_shape, {"images": _cells("x"), "boxes": _cells(np.ones((2, 3)))})
    with pytest.raises(InputError, match="shape"):
        read_mat_proposals(bad_shape)
