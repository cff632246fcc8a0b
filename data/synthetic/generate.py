"""Writing the synthetic benchmark in exactly the VOC layout.

``out/JPEGImages/<id>.jpg``, ``out/Annotations/<id>.xml`` (via :func:`data.voc_write.write_annotation`),
``out/ImageSets/Main/{train,val,trainval,test}.txt`` and ``out/classes.txt``, so every later stage
runs the same code as on real VOC.

Determinism: image i of split s is drawn from ``numpy.random.default_rng([seed, s, 0, i])`` alone,
so images do not depend on each other; JPEGs use a fixed quality and the XML carries no timestamp,
so the same seed gives byte-identical files, whether the images are drawn here or in worker
processes (``workers``: they draw and encode, this process writes every file). Class balance: the
classes of all objects of a split come from one stream made of shuffled blocks holding each of the
set's classes (the first ``num_classes`` of ``shapes.CLASSES``) once (block b shuffled by
``default_rng([seed, s, 1, b])``); image i takes the next n_i of them, n_i drawn from
``default_rng([seed, s, 2, i])``. Image ids: ``trainval_000000``...,
``test_000000``...; train and val are the even and odd trainval images.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from data.cache import atomic_write_bytes
from data.errors import InputError
from data.progress import track
from data.synthetic.compose import ComposeConfig, Composed, compose
from data.synthetic.shapes import BASE_CLASSES, CLASSES
from data.voc_write import write_annotation, write_classes, write_split
from data.workers import exit_with_parent

log = logging.getLogger(__name__)

SPLIT_CODES = {"trainval": 0, "test": 1}  # part of every seed: the splits never share an image


@dataclass(frozen=True)
class SyntheticConfig:
    """Image-level settings of the synthetic set."""

    # The set's classes are the first num_classes of data.synthetic.shapes.CLASSES: the 12 that
    # every set drew before the 8 added for VOC's 20 (voc07_20 preset), whose images do not change.
    num_classes: int = len(BASE_CLASSES)
    # VOC-like (height, width) sizes: VOC 2007's most common shapes, landscape more often.
    sizes: tuple[tuple[int, int], ...] = ((375, 500), (333, 500), (500, 375), (500, 333), (500, 500), (281, 500))
    size_probs: tuple[float, ...] = (0.4, 0.2, 0.15, 0.1, 0.1, 0.05)
    min_objects: int = 1  # brief: 1-8 annotated objects per image
    max_objects: int = 8
    # None: objects per image uniform in min..max (small preset). A number: min_objects plus a
    # negative binomial count of extra objects with this overall mean, capped at max_objects
    # (voc07 preset: many images hold one object, a few hold many). The binomial's shape sets the
    # tail: the lower, the more single-object images for the same mean (1 would be geometric).
    mean_objects: float | None = None
    objects_shape: float = 0.5
    jpeg_quality: int = 90  # fixed, so that files are reproducible
    compose: ComposeConfig = ComposeConfig()

    def __post_init__(self) -> None:
        if not 1 <= self.num_classes <= len(CLASSES):
            raise ValueError(f"num_classes must be in 1..{len(CLASSES)}, got {self.num_classes}")

    @property
    def classes(self) -> tuple[str, ...]:
        """The names of the set's classes (class id k is ``classes[k]``)."""
        return CLASSES[: self.num_classes]


# Settings added to SyntheticConfig since run records (tools/reproduce.py) began keeping the presets'
# settings, each at the value that draws what the presets drew before; see record_settings.
ADDED_SETTINGS: dict[str, object] = {"num_classes": len(BASE_CLASSES)}


def record_settings(settings: dict) -> dict:
    """A preset's settings as run records keep them: ``settings`` (a SyntheticConfig as a plain dict)
    less the :data:`ADDED_SETTINGS` at their old value, so that adding a setting leaves the records
    (and the hashes naming their work dirs) of the presets that draw as before unchanged."""
    return {k: v for k, v in settings.items() if k not in ADDED_SETTINGS or v != ADDED_SETTINGS[k]}


# The VOC-sized regime, shape alone telling the classes apart (see PRESETS).
_VOC07_SHAPES = SyntheticConfig(
    max_objects=20,  # VOC has crowds too; the tail past 20 is negligible at this mean
    mean_objects=3.3,  # ~3.1 annotated after occlusion, as VOC07's ~15.7k objects / 5,011 images
    compose=ComposeConfig(
        rel_side_median=0.55,  # drawn; visible boxes come out ~0.32 after crowding, occlusion, cropping
        rel_side_sigma=0.85,
        aspect_median=0.85,  # drawn; circles, ellipses and cropping pull the measured median to ~0.95
        aspect_sigma=0.65,  # the box aspect each shape is stretched toward ...
        max_stretch=1.6,  # ... by at most 1.6x: a square stretched 3x is no square (a logistic
        # regression on frozen ground-truth pool5 vectors told 30 % of test shapes apart without
        # the cap and upright shapes, 39 % with them, capped at 1.4x); VOC's wide and tall boxes
        # come from elongated shapes standing wide or tall, as cars and persons do:
        upright=15.0,  # a quarter turn tilted by at most 15 degrees, not any rotation
        max_outside=0.08,  # big objects cross the border anyway: ~40 % truncated
        hidden_frac=0.75,  # with bigger, more occluding objects: ~19 % difficult
        max_distractors=2,
    ),
)

# Named regimes. "small" is the original set (the tests' tiny sets use it): 1-8 objects per image, small
# objects (median sqrt(area) ~47 px, ~60 % under 64 px), shapes at their own aspect. "voc07" stands
# in for PASCAL VOC 2007 (the default): about 3.1 objects per image (2.5 non-difficult), VOC-sized
# objects (median sqrt(box area) / sqrt(image area) ~0.33), box aspects from tall to wide, ~40 %
# truncated, ~19 % difficult. Its parameters were tuned (seed 0, 200 trainval images) until the
# set's measured statistics met data.synthetic.stats.VOC07_REFERENCE, which cites the source of
# each target; the box aspects stay narrower than VOC's (p10 / p90 0.56 / 1.71 against ~0.45 /
# ~2.1), the price of shapes that keep their identity (max_stretch below). In "voc07" 95 % of the
# objects wear one of their class's typical looks (data.synthetic.appearance), so that frozen
# ImageNet features tell the classes apart about as well as on VOC (a linear probe on ground-truth
# boxes, tools/probe.py: 75 % top-1; the candidates measured are in docs/datasets.md).
# "voc07_shape" is the same set with random fills only: shape alone tells a class, the hard case
# on which ImageNet features transfer poorly (probe 49 %), the default before typical looks.
# "voc07_20" is "voc07" with VOC's 20 classes instead of 12: the same regime, the 12 classes with
# their shapes and looks, and 8 more drawn as often (so other images than voc07's, each class
# sharing a look with its most confusable partner among the new ones); with --num-trainval 5011
# --num-test 4952, a set of VOC 2007's size. Every other preset draws the 12 base classes.
_VOC07 = replace(_VOC07_SHAPES, compose=replace(_VOC07_SHAPES.compose, typicality=0.95))
PRESETS: dict[str, SyntheticConfig] = {
    "small": SyntheticConfig(),
    "voc07": _VOC07,
    "voc07_shape": _VOC07_SHAPES,
    "voc07_20": replace(_VOC07, num_classes=20),
}
DEFAULT_PRESET = "voc07"  # what tools/make_synthetic.py writes without --preset: make run's set


def image_id(split: str, index: int) -> str:
    return f"{split}_{index:06d}"


def _class_stream(seed: int, split: str, count: int, num_classes: int) -> list[int]:
    """The first ``count`` object classes of a split, ids in 0..num_classes - 1 (balanced blocks, see
    module docstring)."""
    out: list[int] = []
    block = 0
    while len(out) < count:
        rng = np.random.default_rng([seed, SPLIT_CODES[split], 1, block])
        out.extend(int(c) for c in rng.permutation(num_classes))
        block += 1
    return out[:count]


def _object_count(rng: np.random.Generator, cfg: SyntheticConfig) -> int:
    if cfg.mean_objects is None:
        return int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    mean_extra, r = cfg.mean_objects - cfg.min_objects, cfg.objects_shape
    extra = rng.negative_binomial(r, r / (r + mean_extra))  # mean r (1 - p) / p = mean_extra
    return int(min(cfg.min_objects + extra, cfg.max_objects))


def _object_counts(seed: int, split: str, num: int, cfg: SyntheticConfig) -> list[int]:
    return [_object_count(np.random.default_rng([seed, SPLIT_CODES[split], 2, i]), cfg) for i in range(num)]


@dataclass(frozen=True)
class _Drawn:
    """One image drawn and JPEG-encoded: what a worker sends back for the parent to write."""

    name: str
    size: tuple[int, int]  # (height, width)
    jpeg: bytes
    composed: Composed  # its annotations (the pixels are in ``jpeg``: ``image`` is empty)


def _draw_image(split: str, index: int, classes: list[int], seed: int, cfg: SyntheticConfig) -> _Drawn:
    """Draw one image from its own seed and encode it (pure: the same arguments, the same bytes)."""
    rng = np.random.default_rng([seed, SPLIT_CODES[split], 0, index])
    size = cfg.sizes[int(rng.choice(len(cfg.sizes), p=cfg.size_probs))]
    img = compose(size, classes, rng, cfg.compose)
    name = image_id(split, index)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img.image, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])  # fmt: skip
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {name}")
    return _Drawn(name, size, buf.tobytes(), replace(img, image=np.zeros((0, 0, 3), np.uint8)))


def _draw_task(task: tuple[str, int, list[int], int, SyntheticConfig]) -> _Drawn:
    return _draw_image(*task)


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which ends the pool
    exit_with_parent()
    cv2.setNumThreads(1)  # one of ``workers`` processes sharing the cores


def _drawn_in_order(tasks: list[tuple[str, int, list[int], int, SyntheticConfig]], workers: int) -> Iterator[_Drawn]:
    """Each task's image, in task order: here, or from ``workers`` processes (the same bytes)."""
    if workers <= 1 or len(tasks) < 2:
        yield from map(_draw_task, tasks)
        return
    with mp.get_context("forkserver").Pool(min(workers, len(tasks)), initializer=_init_worker) as pool:
        yield from pool.imap(_draw_task, tasks, chunksize=4)


def generate(out: Path, num_trainval: int = 200, num_test: int = 100, seed: int = 0,
             cfg: SyntheticConfig = SyntheticConfig(), workers: int = 1, show_progress: bool = True) -> None:  # fmt: skip
    """Write the synthetic dataset into ``out`` (VOC layout, see module docstring).

    Args:
        out: the dataset folder (created; existing files of the same names are overwritten).
        num_trainval: images in trainval (train = even, val = odd ones).
        num_test: images in test.
        seed: the seed of everything.
        cfg: the regime; by default the small preset's (``PRESETS["voc07"]`` is the CLI's default).
        workers: processes drawing and encoding images (each image has its own seed, so the files
            are byte-identical whatever this is); this process writes every file.
        show_progress: a bar per split; False: a log line every 5 minutes (``data.progress``).
    """
    if num_trainval < 2 or num_test < 1:
        raise InputError(out, f"need at least 2 trainval and 1 test images, got {num_trainval} and {num_test}")
    out = Path(out)
    write_classes(out, cfg.classes)
    for split, num in (("trainval", num_trainval), ("test", num_test)):
        counts = _object_counts(seed, split, num, cfg)
        stream = _class_stream(seed, split, sum(counts), cfg.num_classes)
        starts = np.concatenate([[0], np.cumsum(counts)])
        objects = difficult = 0
        tasks = [(split, i, stream[starts[i] : starts[i + 1]], seed, cfg) for i in range(num)]
        for drawn in track(_drawn_in_order(tasks, workers), total=num, desc=f"synthetic {split}",
                           show=show_progress, leave=False):
            img = drawn.composed
            atomic_write_bytes(out / "JPEGImages" / f"{drawn.name}.jpg", drawn.jpeg)
            write_annotation(out / "Annotations" / f"{drawn.name}.xml", drawn.name, drawn.size, img.boxes,
                             img.labels, img.difficult, img.truncated, cfg.classes)  # fmt: skip
            objects, difficult = objects + len(img.labels), difficult + int(img.difficult.sum())
        ids = [image_id(split, i) for i in range(num)]
        write_split(out, split, ids)
        if split == "trainval":
            write_split(out, "train", ids[0::2])
            write_split(out, "val", ids[1::2])
        log.info("synthetic %s: %d images, %d objects (%d difficult)", split, num, objects, difficult)
