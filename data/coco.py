"""COCO-format annotations (a json file plus an image folder): reading them as a :class:`Dataset`,
and writing a :class:`Dataset` (e.g. a VOC split) as one.

COCO boxes are ``[x, y, width, height]`` in continuous 0-based pixels, so they need no 1-based
shift: ``x1, y1, x2, y2 = x, y, x + width, y + height``. Class ids are the categories sorted by
their COCO id, renumbered 0..K-1; ``iscrowd`` regions become ``difficult`` (neither rewarded nor
penalised by the VOC-style evaluation). Our image ids are the COCO image ids as strings;
``Dataset.coco`` keeps the way back to the json's own ids (for COCO's results json).

Checks, each an :class:`InputError` naming the json file and the entry ("annotation id 17: ..."):
missing keys, ids that are not integers, duplicate image / category / annotation ids, duplicate
category names, annotations of unknown images or categories, a non-positive image size, a box
with a negative width or height, a box far outside its image, an image file that does not exist.
Like the VOC reader, a box poking slightly outside its image is clipped with a warning. A box of
zero width or height is skipped with a warning rather than refused: COCO 2017's own train json
has two (annotation ids 918 and 2206849), and refusing them would refuse COCO itself.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data.cache import atomic_write_text
from data.errors import InputError
from data.records import CocoIds, Dataset, ImageRecord
from data.safe_input import check_inside

# The VOC reader's tolerance for boxes that stick out of the image, so both readers agree.
from data.voc import OUTSIDE_TOLERANCE_FRAC, OUTSIDE_TOLERANCE_PX, load_voc

log = logging.getLogger(__name__)

_REQUIRED = {
    "images": ("id", "file_name", "height", "width"),
    "annotations": ("id", "image_id", "category_id", "bbox"),
    "categories": ("id", "name"),
}
_SINGULAR = {"images": "image", "annotations": "annotation", "categories": "category"}


def _read_json(json_path: Path) -> dict[str, Any]:
    if not json_path.is_file():
        raise InputError(json_path, "COCO annotation file not found")
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(json_path, f"not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise InputError(json_path, "top level must be an object with images/annotations/categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise InputError(json_path, f"missing list '{key}'")
    return data


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _checked_entries(data: dict[str, Any], key: str, json_path: Path) -> list[dict[str, Any]]:
    """The entries of ``data[key]``: objects with the required keys and a unique integer id."""
    seen: set[int] = set()
    what = _SINGULAR[key]
    for n, entry in enumerate(data[key]):
        if not isinstance(entry, dict):
            raise InputError(json_path, f"{key}[{n}] is not an object")
        if "id" not in entry:
            raise InputError(json_path, f"{key}[{n}]: missing key 'id'")
        where = f"{what} id {entry['id']!r}"
        missing = [k for k in _REQUIRED[key] if k not in entry]
        if missing:
            raise InputError(json_path, f"{where}: missing key '{missing[0]}'")
        if not _is_int(entry["id"]):
            raise InputError(json_path, f"{key}[{n}]: id {entry['id']!r} is not an integer")
        if entry["id"] in seen:
            raise InputError(json_path, f"{where}: duplicate {what} id")
        seen.add(entry["id"])
    return data[key]


def _categories(data: dict[str, Any], json_path: Path) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(class names, COCO category ids), both sorted by category id."""
    cats = sorted(_checked_entries(data, "categories", json_path), key=lambda c: c["id"])
    if not cats:
        raise InputError(json_path, "no categories")
    names: set[str] = set()
    for cat in cats:
        name = cat["name"]
        if not isinstance(name, str) or not name.strip():
            raise InputError(json_path, f"category id {cat['id']}: name must be a non-empty string")
        if name in names:
            raise InputError(json_path, f"category id {cat['id']}: duplicate category name {name!r}")
        names.add(name)
    return tuple(c["name"] for c in cats), tuple(c["id"] for c in cats)


def _check_image(img: dict[str, Any], image_dir: Path, json_path: Path) -> tuple[tuple[int, int], Path]:
    """((height, width), image file) of one image entry, checked."""
    where = f"image id {img['id']}"
    height, width = img["height"], img["width"]
    if not (_is_number(height) and _is_number(width) and height == int(height) and width == int(width)
            and height > 0 and width > 0):  # fmt: skip
        raise InputError(json_path, f"{where}: height and width must be positive integers, got {height!r} x {width!r}")
    name = img["file_name"]
    if not isinstance(name, str) or not name:
        raise InputError(json_path, f"{where}: file_name must be a non-empty string")
    if Path(name).is_absolute() or ".." in Path(name).parts or "\\" in name or "\0" in name:
        raise InputError(json_path, f"{where}: file_name {name!r} must be a path inside the image folder "
                                    "(no absolute path, '..' or backslash); refused before opening any file")
    path = image_dir / name
    if not path.is_file():
        raise InputError(json_path, f"{where}: image file {path} not found")
    check_inside(path, image_dir)  # a symlink in the image folder may still point elsewhere
    return (int(height), int(width)), path


def _box(ann: dict[str, Any], size: tuple[int, int], json_path: Path) -> list[float] | None:
    """One annotation's bbox -> [x1, y1, x2, y2] clipped to the image; None for a zero-size box."""
    where = f"annotation id {ann['id']}"
    bbox = ann["bbox"]
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        raise InputError(json_path, f"{where}: bbox must be 4 finite numbers [x, y, width, height], got {bbox!r}")
    x, y, w, h = (float(v) for v in bbox)
    if w < 0 or h < 0:
        raise InputError(json_path, f"{where}: bbox {bbox} has a negative width or height")
    if w == 0 or h == 0:
        log.warning("%s: %s: bbox %s has zero width or height; skipped", json_path, where, bbox)
        return None
    height, width = size
    box = [x, y, x + w, y + h]
    tol = [max(OUTSIDE_TOLERANCE_PX, OUTSIDE_TOLERANCE_FRAC * s) for s in (width, height)]
    clipped = [max(box[0], 0.0), max(box[1], 0.0), min(box[2], float(width)), min(box[3], float(height))]
    far = box[0] < -tol[0] or box[1] < -tol[1] or box[2] > width + tol[0] or box[3] > height + tol[1]
    if far or clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        raise InputError(json_path, f"{where}: bbox {bbox} lies outside its {width} x {height} image")
    if clipped != box:
        log.warning("%s: %s: bbox %s sticks out of the %d x %d image; clipped", json_path, where, bbox, width, height)
    return clipped


def _objects(data: dict[str, Any], sizes: dict[int, tuple[int, int]], label_of: dict[int, int],
             json_path: Path) -> dict[int, list[tuple[list[float], int, bool]]]:  # fmt: skip
    """COCO image id -> [(box, class id, crowd)] in file order, every annotation checked."""
    objects: dict[int, list[tuple[list[float], int, bool]]] = {i: [] for i in sizes}
    for ann in _checked_entries(data, "annotations", json_path):
        where = f"annotation id {ann['id']}"
        if ann["image_id"] not in sizes:
            raise InputError(json_path, f"{where}: image_id {ann['image_id']!r} is not in 'images'")
        if ann["category_id"] not in label_of:
            raise InputError(json_path, f"{where}: category_id {ann['category_id']!r} is not in 'categories'")
        crowd = ann.get("iscrowd", 0)
        if crowd not in (0, 1):  # True/False compare equal to 1/0
            raise InputError(json_path, f"{where}: iscrowd must be 0 or 1, got {crowd!r}")
        box = _box(ann, sizes[ann["image_id"]], json_path)
        if box is not None:
            objects[ann["image_id"]].append((box, label_of[ann["category_id"]], bool(crowd)))
    return objects


def load_coco(json_path: Path, image_dir: Path, split: str | None = None) -> Dataset:
    """Load a COCO json annotation file.

    Args:
        json_path: the instances json (images, annotations, categories).
        image_dir: the folder that the images' ``file_name`` entries are relative to.
        split: the name the dataset goes by in result file names and caches (default: the json's stem).
    Returns:
        a :class:`Dataset` whose ``root`` is ``image_dir``, records sorted by COCO image id, image
        ids the COCO ids as strings, classes from the categories sorted by id, and ``coco`` set.
    Raises:
        InputError: naming the json file and the entry, for a missing or invalid json or a bad
            entry (see the module docstring for the list).
    """
    json_path, image_dir = Path(json_path), Path(image_dir)
    if not image_dir.is_dir():
        raise InputError(image_dir, "image folder not found")
    data = _read_json(json_path)
    classes, category_ids = _categories(data, json_path)
    images = sorted(_checked_entries(data, "images", json_path), key=lambda im: im["id"])
    checked = {img["id"]: _check_image(img, image_dir, json_path) for img in images}
    objects = _objects(data, {i: size for i, (size, _) in checked.items()}, {c: k for k, c in enumerate(category_ids)},
                       json_path)  # fmt: skip
    records = []
    for coco_id, (size, path) in checked.items():
        objs = objects[coco_id]
        g = len(objs)
        records.append(ImageRecord(
            image_id=str(coco_id),
            path=path,
            size=size,
            boxes=np.asarray([o[0] for o in objs], np.float32).reshape(g, 4),
            labels=np.asarray([o[1] for o in objs], np.int64),
            difficult=np.asarray([o[2] for o in objs], bool),
            truncated=np.zeros(g, bool),  # COCO has no truncation flag
        ))  # fmt: skip
    ids = CocoIds(ann_file=json_path, category_ids=category_ids, image_ids={str(i): i for i in checked})
    log.info("loaded %s: %d images, %d objects, %d classes", json_path, len(records),
             sum(r.num_objects for r in records), len(classes))  # fmt: skip
    return Dataset(root=image_dir, split=split or json_path.stem, classes=classes, records=tuple(records), coco=ids)


def dataset_to_coco(dataset: Dataset, image_dir: Path) -> dict[str, Any]:
    """A dataset (e.g. a VOC split) as a COCO instances json object.

    Images are numbered 1..N in record order and categories 1..K in class order (COCO keeps 0
    for "no id"); ``file_name`` is each image's path relative to ``image_dir``; ``difficult``
    objects become ``iscrowd`` ones. VOC's ``truncated`` flag has no COCO counterpart and is
    dropped. Boxes are written unrounded, so :func:`load_coco` gives back the same boxes.
    """
    image_dir = Path(image_dir)
    images, annotations = [], []
    for n, rec in enumerate(dataset.records, start=1):
        try:
            file_name = Path(rec.path).relative_to(image_dir).as_posix()
        except ValueError:
            raise InputError(rec.path, f"image is not inside the image folder {image_dir}") from None
        images.append({"id": n, "file_name": file_name, "height": int(rec.size[0]), "width": int(rec.size[1])})
        for box, label, diff in zip(np.asarray(rec.boxes, np.float64), rec.labels, rec.difficult):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            annotations.append({"id": len(annotations) + 1, "image_id": n, "category_id": int(label) + 1,
                                "bbox": [float(box[0]), float(box[1]), w, h], "area": w * h,
                                "iscrowd": int(bool(diff))})  # fmt: skip
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(dataset.classes)]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_coco(json_path: Path, dataset: Dataset, image_dir: Path | None = None) -> Path:
    """Write ``dataset`` as a COCO json (atomically); ``image_dir`` defaults to the folder of the
    first image. Returns ``json_path``. See :func:`dataset_to_coco`."""
    if image_dir is None:
        image_dir = Path(dataset.records[0].path).parent if dataset.records else Path(dataset.root)
    atomic_write_text(Path(json_path), json.dumps(dataset_to_coco(dataset, image_dir)) + "\n")
    log.info("wrote %s: %d images", json_path, len(dataset.records))
    return Path(json_path)


def voc_to_coco(voc_root: Path, splits: Sequence[str], out_dir: Path) -> list[Path]:
    """Convert splits of a VOC-layout folder to ``out_dir/<split>.json`` with ``file_name``
    relative to ``voc_root/JPEGImages`` (pass that folder as the image folder)."""
    return [write_coco(Path(out_dir) / f"{s}.json", load_voc(voc_root, s), Path(voc_root) / "JPEGImages")
            for s in splits]  # fmt: skip
