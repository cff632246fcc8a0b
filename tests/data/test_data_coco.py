"""COCO json reader on a tiny hand-written file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data.coco import load_coco
from data.errors import InputError


def write_coco(tmp_path, images=None, annotations=None, categories=None):
    data = {
        "images": images if images is not None else [
            {"id": 7, "file_name": "b.jpg", "height": 40, "width": 60},
            {"id": 3, "file_name": "a.jpg", "height": 30, "width": 50},
        ],
        "annotations": annotations if annotations is not None else [
            {"id": 1, "image_id": 3, "category_id": 5, "bbox": [2, 3, 10, 20], "iscrowd": 0, "area": 200},
            {"id": 2, "image_id": 3, "category_id": 1, "bbox": [0.5, 1.5, 4, 4], "iscrowd": 1, "area": 16},
            {"id": 3, "image_id": 7, "category_id": 5, "bbox": [50, 30, 20, 20], "iscrowd": 0, "area": 400},
        ],
        "categories": categories if categories is not None else [{"id": 5, "name": "dog"}, {"id": 1, "name": "cat"}],
    }  # fmt: skip
    (tmp_path / "img").mkdir(exist_ok=True)
    for im in data["images"]:
        (tmp_path / "img" / im["file_name"]).write_bytes(b"x")
    path = tmp_path / "instances_mini.json"
    path.write_text(json.dumps(data))
    return path


def test_load_coco(tmp_path):
    ds = load_coco(write_coco(tmp_path), tmp_path / "img")
    assert ds.classes == ("cat", "dog")  # categories sorted by id: 1 cat, 5 dog
    assert ds.split == "instances_mini"
    assert [r.image_id for r in ds.records] == ["3", "7"]
    a, b = ds.records
    assert a.size == (30, 50) and a.path == tmp_path / "img" / "a.jpg"
    np.testing.assert_allclose(a.boxes, [[2, 3, 12, 23], [0.5, 1.5, 4.5, 5.5]])
    np.testing.assert_array_equal(a.labels, [1, 0])
    np.testing.assert_array_equal(a.difficult, [False, True])
    np.testing.assert_allclose(b.boxes, [[50, 30, 60, 40]])  # clipped to the 60 x 40 image


def test_coco_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON") as err:
        load_coco(path, tmp_path)
    assert str(path) in str(err.value)
    with pytest.raises(InputError, match="not found"):
        load_coco(tmp_path / "none.json", tmp_path)
    path.write_text(json.dumps({"images": []}))
    with pytest.raises(InputError, match="missing list 'annotations'"):
        load_coco(path, tmp_path)


def test_coco_missing_image_and_bad_category(tmp_path):
    path = write_coco(tmp_path)
    (tmp_path / "img" / "b.jpg").unlink()
    with pytest.raises(InputError, match="not found") as err:
        load_coco(path, tmp_path / "img")
    assert "b.jpg" in str(err.value)
    path = write_coco(tmp_path, annotations=[{"id": 9, "image_id": 3, "category_id": 99, "bbox": [0, 0, 1, 1]}])
    with pytest.raises(InputError, match="annotation 9"):
        load_coco(path, tmp_path / "img")
