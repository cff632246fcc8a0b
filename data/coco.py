"""COCO-format annotations (a json file plus an image folder) as a :class:`Dataset`.

COCO boxes are ``[x, y, width, height]`` in continuous 0-based pixels, so they need no 1-based
shift: ``x1, y1, x2, y2 = x, y, x + width, y + height``. Class ids are the categories sorted by
their COCO id, renumbered 0..K-1; ``iscrowd`` regions become ``difficult`` (neither rewarded nor
penalised by the VOC-style evaluation). The json is read with ``pycocotools``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO

from data.errors import InputError
from data.records import Dataset, ImageRecord

log = logging.getLogger(__name__)


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


def _index(data: dict[str, Any], json_path: Path) -> COCO:
    coco = COCO()
    coco.dataset = data
    # pycocotools prints progress to stdout; keep stdout for the tools' own output.
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
    except (KeyError, TypeError) as err:
        raise InputError(json_path, f"malformed COCO entry (missing or bad field {err})") from None
    return coco


def _image_record(coco: COCO, img: dict[str, Any], label_of: dict[int, int], image_dir: Path,
                  json_path: Path) -> ImageRecord:  # fmt: skip
    try:
        height, width, file_name = int(img["height"]), int(img["width"]), str(img["file_name"])
    except (KeyError, TypeError, ValueError):
        raise InputError(json_path, f"image {img.get('id')!r} lacks a valid height/width/file_name") from None
    path = image_dir / file_name
    if not path.is_file():
        raise InputError(path, f"image file of COCO image {img['id']!r} not found")
    boxes, labels, crowd = [], [], []
    for ann in coco.imgToAnns.get(img["id"], []):
        try:
            x, y, w, h = (float(v) for v in ann["bbox"])
            label = label_of[ann["category_id"]]
        except (KeyError, TypeError, ValueError):
            raise InputError(json_path, f"annotation {ann.get('id')!r} has a bad bbox or category_id") from None
        if w <= 0 or h <= 0:
            log.warning("%s: annotation %r has an empty box; skipped", json_path, ann.get("id"))
            continue
        box = [max(x, 0.0), max(y, 0.0), min(x + w, float(width)), min(y + h, float(height))]
        if box[2] <= box[0] or box[3] <= box[1]:
            raise InputError(json_path, f"annotation {ann.get('id')!r} lies outside its {width} x {height} image")
        boxes.append(box)
        labels.append(label)
        crowd.append(bool(ann.get("iscrowd", 0)))
    g = len(boxes)
    return ImageRecord(
        image_id=str(img["id"]),
        path=path,
        size=(height, width),
        boxes=np.asarray(boxes, np.float32).reshape(g, 4),
        labels=np.asarray(labels, np.int64),
        difficult=np.asarray(crowd, bool),
        truncated=np.zeros(g, bool),  # COCO has no truncation flag
    )


def load_coco(json_path: Path, image_dir: Path) -> Dataset:
    """Load a COCO json annotation file.

    Args:
        json_path: the instances json (images, annotations, categories).
        image_dir: the folder that the images' ``file_name`` entries are relative to.
    Returns:
        a :class:`Dataset` named after the json's stem, records sorted by COCO image id, classes
        from the categories sorted by id.
    Raises:
        InputError: naming the file, for a missing/invalid json, a bad entry or a missing image.
    """
    json_path, image_dir = Path(json_path), Path(image_dir)
    data = _read_json(json_path)
    coco = _index(data, json_path)
    try:
        cats = sorted(data["categories"], key=lambda c: c["id"])
        classes = tuple(str(c["name"]) for c in cats)
        label_of = {c["id"]: i for i, c in enumerate(cats)}
    except (KeyError, TypeError):
        raise InputError(json_path, "every category needs an 'id' and a 'name'") from None
    if not classes:
        raise InputError(json_path, "no categories")
    images = sorted(coco.imgs.values(), key=lambda im: im["id"])
    records = tuple(_image_record(coco, img, label_of, image_dir, json_path) for img in images)
    log.info("loaded %s: %d images, %d classes", json_path, len(records), len(classes))
    return Dataset(root=image_dir, split=json_path.stem, classes=classes, records=records)
