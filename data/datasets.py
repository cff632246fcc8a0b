"""Opening a dataset the one way every tool does: a VOC-layout folder, or a COCO json.

The arguments mirror the tools' flags, which mean the same in every tool:

* ``--data-root DIR [--split S]``: a VOC "year" folder and the split ``ImageSets/Main/<S>.txt``;
* ``--ann-file FILE --image-dir DIR [--split S]``: a COCO instances json and the folder its
  ``file_name`` entries are relative to; the split is then only the name used in result file
  names and caches (default: the json's stem, e.g. ``instances_val2017``).

A work dir remembers its training data (:func:`dataset_source`, kept in ``meta.json``) so that
testing can fall back to it (:func:`reopen_dataset`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from data.coco import load_coco
from data.errors import InputError
from data.records import Dataset
from data.voc import load_voc

log = logging.getLogger(__name__)

_EITHER = "--data-root DIR (VOC layout) or --ann-file FILE --image-dir DIR (COCO json)"


def open_dataset(data_root: Path | None = None, split: str | None = None, ann_file: Path | None = None,
                 image_dir: Path | None = None, default_split: str | None = None) -> Dataset:  # fmt: skip
    """Load a VOC split or a COCO json, whichever the arguments name.

    Args:
        data_root: a VOC "year" folder (Annotations/, JPEGImages/, ImageSets/Main/).
        split: VOC: the split to read; COCO: the dataset's name (default: the json's stem).
        ann_file: a COCO instances json (then ``image_dir`` is needed and ``data_root`` is not).
        image_dir: the folder the json's ``file_name`` entries are relative to.
        default_split: the VOC split when ``split`` is None (a tool's default, e.g. "test").
    Returns:
        the :class:`Dataset`; ``Dataset.coco`` is set for a COCO json.
    Raises:
        InputError: both kinds or neither given, half of the COCO pair, a VOC dataset without a
            split, or whatever the reader refuses.
    """
    if data_root is not None and (ann_file is not None or image_dir is not None):
        raise InputError("--data-root", f"give either {_EITHER}, not both")
    if ann_file is not None or image_dir is not None:
        if ann_file is None:
            raise InputError("--image-dir", "needs --ann-file FILE, the COCO json of the images")
        if image_dir is None:
            raise InputError("--ann-file", "needs --image-dir DIR, the folder its file_name entries are relative to")
        return load_coco(Path(ann_file), Path(image_dir), split)
    if data_root is None:
        raise InputError("dataset", f"give {_EITHER}")
    split = split or default_split
    if split is None:
        raise InputError("--split", f"needed with --data-root {data_root}: the split to read, e.g. trainval or test")
    return load_voc(Path(data_root), split)


def dataset_source(dataset: Dataset) -> dict[str, str | None]:
    """What a work dir keeps (in ``meta.json``) to open its training data's folder again:
    "data_root" for a VOC split, "ann_file" and "image_dir" for a COCO json, the others None (so
    that updating an older meta.json leaves no stale key behind)."""
    if dataset.coco is not None:
        return {"data_root": None, "ann_file": str(dataset.coco.ann_file), "image_dir": str(dataset.root)}
    return {"data_root": str(dataset.root), "ann_file": None, "image_dir": None}


def reopen_dataset(remembered: Mapping[str, str | None], data_root: Path | None = None, split: str | None = None,
                   ann_file: Path | None = None, image_dir: Path | None = None,
                   default_split: str | None = None) -> Dataset:  # fmt: skip
    """:func:`open_dataset` for a trained work dir: what is not given comes from ``remembered``
    (a :func:`dataset_source` dict).

    VOC: no --data-root -> the training folder, with ``split`` (or ``default_split``), as before.
    COCO: --ann-file without --image-dir -> the training image folder (a converted VOC set keeps
    all splits' images in one folder). No dataset flag at all -> the training json itself, with a
    warning, since those are the images the detector was trained on.
    """
    if data_root is None and ann_file is None:
        if image_dir is not None:
            return open_dataset(image_dir=image_dir)  # refused: --image-dir alone
        if remembered.get("ann_file") and remembered.get("image_dir"):
            log.warning("no --ann-file given: testing on the training annotations %s; pass --ann-file for held-out "
                        "images", remembered["ann_file"])  # fmt: skip
            return open_dataset(None, split, Path(remembered["ann_file"]), Path(remembered["image_dir"]))
        if remembered.get("data_root"):
            return open_dataset(Path(remembered["data_root"]), split, default_split=default_split)
        raise InputError("dataset", f"the work dir does not say what it was trained on; give {_EITHER}")
    if ann_file is not None and image_dir is None and remembered.get("image_dir"):
        image_dir = Path(remembered["image_dir"])
    return open_dataset(data_root, split, ann_file, image_dir, default_split)
