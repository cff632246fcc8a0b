"""Classification images of any size and aspect, and the crops / views the classifier sees.

An :class:`ImageSet` holds images at a fixed SHORTER side (``TrainConfig.image_side``, 8/7 of the
training crop as ImageNet's 256 / 224) and their labels. Two sources:

- the embedded set (:func:`embedded_sets`): ``data.synthetic.classify``, drawn from a seed and
  cached as one ``.npz`` per split under ``CACHE/cls_embedded/<key>/``;
- a folder in torchvision's ImageFolder layout (:func:`folder_sets`): ``ROOT/<class>/<image>``,
  classes sorted by name; ``ROOT/train/`` and ``ROOT/val/`` (or ``test/``) when present, else a
  seeded per-class held-out split. Every image is read by ``data.images.read_image``, so a bad file
  is an error naming it; an empty class folder is an error naming the class.

Views (numbered as the paper's tests): a random crop with a random flip (training), the center
crop, and the full image (any size: what pyramid pooling allows).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from data.cache import ArraySpec, load_arrays, params_key, save_arrays
from data.errors import InputError
from data.images import read_image
from data.progress import track
from data.synthetic import classify
from detection.classification.config import EmbeddedSetConfig

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's
EMBEDDED_VERSION = 2  # bump when data.synthetic.classify draws different images (2: objects at varied scales)


@dataclass(frozen=True)
class ImageSet:
    """Images (each (H, W, 3) uint8 RGB, shorter side fixed) with labels 0..K-1 into ``classes``."""

    images: tuple[np.ndarray, ...]
    labels: np.ndarray  # (N,) int64
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.images)

    def majority_rate(self) -> float:
        """Accuracy of always answering the most frequent class."""
        return float(np.bincount(self.labels, minlength=len(self.classes)).max() / max(1, len(self.labels)))


def resize_shorter(image: np.ndarray, side: int) -> np.ndarray:
    """(H, W, 3) -> the same image with its shorter side ``side`` (aspect kept)."""
    h, w = image.shape[:2]
    if min(h, w) == side:
        return image
    scale = side / min(h, w)
    size = (max(side, int(round(w * scale))), max(side, int(round(h * scale))))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interp)


# ----------------------------------------------------------------------------- the embedded set


def _pack(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Variable-size images -> (P,) uint8 pixels and (N, 2) shapes, for one .npz without pickle."""
    shapes = np.array([im.shape[:2] for im in images], np.int64).reshape(-1, 2)
    return np.concatenate([im.reshape(-1) for im in images]), shapes


def _unpack(pixels: np.ndarray, shapes: np.ndarray) -> tuple[np.ndarray, ...]:
    sizes = shapes[:, 0] * shapes[:, 1] * 3
    starts = np.concatenate([[0], np.cumsum(sizes)])
    return tuple(pixels[starts[i]:starts[i + 1]].reshape(h, w, 3) for i, (h, w) in enumerate(shapes))


_SPLIT_LAYOUT = {"pixels": ArraySpec((None,), "u"), "shapes": ArraySpec(("N", 2), "iu"),
                 "labels": ArraySpec(("N",), "iu")}


def _embedded_split(split: str, count: int, side: int, data: EmbeddedSetConfig, folder: Path,
                    progress: bool) -> ImageSet:
    path = folder / f"{split}.npz"
    cached = load_arrays(path, _SPLIT_LAYOUT)
    if (cached is not None and len(cached["labels"]) == count
            and cached["pixels"].size == int(cached["shapes"].prod(1).sum()) * 3):  # else: incomplete, draw again
        return ImageSet(_unpack(cached["pixels"], cached["shapes"]), cached["labels"].astype(np.int64),
                        classify.CLASSES)
    images, labels = [], []
    for i in track(range(count), desc=f"drawing {split} images", show=progress, leave=False):
        images.append(classify.draw_sample(classify.sample_label(i), side, classify.sample_rng(split, i, data.seed),
                                           data.typicality, data.object_share))
        labels.append(classify.sample_label(i))
    pixels, shapes = _pack(images)
    save_arrays(path, pixels=pixels, shapes=shapes, labels=np.asarray(labels, np.int64))
    return ImageSet(tuple(images), np.asarray(labels, np.int64), classify.CLASSES)


def embedded_sets(data: EmbeddedSetConfig, side: int, cache_dir: Path, progress: bool = True) -> tuple[ImageSet, ImageSet]:
    """(train, held-out) of the embedded set ``data`` at shorter side ``side``, drawn once and cached
    (keyed by every parameter)."""
    k = len(classify.CLASSES)
    params = {"train": data.train_per_class * k, "test": data.test_per_class * k, "side": side, "seed": data.seed,
              "version": EMBEDDED_VERSION, "typicality": data.typicality, "object_share": list(data.object_share)}
    folder = Path(cache_dir) / "cls_embedded" / params_key(params)
    train = _embedded_split("train", data.train_per_class * k, side, data, folder, progress)
    test = _embedded_split("test", data.test_per_class * k, side, data, folder, progress)
    log.info("embedded classification set (%s): %d train, %d held-out images, %d classes, shorter side %d",
             folder, len(train), len(test), k, side)
    return train, test


# ----------------------------------------------------------------------------- ImageFolder


def class_files(root: Path) -> dict[str, list[Path]]:
    """{class: sorted image files} of an ImageFolder tree; errors name the folder or the class."""
    if not root.is_dir():
        raise InputError(root, "not a folder (expected one sub-folder of images per class)")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InputError(root, "no class sub-folders (expected ROOT/<class>/<image>, torchvision's ImageFolder)")
    files = {}
    for name in classes:
        found = sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not found:
            raise InputError(root / name, f"class {name!r} has no images ({', '.join(IMAGE_EXTENSIONS)})")
        files[name] = found
    return files


def _read_set(files: dict[str, list[Path]], classes: tuple[str, ...], side: int, desc: str,
              progress: bool) -> ImageSet:
    pairs = [(path, classes.index(name)) for name, paths in files.items() for path in paths]
    images = tuple(resize_shorter(read_image(path), side)
                   for path, _ in track(pairs, desc=desc, show=progress, leave=False))
    return ImageSet(images, np.array([label for _, label in pairs], np.int64), classes)


def folder_sets(root: Path, side: int, held_out_fraction: float, seed: int,
                progress: bool = True) -> tuple[ImageSet, ImageSet]:
    """(train, held-out) from an ImageFolder tree, images resized to shorter side ``side``.

    ``root/train`` and ``root/val`` (or ``root/test``) are used as they are when both exist (same
    classes required); otherwise each class's files are split with a seeded permutation, at least
    one image each way (so a class needs two images).
    """
    root = Path(root)
    held_dir = next((root / n for n in ("val", "test") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and held_dir is not None:
        train_files, held_files = class_files(root / "train"), class_files(held_dir)
        if sorted(train_files) != sorted(held_files):
            raise InputError(held_dir, f"classes differ from {root / 'train'}'s")
    else:
        train_files, held_files = {}, {}
        for c, (name, paths) in enumerate(class_files(root).items()):
            if len(paths) < 2:
                raise InputError(root / name, f"class {name!r} has {len(paths)} image; at least 2 are needed "
                                 "(one to train on, one held out)")
            order = np.random.default_rng([seed, c]).permutation(len(paths))
            n_held = min(len(paths) - 1, max(1, int(round(held_out_fraction * len(paths)))))
            held_files[name] = [paths[i] for i in sorted(order[:n_held])]
            train_files[name] = [paths[i] for i in sorted(order[n_held:])]
    classes = tuple(sorted(train_files))
    train = _read_set(train_files, classes, side, "reading train images", progress)
    held = _read_set(held_files, classes, side, "reading held-out images", progress)
    log.info("image folder %s: %d train, %d held-out images, %d classes", root, len(train), len(held), len(classes))
    return train, held


# ----------------------------------------------------------------------------- views


def random_crops(images: list[np.ndarray], crop: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """One random ``crop`` x ``crop`` window per image, flipped with probability 1/2: (N, 3, crop, crop) uint8.

    All randomness comes from ``gen`` (so a resumed run draws the same crops).
    """
    out = np.empty((len(images), crop, crop, 3), np.uint8)
    draws = torch.rand((len(images), 3), generator=gen).numpy()
    for i, (im, (u, v, f)) in enumerate(zip(images, draws)):
        h, w = im.shape[:2]
        y, x = int(u * (h - crop + 1)), int(v * (w - crop + 1))
        window = im[y:y + crop, x:x + crop]
        out[i] = window[:, ::-1] if flip and f < 0.5 else window
    return torch.from_numpy(out).permute(0, 3, 1, 2)


def center_crops(images: list[np.ndarray], crop: int) -> torch.Tensor:
    """The center ``crop`` x ``crop`` window of each image: (N, 3, crop, crop) uint8."""
    out = np.empty((len(images), crop, crop, 3), np.uint8)
    for i, im in enumerate(images):
        h, w = im.shape[:2]
        y, x = (h - crop) // 2, (w - crop) // 2
        out[i] = im[y:y + crop, x:x + crop]
    return torch.from_numpy(out).permute(0, 3, 1, 2)


def full_image(image: np.ndarray) -> torch.Tensor:
    """The whole image as a batch of one: (1, 3, H, W) uint8."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0)
