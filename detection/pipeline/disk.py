"""How many bytes a training run's caches will write, checked against the free disk before it starts.

A VOC-sized run writes gigabytes of per-image caches (conv5 maps: C x H/S x W/S per scale; R-CNN's
pool5 vectors: D per window), and a disk that fills up hours in stops it with ENOSPC (resumable,
but the hours are lost). So before any stage runs, the bytes still to write are estimated from
the config and the images' sizes, folder by folder, and compared with each folder's free space.

The estimate counts what the entries hold (``np.savez`` writes them uncompressed) plus
ENTRY_OVERHEAD per file, for the images without an entry yet (an entry named by the image's id is
taken as there, whatever its digest). Not counted: the SVM stage's and fine-tuning's spilled rows
(only past the memory budget, deleted at the stage's end; at most the SVM store, ``svm.train``'s
memory bound, and the vectors of the windows fine-tuning's batches draw: ~1 MB per image at
VOC 2007's size with MobileNetV2, 0.9 GiB past a 4 GiB budget), the model files (megabytes) and,
with finetune.mode=e2e, the difference between the fixed blocks' maps and conv5's (both counted
as conv5's).
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from data.errors import InputError
from data.records import ImageRecord
from detection.config import DetectorConfig
from detection.features.conv5 import image_scales
from detection.models.backbones import TrunkInfo
from detection.models.spp import pooled_length
from detection.pipeline.mining_features import BBOX_SAMPLES_PER_IMAGE

ENTRY_OVERHEAD = 4096  # bytes per .npz beyond its arrays: zip and .npy headers (a few arrays), a file system block


@dataclass(frozen=True)
class CacheEstimate:
    """What one cache of a run will still write.

    Attributes:
        name: the cache, as the error names it. folder: where it goes.
        images: images whose entry is still to write. nbytes: their bytes in all.
    """

    name: str
    folder: Path
    images: int
    nbytes: int


def conv5_bytes(size: tuple[int, int], scales: Sequence[int], info: TrunkInfo, itemsize: int) -> int:
    """Bytes of one image's conv5 maps: C x ceil(h / S) x ceil(w / S) per scale, of (height, width) ``size``."""
    total = 0
    for s in image_scales(size, scales):
        h, w = round(size[0] * s), round(size[1] * s)
        total += info.channels * math.ceil(h / info.stride) * math.ceil(w / info.stride) * itemsize
    return total


def layer_length(cfg: DetectorConfig, info: TrunkInfo) -> int:
    """D of the SVMs' layer."""
    return {"pool5": pooled_length(info.channels, cfg.features.levels), "fc6": cfg.head.fc6,
            "fc7": cfg.head.fc7}[cfg.svm_layer]


def _missing(folder: Path, records: Sequence[ImageRecord]) -> list[ImageRecord]:
    """The records without an entry in ``folder`` (``<image_id>.npz`` or ``<image_id>-<digest>.npz``)."""
    try:
        stems = [f[:-4] for f in os.listdir(folder) if f.endswith(".npz")]
    except OSError:  # no folder yet: nothing cached
        return list(records)
    names = {*stems, *(s.rsplit("-", 1)[0] for s in stems)}  # an id may hold "-" itself
    return [r for r in records if r.image_id not in names]


def training_estimates(cfg: DetectorConfig, info: TrunkInfo, records: Sequence[ImageRecord], folders: dict[str, Path],
                       sharded: bool) -> list[CacheEstimate]:
    """The caches a training run will still write (those of ``folders`` it uses: proposals, conv5,
    rcnn_pool5, mining_features, work), in bytes.

    Args:
        cfg: the run's config. info: its trunk. records: the training images.
        folders: name -> the folder of that cache; a name missing is a cache the run does not use.
        sharded: a torchrun job, which writes the mining features of every image.
    """
    itemsize = 2 if cfg.features.cache_dtype == "float16" else 4
    windows = cfg.proposals.max_proposals  # per image, plus its few ground truths
    pool5 = pooled_length(info.channels, cfg.features.levels)
    per_image = {
        "proposals": lambda r: windows * 4 * 4,
        "conv5": lambda r: conv5_bytes(r.size, cfg.features.scales, info, itemsize) * (2 if cfg.finetune.mode == "e2e"
                                                                                       else 1),
        "rcnn_pool5": lambda r: (windows + len(r.boxes)) * pool5 * itemsize,
        "mining_features": lambda r: ((windows + len(r.boxes)) * layer_length(cfg, info) * 4
                                      + BBOX_SAMPLES_PER_IMAGE * pool5 * 2),
        "work": lambda r: BBOX_SAMPLES_PER_IMAGE * (pool5 * 2 + 4 * 4 * 2 + 8 + 4),  # bbox_samples(_x)
    }
    out = []
    for name, folder in folders.items():
        if name == "mining_features" and not sharded:
            continue
        todo = list(records) if name in ("work", "mining_features") else _missing(folder, records)
        overhead = 0 if name == "work" else ENTRY_OVERHEAD
        out.append(CacheEstimate(name, folder, len(todo), sum(per_image[name](r) + overhead for r in todo)))
    return out


def _existing(path: Path) -> Path:
    """``path`` or its nearest folder that exists (what disk_usage can be asked about)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk_space(estimates: Sequence[CacheEstimate]) -> None:
    """Raise InputError (one line: the estimate and the free space) when a file system lacks the room.

    Caches on one file system (same device) are summed; each file system's free space comes from
    ``shutil.disk_usage``.
    """
    by_device: dict[int, list[CacheEstimate]] = {}
    for e in estimates:
        by_device.setdefault(_existing(e.folder).stat().st_dev, []).append(e)
    for group in by_device.values():
        need = sum(e.nbytes for e in group)
        free = shutil.disk_usage(_existing(group[0].folder)).free
        if need > free:
            parts = ", ".join(f"{e.name} {e.nbytes / 2**30:.2f} GiB ({e.images} images)" for e in group if e.nbytes)
            raise InputError(group[0].folder, f"this run's caches need about {need / 2**30:.2f} GiB ({parts}) but "
                             f"the disk has {free / 2**30:.2f} GiB free; free some space, or point --work-dir / "
                             "--cache-dir at a larger disk")
