"""Detection result files in the VOC devkit's own format, so the MATLAB devkit can score them too.

One text file per class, ``<det_dir>/<comp>_det_<split>_<class>.txt`` (``comp4``: methods trained
on data outside VOC, such as our ImageNet pre-training), one detection per line:

    <image_id> <score> <xmin> <ymin> <xmax> <ymax>

with VOC's 1-based pixel coordinates: xmin = x1 + 1, ymin = y1 + 1, xmax = x2, ymax = y2 (the
inverse of the VOC reader). Each coordinate is written as the shortest decimal that reads back as
the same double (Python's ``repr``: ``12.0``, ``20.25``, ``313.8999938964844``), so reading a file
gives back our float32 boxes exactly and ``tools/eval_voc.py`` scores our files to the AP that
``test_det`` prints. (py-faster-rcnn's 1 decimal, ours until 2026-11-26, gave arrow AP 16.8 from
the files against 18.5 in memory on a real run; the rounding was the only difference.) Scores
are written with 9 significant digits, which round-trips a float32 exactly (so the ranking, and
ties, survive). Images are written in the order given (pass split order, so that the devkit's
stable sort breaks score ties the way :func:`eval.voc_ap.evaluate_voc` does on our in-memory
detections). A class whose file is absent has no detections.

Reading keeps each class file's line order (and its numbers as doubles) beside the per-image view,
so a file written by another tool, in any order, is scored with the devkit's tie order.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from data.cache import atomic_write_text
from data.errors import InputError
from data.records import Detections
from eval.voc_ap import ClassDetections, LineOrderedDetections

log = logging.getLogger(__name__)

DEFAULT_COMP = "comp4"  # VOC devkit: comp4 = detection trained on any data (we use ImageNet)


def result_path(det_dir: Path, split: str, class_name: str, comp: str = DEFAULT_COMP) -> Path:
    """The devkit's ``VOCopts.detrespath`` for one class."""
    return Path(det_dir) / f"{comp}_det_{split}_{class_name}.txt"


def write_result_files(
    det_dir: Path,
    detections: Mapping[str, Detections],
    classes: Sequence[str],
    split: str,
    comp: str = DEFAULT_COMP,
) -> list[Path]:
    """Write one devkit result file per class (atomically), every class even when empty.

    Args:
        det_dir: output folder (created).
        detections: image_id -> Detections with 0-based boxes; written in this mapping's order.
        classes: the K class names; Detections.labels index them.
        split: the split name in the file names ("test").
        comp: the devkit competition prefix.

    Returns:
        the K paths written, in class order.
    """
    lines: list[list[str]] = [[] for _ in classes]
    for image_id, det in detections.items():
        boxes = np.asarray(det.boxes, np.float64).reshape(-1, 4)
        for box, score, label in zip(boxes, np.asarray(det.scores), np.asarray(det.labels)):
            xmin, ymin, xmax, ymax = (repr(float(v)) for v in (box[0] + 1, box[1] + 1, box[2], box[3]))
            lines[int(label)].append(f"{image_id} {float(score):.9g} {xmin} {ymin} {xmax} {ymax}\n")
    paths = []
    for name, class_lines in zip(classes, lines):
        path = result_path(det_dir, split, name, comp)
        atomic_write_text(path, "".join(class_lines))
        paths.append(path)
    log.info("wrote %d result files to %s", len(paths), det_dir)
    return paths


def _parse_line(path: Path, number: int, line: str, known: set[str]) -> tuple[str, float, list[float]]:
    """One result line -> (image_id, score, [x1, y1, x2, y2] 0-based); InputError if malformed."""
    fields = line.split()
    where = f"{path}, line {number}"
    if len(fields) != 6:
        raise InputError(where, f"expected '<image_id> <score> <xmin> <ymin> <xmax> <ymax>', got {line.strip()!r}")
    try:
        values = [float(v) for v in fields[1:]]
    except ValueError:
        raise InputError(where, f"score and box must be numbers, got {line.strip()!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise InputError(where, f"score and box must be finite, got {line.strip()!r}")
    if fields[0] not in known:
        raise InputError(where, f"image id {fields[0]!r} is not in the split")
    score, xmin, ymin, xmax, ymax = values
    box = [xmin - 1.0, ymin - 1.0, xmax, ymax]  # the VOC reader's 1-based -> 0-based conversion
    if box[2] < box[0] or box[3] < box[1]:
        raise InputError(where, f"box has x2 < x1 or y2 < y1 after conversion to 0-based: {line.strip()!r}")
    return fields[0], score, box


def read_result_files(
    det_dir: Path,
    classes: Sequence[str],
    split: str,
    image_ids: Sequence[str],
    comp: str = DEFAULT_COMP,
) -> LineOrderedDetections:
    """Read devkit result files back into per-image detections, remembering each file's line order.

    Args:
        det_dir: the folder holding ``<comp>_det_<split>_<class>.txt`` files.
        classes: the K class names (label k = classes[k]); a missing file = no detections.
        split: the split name in the file names.
        image_ids: the ids of the split, in split order.
        comp: the devkit competition prefix.

    Returns:
        a mapping image_id -> Detections (0-based boxes, float32) for every id of the split, in
        split order, within an image in class order then file order; its ``by_class[k]`` holds
        class k's lines in file order (float64), which :func:`eval.voc_ap.evaluate_voc` ranks.

    Raises:
        InputError: a malformed line (file and line number), an image id not in the split, a box
            with x2 < x1 or y2 < y1, or an unreadable file.
    """
    known = set(image_ids)
    per_image: dict[str, tuple[list, list, list]] = {i: ([], [], []) for i in image_ids}
    if not Path(det_dir).is_dir():
        raise InputError(det_dir, "detection folder does not exist")
    by_class = []
    for k, name in enumerate(classes):
        lines = [_parse_line(path, n, line, known) for path, n, line in _class_lines(det_dir, split, name, comp)]
        for image_id, score, box in lines:
            boxes, scores, labels = per_image[image_id]
            boxes.append(box)
            scores.append(score)
            labels.append(k)
        by_class.append(
            ClassDetections(
                tuple(line[0] for line in lines),
                np.asarray([line[1] for line in lines], np.float64),
                np.asarray([line[2] for line in lines], np.float64).reshape(-1, 4),
            )
        )
    images = {
        i: Detections(
            np.asarray(b, np.float32).reshape(-1, 4), np.asarray(s, np.float32), np.asarray(lab, np.int64)
        )
        for i, (b, s, lab) in per_image.items()
    }
    return LineOrderedDetections(images, tuple(by_class))


def _class_lines(det_dir: Path, split: str, name: str, comp: str) -> list[tuple[Path, int, str]]:
    """(path, 1-based line number, line) of every non-blank line of a class's file; [] if absent."""
    path = result_path(det_dir, split, name, comp)
    if not path.is_file():
        log.info("no result file %s: class %r has no detections", path.name, name)
        return []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, f"cannot read result file ({err})") from None
    return [(path, n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
