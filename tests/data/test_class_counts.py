"""Objects per class and the check that every class can be trained, on hand-made splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data.class_counts import SKIP_MISSING_SETTING, check_trainable, count_objects, format_counts
from data.coco import load_coco
from data.errors import InputError
from data.records import Dataset, ImageRecord


def record(image_id: str, labels: list[int], difficult: list[bool]) -> ImageRecord:
    g = len(labels)
    return ImageRecord(image_id, Path(f"{image_id}.jpg"), (100, 100), np.tile([0.0, 0.0, 10.0, 10.0], (g, 1)),
                       np.array(labels, np.int64), np.array(difficult, bool), np.zeros(g, bool))


def split(root: Path) -> Dataset:
    # cat: 3 objects in 2 images; dog: 1 difficult only; bird: none
    recs = (record("a", [0, 0, 1], [False, False, True]), record("b", [0], [False]), record("c", [], []))
    return Dataset(root, "trainval", ("cat", "dog", "bird"), recs)


def test_count_objects_by_hand(tmp_path):
    counts = count_objects(split(tmp_path))
    np.testing.assert_array_equal(counts.objects, [3, 0, 0])
    np.testing.assert_array_equal(counts.difficult, [0, 1, 0])
    np.testing.assert_array_equal(counts.images, [2, 0, 0])
    assert counts.missing == ("dog", "bird")  # difficult objects train nothing
    table = format_counts(counts, "trainval").splitlines()
    assert table[0].startswith("trainval") and table[2].split() == ["cat", "3", "0", "2"]
    assert table[3].endswith("<- none") and table[-1].split() == ["all", "3", "1"]


def test_missing_class_is_one_line_naming_both_ways_out(tmp_path):
    with pytest.raises(InputError) as err:
        check_trainable(split(tmp_path), "error")
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(tmp_path))
    assert "dog, bird" in message and str(tmp_path / "classes.txt") in message and SKIP_MISSING_SETTING in message


def test_skip_returns_the_missing_classes(tmp_path, caplog):
    assert check_trainable(split(tmp_path), "skip") == ("dog", "bird")
    assert "training without them" in caplog.text
    full = Dataset(tmp_path, "trainval", ("cat",), split(tmp_path).records[1:2])
    assert check_trainable(full, "error") == ()


def test_no_object_at_all_is_refused_whatever_the_policy(tmp_path):
    empty = Dataset(tmp_path, "trainval", ("cat", "dog"), (record("c", [], []),))
    with pytest.raises(InputError, match="no .* object of any class"):
        check_trainable(empty, "skip")


def test_coco_category_without_annotation_names_the_json(tmp_path):
    data = {"images": [{"id": 1, "file_name": "a.jpg", "height": 30, "width": 50}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 5, "bbox": [2, 3, 10, 20], "iscrowd": 0}],
            "categories": [{"id": 5, "name": "dog"}, {"id": 1, "name": "cat"}, {"id": 9, "name": "cow"}]}
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.jpg").write_bytes(b"x")
    path = tmp_path / "instances_train.json"
    path.write_text(json.dumps(data))
    dataset = load_coco(path, tmp_path / "img")
    with pytest.raises(InputError) as err:
        check_trainable(dataset, "error")
    message = str(err.value)
    assert message.startswith(str(path)) and "cat, cow" in message and "categories" in message
    assert check_trainable(dataset, "skip") == ("cat", "cow")
