"""Objects per class of a split, counted before any work, and the check that every class can be trained.

Real datasets often lack a class in a split: a VOC subset, a COCO subset, a user's own labels. A
class without a single training object gets no positive window, so its SVM cannot be trained;
found at the SVM stage, that was an hour into a run. :func:`check_trainable` decides it first.

"Objects" are the non-difficult ones (COCO: not iscrowd): the devkit ignores difficult objects,
and training takes no positive from them (R-CNN's rcnn_train.m), so a class with only difficult
objects is as untrainable as one with none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from data.errors import InputError
from data.records import Dataset

log = logging.getLogger(__name__)

SKIP_MISSING_SETTING = "--set missing_classes=skip"  # the way out the error names (detection.config)


@dataclass(frozen=True)
class ClassCounts:
    """What one split holds of each class.

    Attributes:
        classes: the K class names.
        objects: (K,) int64 non-difficult objects of each class.
        difficult: (K,) int64 difficult (COCO: iscrowd) objects of each class.
        images: (K,) int64 images holding at least one non-difficult object of each class.
    """

    classes: tuple[str, ...]
    objects: np.ndarray
    difficult: np.ndarray
    images: np.ndarray

    @property
    def missing(self) -> tuple[str, ...]:
        """The classes without a single non-difficult object, in class-id order."""
        return tuple(c for c, n in zip(self.classes, self.objects) if n == 0)


def count_objects(dataset: Dataset) -> ClassCounts:
    """Count the objects and images of each class of ``dataset`` (annotations only, no image read)."""
    k = dataset.num_classes
    objects, difficult, images = (np.zeros(k, np.int64) for _ in range(3))
    for record in dataset.records:
        labels = np.asarray(record.labels, np.int64)
        hard = np.asarray(record.difficult, bool)
        objects += np.bincount(labels[~hard], minlength=k)
        difficult += np.bincount(labels[hard], minlength=k)
        images[np.unique(labels[~hard])] += 1
    return ClassCounts(tuple(dataset.classes), objects, difficult, images)


def format_counts(counts: ClassCounts, split: str) -> str:
    """A table of the split's objects per class, the classes without any marked."""
    width = max([len(c) for c in counts.classes] + [len("class")])
    lines = [f"{split}: objects per class (difficult apart)", f"{'class':<{width}}  objects  difficult  images"]
    for c, n, d, i in zip(counts.classes, counts.objects, counts.difficult, counts.images):
        lines.append(f"{c:<{width}}  {n:>7}  {d:>9}  {i:>6}" + ("  <- none" if n == 0 else ""))
    lines.append(f"{'all':<{width}}  {counts.objects.sum():>7}  {counts.difficult.sum():>9}")
    return "\n".join(lines)


def describe(dataset: Dataset) -> ClassCounts:
    """Count ``dataset``'s objects per class and log the table (every tool that reads a split)."""
    counts = count_objects(dataset)
    log.info("%s", format_counts(counts, dataset.split))
    return counts


def check_trainable(dataset: Dataset, policy: str) -> tuple[str, ...]:
    """Decide, before any work, what to do with classes that have no training object.

    Args:
        dataset: the training split.
        policy: "error" (default: refuse, naming the classes and both ways out) or "skip" (train
            the others; the missing ones get no detector, and their AP is reported as not available).
    Returns:
        the classes left untrained (empty unless ``policy`` is "skip").
    Raises:
        InputError: a class has no training object and ``policy`` is "error"; or no class has any.
    """
    counts = describe(dataset)
    missing = counts.missing
    where = dataset.coco.ann_file if dataset.coco is not None else dataset.root
    if len(missing) == len(counts.classes):
        raise InputError(where, f"split {dataset.split!r} has no (non-difficult) object of any class")
    if not missing:
        return ()
    names = ", ".join(missing)
    if policy == "skip":
        log.warning("split %s has no object of %d class(es): %s; training without them (no detections, AP not "
                    "available)", dataset.split, len(missing), names)
        return missing
    own_list = ("drop them from the json's categories" if dataset.coco is not None
                else f"list only the classes present in {dataset.root / 'classes.txt'}")
    raise InputError(where, f"split {dataset.split!r} has no (non-difficult) object of {len(missing)} class(es): "
                            f"{names}; {own_list}, or train without them: {SKIP_MISSING_SETTING} "
                            "(their AP is then reported as not available)")
