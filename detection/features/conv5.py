"""conv5 maps computed ONCE per image (at one scale or several) and cached per image.

SPP-net's whole speed-up: the convolutional layers see each image once (per scale); every window
is then pooled from these maps. The maps are cached on disk, one ``.npz`` per image, in a folder
keyed by the trunk's weights, the scales and the dtype, so fine-tuning, SVM mining and bbox
regression reuse them and never run the trunk again. Runs sharing the cache folder claim an entry
before computing it (``data.claims``), so each image's maps are computed once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from data.cache import ArraySpec, file_digest, load_arrays, params_key, save_arrays
from data.claims import claim, try_claim
from data.images import read_image
from data.progress import track
from data.records import ImageRecord
from detection.models.backbones import normalise

log = logging.getLogger(__name__)

CONV5_CACHE_VERSION = 3  # bump when what is stored changes (2: the key hashes the architecture too; 3: entries named by content)


@dataclass(frozen=True)
class Conv5Maps:
    """The conv5 maps of one image.

    Attributes:
        maps: one (C, H_l, W_l) map per scale l: float32, or float16 as read from a float16 cache
            (pyramid pooling takes either and gives float32 vectors; anything that computes on the
            maps converts them first).
        scales: (L,) resized size / original size of each map's input image.
    """

    maps: tuple[torch.Tensor, ...]
    scales: tuple[float, ...]


# A panorama or a sliver resized to a shorter side of 688 px would be tens of thousands of pixels
# long: a 60 x 1500 strip took 28 s and 3.4 GB on a CPU. Like Fast R-CNN's MAX_SIZE (1000 px for a
# shorter side of 600), the longer side is capped, here at 3x the shorter side, so no VOC-shaped
# image (at most about 2:1) is touched. SPP-net itself has no cap.
MAX_ASPECT = 3.0


def image_scales(size: tuple[int, int], shorter_sides: Sequence[int]) -> list[float]:
    """Scale factors that resize an image of (height, width) ``size`` to each shorter side; an image
    longer than :data:`MAX_ASPECT` : 1 is resized so its longer side is MAX_ASPECT x that side."""
    if max(size) > MAX_ASPECT * min(size):
        return [MAX_ASPECT * s / max(size) for s in shorter_sides]
    return [s / min(size) for s in shorter_sides]


def resize(image: np.ndarray, scale: float) -> np.ndarray:
    """(H, W, 3) uint8 -> (round(H*scale), round(W*scale), 3) uint8, bilinear (area when shrinking)."""
    h, w = image.shape[:2]
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, new, interpolation=interp)


def to_batch(images: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """(H, W, 3) uint8 arrays of one size -> normalised (N, 3, H, W) float32, channels_last."""
    x = torch.from_numpy(np.stack(images)).to(device).permute(0, 3, 1, 2)
    return normalise(x).contiguous(memory_format=torch.channels_last)


@torch.inference_mode()
def compute_conv5(trunk: nn.Module, image: np.ndarray, shorter_sides: Sequence[int],
                  device: torch.device) -> Conv5Maps:
    """Run the trunk once per scale on the whole image.

    Args:
        trunk: conv layers, (N, 3, H, W) -> (N, C, H', W').
        image: (H, W, 3) uint8 RGB.
        shorter_sides: the shorter side of each scale, e.g. (688,) or (480, 576, 688, 864, 1200).
    """
    scales = image_scales(image.shape[:2], shorter_sides)
    maps = tuple(trunk(to_batch([resize(image, s)], device))[0].contiguous() for s in scales)
    return Conv5Maps(maps, tuple(scales))


def trunk_fingerprint(trunk: nn.Module) -> str:
    """A hash of the trunk's layers and weights: a change of either gives another cache folder."""
    h = hashlib.sha1(repr(trunk).encode())
    for name, t in sorted(trunk.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class Conv5Cache:
    """Per-image conv5 maps on disk under ``root/<key>/<image_id>-<digest>.npz``.

    An entry is named by the image's id and a digest of its file, so two datasets whose images share
    ids (two embedded presets, two sizes of one set) each keep their own entries in a shared cache
    instead of overwriting each other's. Each entry stores the maps (in ``dtype``), the scales, the
    digest and the cache version; one that is unreadable, of another version or whose arrays have the
    wrong shapes or dtypes is reported once and recomputed.

    Attributes:
        computed: images whose maps this object computed.
        by_others: images whose entry another run wrote while this one waited or looked.
    """

    def __init__(self, root: Path, trunk: nn.Module, shorter_sides: Sequence[int], device: torch.device,
                 dtype: str = "float16") -> None:
        self.trunk, self.device, self.dtype = trunk, device, dtype
        self.shorter_sides = tuple(int(s) for s in shorter_sides)
        key = params_key({"trunk": trunk_fingerprint(trunk), "scales": self.shorter_sides,
                          "dtype": dtype, "version": CONV5_CACHE_VERSION})
        self.folder = Path(root) / key
        n = len(self.shorter_sides)
        self._layout = {f"map{i}": ArraySpec(("C", None, None), "f") for i in range(n)}
        self._layout |= {"scales": ArraySpec((n,), "f"), "digest": ArraySpec((), "U")}
        self.computed = self.by_others = 0

    def path(self, image_id: str, digest: str) -> Path:
        """The entry of image ``image_id`` whose file has the digest ``digest`` (data.cache.file_digest)."""
        return self.folder / f"{image_id}-{digest[:16]}.npz"

    def _load(self, record: ImageRecord, digest: str) -> Conv5Maps | None:
        entry = load_arrays(self.path(record.image_id, digest), self._layout, CONV5_CACHE_VERSION)
        if entry is None or str(entry["digest"]) != digest:
            return None
        maps = tuple(torch.from_numpy(entry[f"map{i}"]) for i in range(len(self.shorter_sides)))
        return Conv5Maps(maps, tuple(float(s) for s in entry["scales"]))

    def _load_or_compute(self, record: ImageRecord, digest: str) -> Conv5Maps:
        """With the entry claimed: the maps another run may just have written, else computed and stored."""
        maps = self._load(record, digest)
        if maps is not None:
            self.by_others += 1
            return maps
        self.computed += 1
        maps = compute_conv5(self.trunk, read_image(record.path), self.shorter_sides, self.device)
        arrays = {f"map{i}": m.cpu().numpy().astype(self.dtype) for i, m in enumerate(maps.maps)}
        save_arrays(self.path(record.image_id, digest), version=CONV5_CACHE_VERSION, scales=np.array(maps.scales),
                    digest=np.array(digest), **arrays)
        # Return what a later load gives, so a first run and a resumed run see the same numbers.
        return Conv5Maps(tuple(torch.from_numpy(a) for a in arrays.values()), maps.scales)

    def get(self, record: ImageRecord) -> Conv5Maps:
        """The image's maps (on the CPU, in the cache's dtype), from the cache or computed and stored."""
        digest = file_digest(record.path)
        maps = self._load(record, digest)
        if maps is not None:
            return maps
        with claim(self.path(record.image_id, digest), "conv5 maps"):
            return self._load_or_compute(record, digest)

    def ensure(self, records: Sequence[ImageRecord], progress: bool = True) -> None:
        """Compute and store the maps of every image not yet cached (resumable).

        Images that another run is computing are skipped, then waited for and loaded at the end.
        The closing log line counts everything this object computed.
        """
        todo = [r for r in records if not self.path(r.image_id, file_digest(r.path)).is_file()]
        log.info("conv5 cache %s: %d of %d images to compute", self.folder, len(todo), len(records))
        by_others = self.by_others
        busy = [r for r in track(todo, desc="conv5", show=progress) if not self.ensure_one(r)]
        for record in busy:
            self.get(record)  # waits for the other run's claim, then loads its entry
        log.info("conv5 cache: computed %d, reused %d (%d written by another run meanwhile)",
                 self.computed, len(records) - self.computed, self.by_others - by_others)

    def ensure_one(self, record: ImageRecord) -> bool:
        """Compute and store one image's maps unless cached; False when another run is computing them."""
        digest = file_digest(record.path)
        if self.path(record.image_id, digest).is_file():
            return True
        held = try_claim(self.path(record.image_id, digest))
        if held is None:
            return False
        with held:
            self._load_or_compute(record, digest)
        return True
