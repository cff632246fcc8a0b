"""One fixed-length vector per WHOLE image from a frozen network (SPP-net sec. 3.2 and 3.3).

SPP-net's classification results without fine-tuning: the image, at its own size and aspect, is
resized so its shorter side is ``side``, the frozen conv layers run on it once, and the pyramid
pools the whole conv5 map into one vector (optionally through the network's fc6 / fc7):

    image (H, W, 3) -> shorter side ``side`` (aspect kept; "center": the side x side centre crop)
      -> trunk -> conv5 (C, h, w)
      -> spatial pyramid pooling of the whole map, levels {6, 3, 2, 1}: (C * 50,)   "pool5"
      -> fc6 -> ReLU: (fc6,) "fc6" -> fc7 -> ReLU: (fc7,) "fc7"    (a classifier's head only)

The pooling is :func:`detection.models.spp.spatial_pyramid_pool` with the window covering every
cell, the same function the detector pools windows with. Vectors are cached per image, like conv5
maps (:mod:`detection.features.conv5`): ``CACHE/image_vectors/<key>/<sha1 of the image file>.npz``,
the key hashing the trunk's (and head's) layers and weights, the config and the cache version, so
an entry is found by content, never by a name another image could share.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from data.cache import ArraySpec, file_digest, load_arrays, params_key, save_arrays
from data.errors import check_config
from data.images import read_image
from data.progress import track
from detection.features.conv5 import image_scales, resize, to_batch, trunk_fingerprint
from detection.models.head import FcHead
from detection.models.spp import SPP_LEVELS, spatial_pyramid_pool

log = logging.getLogger(__name__)

VIEWS = ("full", "center")
LAYERS = ("pool5", "fc6", "fc7")
IMAGE_VECTOR_VERSION = 1  # bump when what a cached vector holds changes


@dataclass(frozen=True)
class ImageVectorConfig:
    """How one image becomes one vector."""

    # Shorter side of the resized image. Sec. 3.2, table 6 (c): 224; (d): s = 392 is the best on
    # VOC 2007 (its objects are smaller than ImageNet's); sec. 3.3: 224 is the best on Caltech101.
    side: int = 224
    # "full": the whole image (table 6 (c)); "center": the side x side centre crop of it, the
    # fixed-size input of table 6 (a) and (b).
    view: str = "full"
    # Pyramid levels: {6x6, 3x3, 2x2, 1x1} (sec. 2.3); (6,) alone is the tables' "pool5 (6x6)" row.
    levels: tuple[int, ...] = SPP_LEVELS
    # The vector: the pooled conv5 ("pool5"), or fc6 / fc7 of a classifier's head on top of it.
    layer: str = "pool5"

    def __post_init__(self) -> None:
        check_config(
            [
                (self.side >= 32, f"--side must be >= 32 pixels (one conv5 cell at least), got {self.side}"),
                (self.view in VIEWS, f"--view must be one of {VIEWS}, got {self.view!r}"),
                (len(self.levels) > 0 and min(self.levels) >= 1, f"--levels must be >= 1, got {self.levels}"),
                (len(set(self.levels)) == len(self.levels), f"--levels must differ, got {self.levels}"),
                (self.layer in LAYERS, f"--layer must be one of {LAYERS}, got {self.layer!r}"),
            ]
        )


def view_image(image: np.ndarray, side: int, view: str) -> np.ndarray:
    """(H, W, 3) uint8 -> the network's input: shorter side ``side`` (longer one capped at
    ``conv5.MAX_ASPECT`` x side, as conv5 maps are), and for "center" its side x side centre crop."""
    resized = resize(image, image_scales(image.shape[:2], (side,))[0])
    if view == "full":
        return resized
    h, w = resized.shape[:2]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return resized[top : top + side, left : left + side]


def pool_whole_map(conv5: torch.Tensor, levels: tuple[int, ...]) -> torch.Tensor:
    """(C, h, w) conv5 map -> (1, C * sum(n^2)) float32: the pyramid over every cell of the map."""
    h, w = conv5.shape[-2:]
    whole = torch.tensor([[0, 0, w - 1, h - 1]], dtype=torch.int64)
    return spatial_pyramid_pool(conv5, whole, levels)


@torch.inference_mode()
def image_vector(
    trunk: nn.Module, image: np.ndarray, cfg: ImageVectorConfig, device: torch.device, head: FcHead | None = None
) -> np.ndarray:
    """One image's (D,) float32 vector.

    Args:
        trunk: frozen conv layers in eval mode, (1, 3, H, W) -> (1, C, h, w).
        image: (H, W, 3) uint8 RGB, any size.
        head: the fc6 / fc7 to pass the pooled vector through; needed for layer fc6 / fc7 only.
    """
    conv5 = trunk(to_batch([view_image(image, cfg.side, cfg.view)], device))[0]  # (C, h, w)
    pooled = pool_whole_map(conv5, cfg.levels)  # (1, D)
    if cfg.layer != "pool5":
        if head is None:
            raise ValueError(f"layer {cfg.layer} needs a head with fc6 / fc7")
        pooled = head.eval().features(pooled, cfg.layer)
    return pooled[0].float().cpu().numpy()


class ImageVectorCache:
    """Per-image vectors on disk under ``root/<key>/<sha1 of the image file>.npz``.

    An entry that is unreadable, of another version or of the wrong length is reported once and
    recomputed (``data.cache.load_arrays``).

    Attributes:
        computed: vectors this object computed (the others were read from the cache).
    """

    def __init__(
        self, root: Path, trunk: nn.Module, cfg: ImageVectorConfig, device: torch.device, head: FcHead | None = None
    ) -> None:
        self.trunk, self.cfg, self.device = trunk, cfg, device
        self.head = head if cfg.layer != "pool5" else None
        key = params_key(
            {
                "trunk": trunk_fingerprint(trunk),
                **dataclasses.asdict(cfg),
                "head": trunk_fingerprint(self.head) if self.head is not None else None,
                "version": IMAGE_VECTOR_VERSION,
            }
        )
        self.folder = Path(root) / key
        self.computed = 0
        self._dim: int | None = None

    def get(self, path: Path) -> np.ndarray:
        """The (D,) float32 vector of the image file ``path``, from the cache or computed and stored."""
        entry = self.folder / f"{file_digest(path)}.npz"
        layout = {"vector": ArraySpec((self._dim,), "f")}
        cached = load_arrays(entry, layout, IMAGE_VECTOR_VERSION)
        if cached is not None:
            vector = cached["vector"]
        else:
            vector = image_vector(self.trunk, read_image(path), self.cfg, self.device, self.head)
            save_arrays(entry, version=IMAGE_VECTOR_VERSION, vector=vector)
            self.computed += 1
        self._dim = len(vector)
        return vector

    def vectors(self, paths: Sequence[Path], progress: bool = True, desc: str = "image vectors") -> np.ndarray:
        """(N, D) float32 vectors of N image files, in order (resumable: each is stored when computed)."""
        before = self.computed
        out = np.stack([self.get(p) for p in track(paths, desc=desc, show=progress, leave=False)])
        log.info(
            "image vectors %s: computed %d, reused %d of %d",
            self.folder,
            self.computed - before,
            len(paths) - (self.computed - before),
            len(paths),
        )
        return out
