"""open_dataset / reopen_dataset: the flags every tool shares, and what a work dir remembers."""

from __future__ import annotations

import pytest

from data.datasets import dataset_source, open_dataset, reopen_dataset
from data.errors import InputError


def test_voc_and_coco_open_the_same_images(tiny_voc, tiny_coco):
    voc = open_dataset(data_root=tiny_voc, default_split="test")
    coco = open_dataset(ann_file=tiny_coco["test"], image_dir=tiny_coco["image_dir"])
    assert voc.split == coco.split == "test" and voc.coco is None and coco.coco.ann_file == tiny_coco["test"]
    assert [r.path for r in voc.records] == [r.path for r in coco.records]
    named = open_dataset(split="val2017", ann_file=tiny_coco["test"], image_dir=tiny_coco["image_dir"])
    assert named.split == "val2017"  # with a COCO json, --split is only a name


@pytest.mark.parametrize("kwargs, message", [
    ({}, "dataset: give --data-root DIR (VOC layout) or --ann-file FILE --image-dir DIR (COCO json)"),
    ({"data_root": "v", "ann_file": "a.json", "image_dir": "i"}, "--data-root: give either"),
    ({"data_root": "v", "image_dir": "i"}, "--data-root: give either"),
    ({"ann_file": "a.json"}, "--ann-file: needs --image-dir DIR"),
    ({"image_dir": "i"}, "--image-dir: needs --ann-file FILE"),
    ({"data_root": "v"}, "--split: needed with --data-root v"),
])  # fmt: skip
def test_flag_mistakes_are_one_clear_line(kwargs, message):
    with pytest.raises(InputError) as err:
        open_dataset(**kwargs)
    assert str(err.value).startswith(message)


def test_reopen_falls_back_to_what_the_work_dir_was_trained_on(tiny_voc, tiny_coco, caplog):
    voc_meta = dataset_source(open_dataset(tiny_voc, "trainval"))
    assert voc_meta == {"data_root": str(tiny_voc), "ann_file": None, "image_dir": None}
    assert reopen_dataset(voc_meta, default_split="test").split == "test"
    coco_meta = dataset_source(open_dataset(ann_file=tiny_coco["trainval"], image_dir=tiny_coco["image_dir"]))
    assert coco_meta == {"data_root": None, "ann_file": str(tiny_coco["trainval"]),
                         "image_dir": str(tiny_coco["image_dir"])}  # fmt: skip
    test = reopen_dataset(coco_meta, ann_file=tiny_coco["test"], default_split="test")  # image dir remembered
    assert test.coco.ann_file == tiny_coco["test"] and len(test.records) == 4
    train = reopen_dataset(coco_meta, default_split="test")  # nothing given: the training json, warned
    assert train.coco.ann_file == tiny_coco["trainval"] and "testing on the training annotations" in caplog.text
    with pytest.raises(InputError, match="--ann-file: needs --image-dir"):
        reopen_dataset(voc_meta, ann_file=tiny_coco["test"])
    with pytest.raises(InputError, match="does not say what it was trained on"):
        reopen_dataset({})
