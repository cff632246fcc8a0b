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
            {"id": 3, "image_id": 7, "category_id": 5, "bbox": [50, 30, 12, 12], "iscrowd": 0, "area": 144},
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
    np.testing.assert_allclose(b.boxes, [[50, 30, 60, 40]])  # 2 px over: clipped to the 60 x 40 image
    assert ds.coco.category_ids == (1, 5) and dict(ds.coco.image_ids) == {"3": 3, "7": 7}


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
    with pytest.raises(InputError, match="annotation id 9: category_id 99"):
        load_coco(path, tmp_path / "img")


def _valid():
    """A valid json as a dict: 2 images (3: 50 x 30, 7: 60 x 40), categories 1 cat and 5 dog."""
    return {
        "images": [{"id": 3, "file_name": "a.jpg", "height": 30, "width": 50},
                   {"id": 7, "file_name": "b.jpg", "height": 40, "width": 60}],
        "annotations": [{"id": 1, "image_id": 3, "category_id": 5, "bbox": [2, 3, 10, 20], "iscrowd": 0},
                        {"id": 2, "image_id": 7, "category_id": 1, "bbox": [5, 5, 10, 10], "iscrowd": 1}],
        "categories": [{"id": 1, "name": "cat"}, {"id": 5, "name": "dog"}],
    }  # fmt: skip


def _set(data, key, index, **fields):
    data[key][index].update(fields)
    return data


def _drop(data, key, index, field):
    del data[key][index][field]
    return data


def _append(data, key, entry):
    data[key].append(entry)
    return data


# (case, how to break the valid json, the message expected after "<json file>: ")
BAD_JSON = [
    ("image without id", lambda d: _drop(d, "images", 1, "id"), "images[1]: missing key 'id'"),
    ("image without file_name", lambda d: _drop(d, "images", 0, "file_name"), "image id 3: missing key 'file_name'"),
    ("image without height", lambda d: _drop(d, "images", 1, "height"), "image id 7: missing key 'height'"),
    ("annotation without bbox", lambda d: _drop(d, "annotations", 0, "bbox"), "annotation id 1: missing key 'bbox'"),
    ("annotation without category_id", lambda d: _drop(d, "annotations", 1, "category_id"),
     "annotation id 2: missing key 'category_id'"),
    ("annotation without id", lambda d: _drop(d, "annotations", 1, "id"), "annotations[1]: missing key 'id'"),
    ("category without name", lambda d: _drop(d, "categories", 0, "name"), "category id 1: missing key 'name'"),
    ("entry not an object", lambda d: _append(d, "annotations", [1, 2]), "annotations[2] is not an object"),
    ("image id not an integer", lambda d: _set(d, "images", 0, id="a"), "images[0]: id 'a' is not an integer"),
    ("duplicate image id", lambda d: _set(d, "images", 1, id=3), "image id 3: duplicate image id"),
    ("duplicate category id", lambda d: _set(d, "categories", 1, id=1), "category id 1: duplicate category id"),
    ("duplicate annotation id", lambda d: _set(d, "annotations", 1, id=1), "annotation id 1: duplicate annotation id"),
    ("duplicate category name", lambda d: _set(d, "categories", 1, name="cat"),
     "category id 5: duplicate category name 'cat'"),
    ("empty category name", lambda d: _set(d, "categories", 0, name=""),
     "category id 1: name must be a non-empty string"),
    ("no categories", lambda d: {**d, "categories": [], "annotations": []}, "no categories"),
    ("unknown category id", lambda d: _set(d, "annotations", 0, category_id=9),
     "annotation id 1: category_id 9 is not in 'categories'"),
    ("unknown image id", lambda d: _set(d, "annotations", 1, image_id=8),
     "annotation id 2: image_id 8 is not in 'images'"),
    ("zero image width", lambda d: _set(d, "images", 0, width=0),
     "image id 3: height and width must be positive integers, got 30 x 0"),
    ("negative image height", lambda d: _set(d, "images", 1, height=-40),
     "image id 7: height and width must be positive integers, got -40 x 60"),
    ("fractional image size", lambda d: _set(d, "images", 1, height=40.5),
     "image id 7: height and width must be positive integers, got 40.5 x 60"),
    ("negative box width", lambda d: _set(d, "annotations", 0, bbox=[20, 3, -10, 20]),
     "annotation id 1: bbox [20, 3, -10, 20] has a negative width or height"),
    ("box of 3 numbers", lambda d: _set(d, "annotations", 0, bbox=[2, 3, 10]),
     "annotation id 1: bbox must be 4 finite numbers [x, y, width, height], got [2, 3, 10]"),
    ("box with a string", lambda d: _set(d, "annotations", 0, bbox=[2, "3", 10, 20]),
     "annotation id 1: bbox must be 4 finite numbers [x, y, width, height], got [2, '3', 10, 20]"),
    ("box far right of its image", lambda d: _set(d, "annotations", 0, bbox=[45, 3, 20, 20]),
     "annotation id 1: bbox [45, 3, 20, 20] lies outside its 50 x 30 image"),
    ("box wholly above its image", lambda d: _set(d, "annotations", 1, bbox=[5, -4, 10, 3]),
     "annotation id 2: bbox [5, -4, 10, 3] lies outside its 60 x 40 image"),
    ("iscrowd not 0/1", lambda d: _set(d, "annotations", 0, iscrowd=2), "annotation id 1: iscrowd must be 0 or 1, got 2"),
    ("image file missing", lambda d: _set(d, "images", 1, file_name="gone.jpg"), "image id 7: image file "),
    ("file_name climbing out", lambda d: _set(d, "images", 1, file_name="../b.jpg"),
     "image id 7: file_name '../b.jpg' must be a path inside the image folder"),
    ("file_name absolute", lambda d: _set(d, "images", 0, file_name="/etc/hostname"),
     "image id 3: file_name '/etc/hostname' must be a path inside the image folder"),
    ("top level a list", lambda d: [d], "top level must be an object with images/annotations/categories"),
    ("no images list", lambda d: {k: v for k, v in d.items() if k != "images"}, "missing list 'images'"),
]


@pytest.mark.parametrize("case, breaks, message", BAD_JSON, ids=[c[0] for c in BAD_JSON])
def test_bad_json_is_one_line_naming_file_and_entry(tmp_path, case, breaks, message):
    (tmp_path / "img").mkdir()
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / "img" / name).write_bytes(b"x")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_valid()))
    assert load_coco(path, tmp_path / "img").num_classes == 2  # unbroken, it loads
    path.write_text(json.dumps(breaks(_valid())))
    with pytest.raises(InputError) as err:
        load_coco(path, tmp_path / "img")
    assert str(err.value).startswith(f"{path}: {message}")
    assert "\n" not in str(err.value)


def test_small_overshoot_is_clipped_zero_size_box_skipped(tmp_path, caplog):
    (tmp_path / "img").mkdir()
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / "img" / name).write_bytes(b"x")
    data = _valid()
    data["annotations"][0]["bbox"] = [-1.5, 3, 10, 28.5]  # 1.5 px left of and 1.5 px below the 50 x 30 image
    data["annotations"].append({"id": 918, "image_id": 7, "category_id": 5, "bbox": [30, 20, 1.03, 0.0]})
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(data))
    ds = load_coco(path, tmp_path / "img")
    np.testing.assert_allclose(ds.records[0].boxes, [[0, 3, 8.5, 30]])
    assert ds.records[1].num_objects == 1  # the zero-height box (as COCO 2017's annotation 918) is skipped
    assert "sticks out" in caplog.text and "annotation id 918: bbox [30, 20, 1.03, 0.0] has zero width" in caplog.text


def test_an_image_symlinked_out_of_the_image_folder_is_refused(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "outside.jpg").write_bytes(b"x")
    (tmp_path / "img" / "a.jpg").write_bytes(b"x")
    (tmp_path / "img" / "b.jpg").symlink_to(tmp_path / "outside.jpg")
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(_valid()))
    with pytest.raises(InputError, match="points outside the dataset") as err:
        load_coco(path, tmp_path / "img")
    assert "b.jpg" in str(err.value)
