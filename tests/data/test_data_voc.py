"""VOC reader and writer on hand-written annotation files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from data.errors import InputError
from data.voc import VOC_CLASSES, load_voc, parse_annotation, read_classes, read_split
from data.voc_write import write_annotation, write_split  # fmt: skip

CLASSES = ("cat", "dog")
INDEX = {"cat": 0, "dog": 1}


def obj(name: str, xmin, ymin, xmax, ymax, difficult=None, truncated=None) -> str:
    flags = "" if difficult is None else f"<difficult>{difficult}</difficult>"
    flags += "" if truncated is None else f"<truncated>{truncated}</truncated>"
    return (f"<object><name>{name}</name>{flags}<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
            f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")  # fmt: skip


def xml(*objects: str, size: str = "<size><width>100</width><height>50</height><depth>3</depth></size>") -> str:
    return f"<annotation><filename>a.jpg</filename>{size}{''.join(objects)}</annotation>"


def make_voc(root: Path, annotations: dict[str, str], ext: str = ".jpg") -> Path:
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    for image_id, text in annotations.items():
        (root / "Annotations" / f"{image_id}.xml").write_text(text)
        (root / "JPEGImages" / f"{image_id}{ext}").write_bytes(b"not decoded at load time")
    write_split(root, "trainval", list(annotations))
    return root


def test_voc_classes_devkit_order():
    assert len(VOC_CLASSES) == 20 and VOC_CLASSES[0] == "aeroplane" and VOC_CLASSES[-1] == "tvmonitor"
    assert VOC_CLASSES.index("person") == 14


def test_parse_converts_one_based_inclusive(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(xml(obj("dog", 1, 1, 10, 20, 1, 0), obj("cat", 5, 6, 5, 6), obj("cat", 51.0, 2, 100, 50, 0, 1)))
    size, boxes, labels, difficult, truncated = parse_annotation(path, INDEX)
    assert size == (50, 100)
    # VOC (1, 1, 10, 20) is pixels 0..9 x 0..19: 10 wide, 20 high.
    np.testing.assert_array_equal(boxes, [[0, 0, 10, 20], [4, 5, 5, 6], [50, 1, 100, 50]])
    assert boxes.dtype == np.float32
    np.testing.assert_array_equal(labels, [1, 0, 0])
    np.testing.assert_array_equal(difficult, [True, False, False])
    np.testing.assert_array_equal(truncated, [False, False, True])


def test_parse_no_objects(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(xml())
    size, boxes, labels, difficult, truncated = parse_annotation(path, INDEX)
    assert boxes.shape == (0, 4) and labels.shape == difficult.shape == truncated.shape == (0,)


BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<annotation><filename>&lol4;</filename></annotation>"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><annotation><filename>&x;</filename></annotation>"""


@pytest.mark.parametrize(
    "text, problem",
    [
        ("<annotation><size>", "malformed XML"),
        (xml(size=""), "missing <size>"),
        (xml(size="<size><width>100</width></size>"), "missing <height>"),
        (xml(obj("bird", 1, 1, 5, 5)), "unknown class name 'bird'"),
        (xml(obj("cat", 10, 1, 9, 5)), "inverted or empty box"),
        (xml(obj("cat", "a", 1, 9, 5)), "not a number"),
        (xml("<object><name>cat</name></object>"), "missing <bndbox>"),
        (xml(obj("cat", 1, 1, 5, 5, difficult=2)), "must be 0 or 1"),
        (xml(obj("cat", 1, 1, 300, 5)), "outside the 100 x 50 image"),
        (BOMB, "refused unsafe XML"),
        (EXTERNAL, "refused unsafe XML"),
    ],
)
def test_bad_annotation_names_file(tmp_path, text, problem):
    path = tmp_path / "bad.xml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        parse_annotation(path, INDEX)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_missing_annotation_file(tmp_path):
    with pytest.raises(InputError, match="annotation file not found") as err:
        parse_annotation(tmp_path / "nope.xml", INDEX)
    assert "nope.xml" in str(err.value)


def test_slightly_outside_box_is_clipped_with_warning(tmp_path, caplog):
    path = tmp_path / "a.xml"
    path.write_text(xml(obj("cat", 0, 1, 102, 50)))  # xmin 0 and xmax 102 on a 100 wide image
    with caplog.at_level(logging.WARNING):
        _, boxes, *_ = parse_annotation(path, INDEX)
    np.testing.assert_array_equal(boxes, [[0, 0, 100, 50]])
    assert "clipped" in caplog.text and str(path) in caplog.text


def test_read_classes_and_split(tmp_path):
    assert read_classes(tmp_path) == VOC_CLASSES
    (tmp_path / "classes.txt").write_text("cat\n\ndog\n")
    assert read_classes(tmp_path) == ("cat", "dog")
    (tmp_path / "classes.txt").write_text("cat\ncat\n")
    with pytest.raises(InputError, match="duplicate"):
        read_classes(tmp_path)
    with pytest.raises(InputError, match="split file") as err:
        read_split(tmp_path, "test")
    assert "test.txt" in str(err.value)
    write_split(tmp_path, "test", [])
    with pytest.raises(InputError, match="no image ids"):
        read_split(tmp_path, "test")
    write_split(tmp_path, "test", ["b", "a"])
    assert read_split(tmp_path, "test") == ["b", "a"]


def test_split_listing_an_image_twice_names_the_lines(tmp_path):
    """Twice in a split would weigh an image double in training and count its objects twice in a test."""
    write_split(tmp_path, "test", ["b", "a", "c", "a"])
    with pytest.raises(InputError) as err:
        read_split(tmp_path, "test")
    message = str(err.value)
    assert "\n" not in message and "test.txt" in message and "a (lines 2, 4)" in message and "b " not in message


def test_load_voc_with_classes_txt(tmp_path):
    root = make_voc(tmp_path / "voc", {"img2": xml(obj("dog", 1, 1, 10, 20)), "img1": xml()})
    (root / "classes.txt").write_text("cat\ndog\n")
    ds = load_voc(root, "trainval")
    assert ds.classes == CLASSES and ds.split == "trainval"
    assert [r.image_id for r in ds.records] == ["img2", "img1"]
    rec = ds.records[0]
    assert rec.path == root / "JPEGImages" / "img2.jpg" and rec.size == (50, 100)
    np.testing.assert_array_equal(rec.boxes, [[0, 0, 10, 20]])
    np.testing.assert_array_equal(rec.labels, [1])


def test_load_voc_png_fallback_and_missing_image(tmp_path):
    root = make_voc(tmp_path / "voc", {"a": xml()}, ext=".png")
    assert load_voc(root, "trainval", CLASSES).records[0].path.suffix == ".png"
    (root / "JPEGImages" / "a.png").unlink()
    with pytest.raises(InputError, match="image file not found") as err:
        load_voc(root, "trainval", CLASSES)
    assert "a.jpg" in str(err.value)


def test_load_voc_not_a_voc_folder(tmp_path):
    with pytest.raises(InputError, match="not a VOC dataset folder"):
        load_voc(tmp_path, "trainval")


def test_write_then_parse_round_trip(tmp_path):
    path = tmp_path / "Annotations" / "x.xml"
    boxes = np.array([[0, 0, 10, 20], [4.4, 5.6, 30.2, 40.5], [7.2, 7.1, 7.3, 7.4]])
    write_annotation(path, "x", (50, 100), boxes, [1, 0, 1], [0, 1, 0], [1, 0, 0], CLASSES)
    text = path.read_text()
    assert "<xmin>1</xmin>" in text and "<filename>x.jpg</filename>" in text
    size, got, labels, difficult, truncated = parse_annotation(path, INDEX)
    assert size == (50, 100)
    # rounded to whole VOC pixels; a sub-pixel box keeps one pixel rather than inverting
    np.testing.assert_array_equal(got, [[0, 0, 10, 20], [4, 6, 30, 40], [7, 7, 8, 8]])
    np.testing.assert_array_equal(labels, [1, 0, 1])
    np.testing.assert_array_equal(difficult, [False, True, False])
    np.testing.assert_array_equal(truncated, [True, False, False])


def test_write_rejects_bad_labels(tmp_path):
    with pytest.raises(InputError, match="labels must lie in"):
        write_annotation(tmp_path / "x.xml", "x", (5, 5), [[0, 0, 1, 1]], [2], [0], [0], CLASSES)
