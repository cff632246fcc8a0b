"""Writing the PASCAL VOC layout (``data.voc`` reads it and says how its pixels convert):
annotations, split files and the class list, each written atomically."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data.cache import atomic_write_text
from data.errors import InputError
from data.voc import split_path


def write_classes(root: Path, classes: Sequence[str]) -> None:
    """Write ``root/classes.txt`` atomically, one name per line."""
    atomic_write_text(Path(root) / "classes.txt", "".join(f"{c}\n" for c in classes))


def write_split(root: Path, split: str, ids: Sequence[str]) -> None:
    """Write ``ImageSets/Main/<split>.txt`` atomically, one id per line."""
    atomic_write_text(split_path(root, split), "".join(f"{i}\n" for i in ids))


def _check_arrays(xml_path: Path, boxes: np.ndarray, labels: np.ndarray, difficult: np.ndarray,
                  truncated: np.ndarray, num_classes: int) -> None:  # fmt: skip
    g = boxes.shape[0]
    if boxes.shape != (g, 4) or not (labels.shape == difficult.shape == truncated.shape == (g,)):
        raise InputError(xml_path, "boxes must be (G, 4) and labels/difficult/truncated (G,)")
    if g and (labels.min() < 0 or labels.max() >= num_classes):
        raise InputError(xml_path, f"labels must lie in 0..{num_classes - 1}")


def write_annotation(
    xml_path: Path,
    image_id: str,
    size: tuple[int, int],
    boxes: np.ndarray,
    labels: np.ndarray,
    difficult: np.ndarray,
    truncated: np.ndarray,
    classes: Sequence[str],
) -> None:
    """Write a VOC annotation file (atomically; same input -> byte-identical file).

    Args:
        xml_path: where to write, normally ``Annotations/<id>.xml``.
        image_id: the image's id; the file name is recorded as ``<id>.jpg``.
        size: (height, width).
        boxes: (G, 4) 0-based continuous x1, y1, x2, y2; rounded to VOC's 1-based inclusive ints.
        labels: (G,) class ids into ``classes``. difficult, truncated: (G,) bool-like.
        classes: class names in id order.
    """
    xml_path = Path(xml_path)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    labels, difficult, truncated = (np.asarray(a).reshape(-1) for a in (labels, difficult, truncated))
    _check_arrays(xml_path, boxes, labels, difficult, truncated, len(classes))
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "VOC"
    ET.SubElement(root, "filename").text = f"{image_id}.jpg"
    size_el = ET.SubElement(root, "size")
    for tag, value in (("width", size[1]), ("height", size[0]), ("depth", 3)):
        ET.SubElement(size_el, tag).text = str(int(value))
    ET.SubElement(root, "segmented").text = "0"
    for box, label, diff, trunc in zip(boxes, labels, difficult, truncated):
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = classes[int(label)]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = str(int(bool(trunc)))
        ET.SubElement(obj, "difficult").text = str(int(bool(diff)))
        xmin, ymin = int(round(box[0])) + 1, int(round(box[1])) + 1  # the inverse conversion
        # A sub-pixel box still covers one whole VOC pixel, never an inverted one.
        xmax, ymax = max(int(round(box[2])), xmin), max(int(round(box[3])), ymin)
        bnd = ET.SubElement(obj, "bndbox")
        for tag, value in (("xmin", xmin), ("ymin", ymin), ("xmax", xmax), ("ymax", ymax)):
            ET.SubElement(bnd, tag).text = str(value)
    ET.indent(root, space="\t")
    atomic_write_text(xml_path, ET.tostring(root, encoding="unicode") + "\n")
