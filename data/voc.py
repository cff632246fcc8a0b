"""PASCAL VOC layout: reading annotations, split files and the class list (``data.voc_write`` writes them).

A VOC "year" folder holds ``Annotations/<id>.xml``, ``JPEGImages/<id>.jpg`` (we also accept
``.png``), ``ImageSets/Main/<split>.txt`` and, optionally, ``classes.txt`` (one class name per line;
without it the 20 VOC classes are used).

Coordinates: VOC stores 1-based, inclusive integer pixels (``xmin .. xmax`` both belong to the
box, so the devkit's width is ``xmax - xmin + 1``). This module is the ONLY place that converts them
to the project's continuous 0-based boxes::

    x1 = xmin - 1,  y1 = ymin - 1,  x2 = xmax,  y2 = ymax      (so x2 - x1 = xmax - xmin + 1)

and back, rounding to integers, when writing: ``xmin = round(x1) + 1, xmax = round(x2)``.

Bad boxes: an inverted or empty box (``xmax < xmin``) is rejected with :class:`InputError`; a box
that pokes slightly outside the image (real VOC has a few) is clipped with a logged warning; a box
that lies far outside the image is rejected. XML is parsed with ``defusedxml``, so entity-expansion
bombs and external entities are refused with an :class:`InputError` instead of hanging.

Untrusted names and paths (see :mod:`data.safe_input`): split files and ``classes.txt`` may carry a
byte-order mark, Windows line ends, blank lines and ``#`` comments. Every image id, class name and
split name must be a plain file name (no absolute path, ``..``, separator, leading dot or control
character); a bad one is refused with the split file and line number before any file is opened.
Annotations and images are read only from inside the dataset: a file's real location (symlinks
resolved) must lie inside the resolved ``root``, or inside the resolved ``Annotations/`` or
``JPEGImages/`` folder it is listed in. So a symlinked ``JPEGImages`` folder (a common way to share
images between copies of a dataset) works, but a per-file link to ``/etc/hostname`` is refused.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import defusedxml
import defusedxml.ElementTree as DET
import numpy as np

from data.errors import InputError
from data.progress import track
from data.records import Dataset, ImageRecord
from data.safe_input import check_inside, check_name, read_lines

log = logging.getLogger(__name__)

# The devkit's class order (VOCdevkit/VOCcode/VOCinit.m); class id = index here.
VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)  # fmt: skip

# A box may stick out of the image by this many pixels, or this fraction of the image side,
# whichever is larger, before it is an error rather than an annotation slip to clip.
OUTSIDE_TOLERANCE_PX = 5.0
OUTSIDE_TOLERANCE_FRAC = 0.05

IMAGE_EXTENSIONS = (".jpg", ".png")


def read_classes(root: Path) -> tuple[str, ...]:
    """Class names from ``root/classes.txt`` (one per line), else :data:`VOC_CLASSES`."""
    path = Path(root) / "classes.txt"
    if not path.is_file():
        return VOC_CLASSES
    # Class names name the result files (comp4_det_<split>_<class>.txt), so they must be file names.
    names = [check_name(name, f"{path}:{n}", "class name") for n, name in read_lines(path)]
    if not names:
        raise InputError(path, "class list is empty")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(path, f"duplicate class names: {', '.join(dupes)}")
    return tuple(names)


def split_path(root: Path, split: str) -> Path:
    check_name(split, "split", "split name")  # it names the split file and the outputs' folders
    return Path(root) / "ImageSets" / "Main" / f"{split}.txt"


def read_split(root: Path, split: str) -> list[str]:
    """Image ids listed in ``ImageSets/Main/<split>.txt``, in file order.

    The file may have a byte-order mark, any line ends, blank lines and ``#`` comments.

    Raises:
        InputError: the file is missing, empty, lists an id twice, or lists an id that is not a
            plain file name (naming the file and line).
    """
    path = split_path(root, split)
    if not path.is_file():
        raise InputError(path, f"split file for split '{split}' not found")
    # The first token only: class-specific VOC split files carry a second "+1/-1" column.
    lines = [(n, check_name(line.split()[0], f"{path}:{n}")) for n, line in read_lines(path)]
    if not lines:
        raise InputError(path, "split file lists no image ids")
    seen: dict[str, list[int]] = {}
    for n, image_id in lines:
        seen.setdefault(image_id, []).append(n)
    dupes = [f"{i} (lines {', '.join(map(str, ns))})" for i, ns in seen.items() if len(ns) > 1]
    if dupes:  # twice in training weighs it double; twice in a test split counts its objects twice
        raise InputError(path, f"{len(dupes)} image id(s) listed more than once: {'; '.join(dupes[:5])}")
    return [image_id for _, image_id in lines]


def _text(elem: ET.Element, tag: str, xml_path: Path, default: str | None = None) -> str:
    child = elem.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if default is not None:
            return default
        raise InputError(xml_path, f"missing <{tag}> in <{elem.tag}>")
    return child.text.strip()


def _number(elem: ET.Element, tag: str, xml_path: Path, default: str | None = None) -> float:
    text = _text(elem, tag, xml_path, default)
    try:
        value = float(text)
    except ValueError:
        raise InputError(xml_path, f"<{tag}> is not a number: {text!r}") from None
    if not np.isfinite(value):
        raise InputError(xml_path, f"<{tag}> is not a finite number: {text!r}")
    return value


def _parse_xml(xml_path: Path) -> ET.Element:
    if not xml_path.is_file():
        raise InputError(xml_path, "annotation file not found")
    try:
        return DET.parse(xml_path).getroot()
    except defusedxml.DefusedXmlException as err:
        raise InputError(xml_path, f"refused unsafe XML ({type(err).__name__})") from None
    except ET.ParseError as err:
        raise InputError(xml_path, f"malformed XML: {err}") from None


def _parse_size(root: ET.Element, xml_path: Path) -> tuple[int, int]:
    size = root.find("size")
    if size is None:
        raise InputError(xml_path, "missing <size>")
    width, height = _number(size, "width", xml_path), _number(size, "height", xml_path)
    if width <= 0 or height <= 0 or width != int(width) or height != int(height):
        raise InputError(xml_path, f"bad image size {width} x {height}")
    return int(height), int(width)


def _parse_box(obj: ET.Element, size: tuple[int, int], xml_path: Path) -> list[float]:
    """One <bndbox> -> [x1, y1, x2, y2] 0-based continuous, checked and clipped to the image."""
    bnd = obj.find("bndbox")
    if bnd is None:
        raise InputError(xml_path, "missing <bndbox> in <object>")
    xmin, ymin, xmax, ymax = (_number(bnd, t, xml_path) for t in ("xmin", "ymin", "xmax", "ymax"))
    box = [xmin - 1.0, ymin - 1.0, xmax, ymax]  # the one VOC -> 0-based conversion
    if box[2] <= box[0] or box[3] <= box[1]:
        raise InputError(xml_path, f"inverted or empty box xmin={xmin} ymin={ymin} xmax={xmax} ymax={ymax}")
    height, width = size
    limits = (width, height, width, height)
    tol = [max(OUTSIDE_TOLERANCE_PX, OUTSIDE_TOLERANCE_FRAC * s) for s in limits]
    far = box[0] < -tol[0] or box[1] < -tol[1] or box[2] > width + tol[2] or box[3] > height + tol[3]
    if far:
        raise InputError(xml_path, f"box {xmin},{ymin},{xmax},{ymax} lies outside the {width} x {height} image")
    clipped = [max(box[0], 0.0), max(box[1], 0.0), min(box[2], float(width)), min(box[3], float(height))]
    if clipped != box:
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            raise InputError(xml_path, f"box {xmin},{ymin},{xmax},{ymax} lies outside the {width} x {height} image")
        log.warning("%s: box %s,%s,%s,%s sticks out of the %d x %d image; clipped",
                    xml_path, xmin, ymin, xmax, ymax, width, height)  # fmt: skip
    return clipped


def _flag(obj: ET.Element, tag: str, xml_path: Path) -> bool:
    value = _number(obj, tag, xml_path, default="0")
    if value not in (0.0, 1.0):
        raise InputError(xml_path, f"<{tag}> must be 0 or 1, got {value:g}")
    return value == 1.0


def parse_annotation(
    xml_path: Path, class_index: dict[str, int]
) -> tuple[tuple[int, int], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read one VOC annotation file.

    Args:
        xml_path: ``Annotations/<id>.xml``.
        class_index: class name -> class id (0..K-1).
    Returns:
        size (height, width); boxes (G, 4) float32 0-based x1, y1, x2, y2; labels (G,) int64;
        difficult (G,) bool; truncated (G,) bool.
    Raises:
        InputError: naming ``xml_path``, for a missing file, malformed or unsafe XML, a missing
        field, an unknown class, a non-numeric coordinate, or an inverted / far-outside box.
    """
    xml_path = Path(xml_path)
    root = _parse_xml(xml_path)
    size = _parse_size(root, xml_path)
    boxes, labels, difficult, truncated = [], [], [], []
    for obj in root.findall("object"):
        name = _text(obj, "name", xml_path)
        if name not in class_index:
            raise InputError(xml_path, f"unknown class name {name!r}")
        boxes.append(_parse_box(obj, size, xml_path))
        labels.append(class_index[name])
        difficult.append(_flag(obj, "difficult", xml_path))
        truncated.append(_flag(obj, "truncated", xml_path))
    return (
        size,
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(labels, np.int64),
        np.asarray(difficult, bool),
        np.asarray(truncated, bool),
    )


def image_path(root: Path, image_id: str) -> Path:
    """``JPEGImages/<id>.jpg``, or ``.png`` when only that exists (existence checked, not decoded).

    Raises:
        InputError: neither exists, or the file found points outside the dataset (see above).
    """
    folder = Path(root) / "JPEGImages"
    for ext in IMAGE_EXTENSIONS:
        path = folder / f"{image_id}{ext}"
        if path.is_file():
            return check_inside(path, root, folder)
    raise InputError(folder / f"{image_id}.jpg", "image file not found (tried .jpg and .png)")


def load_voc(root: Path, split: str, classes: Sequence[str] | None = None) -> Dataset:
    """Load one split of a VOC-layout dataset.

    Args:
        root: a VOC "year" folder (``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/``).
        split: e.g. "trainval", "test".
        classes: class names in id order; default :func:`read_classes` (``classes.txt`` or VOC's 20).
    Returns:
        the :class:`Dataset`, records in split-file order.
    """
    root = Path(root)
    if not (root / "Annotations").is_dir():
        raise InputError(root, "not a VOC dataset folder (no Annotations/ inside)")
    names = tuple(classes) if classes is not None else read_classes(root)
    class_index = {name: i for i, name in enumerate(names)}
    ids = read_split(root, split)
    records = []
    for image_id in track(ids, desc=f"reading {split} annotations", show=len(ids) >= 1000, leave=False):
        xml_path = root / "Annotations" / f"{image_id}.xml"
        if xml_path.exists():  # a missing one is reported by parse_annotation
            check_inside(xml_path, root, root / "Annotations")
        size, boxes, labels, difficult, truncated = parse_annotation(xml_path, class_index)
        path = image_path(root, image_id)
        records.append(ImageRecord(image_id, path, size, boxes, labels, difficult, truncated))
    log.info("loaded %s/%s: %d images, %d objects", root, split, len(records),
             sum(r.num_objects for r in records))  # fmt: skip
    return Dataset(root=root, split=split, classes=names, records=tuple(records))
