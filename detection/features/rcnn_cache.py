"""R-CNN's pool5 vectors cached on disk per image, as R-CNN's own pipeline does.

R-CNN runs the whole trunk on every warped window: ~35 ms per window with MobileNetV2 on a 2-core
CPU, 2000 windows per image. With the conv layers frozen (fc-only fine-tuning, SPP-net's fair
comparison), a window's pool5 vector depends only on the image, the window, the trunk and the
warp, not on the training seed or on which Table 9 row is trained, so it can be computed once and
read back by every later run: the released R-CNN does exactly this (``rcnn_cache_pool5_features``,
~200 GB for VOC 2007 trainval + test). It is opt-in (``features.rcnn_cache``) for that reason:
D x 2 bytes per window in float16, 32 KB for MobileNetV2 (D = 16,000), 25 KB for ZF-5.

Layout: ``root/<key>/<image_id>.npz`` with the windows computed so far and their vectors; the key
hashes the trunk's layers and weights, the warp, the context padding, the pyramid, the dtype and
this module's version, and each entry holds the image file's digest. A request for windows the
entry lacks computes just those and stores the union (under a claim, so runs sharing the folder
add to an entry one at a time). What a request returns is always what a later load gives (the
stored dtype), so a first run and any later one see the same numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from data.cache import ArraySpec, file_digest, load_arrays, params_key, save_arrays
from data.claims import claim
from data.records import ImageRecord
from detection.features.conv5 import trunk_fingerprint
from detection.features.rcnn_source import RCNNSource
from detection.runtime.stopwatch import Stopwatch

RCNN_CACHE_VERSION = 1  # bump when what is stored changes


def row_keys(boxes: np.ndarray) -> list[bytes]:
    """(R, 4) float32 windows -> one hashable key per row (its exact bytes)."""
    return [row.tobytes() for row in np.ascontiguousarray(boxes, dtype=np.float32)]


class CachedRCNNSource:
    """``RCNNSource`` with a per-image disk cache of the vectors it computed.

    Implements ``detection.features.spp_source.Pool5Source``.

    Attributes:
        computed: windows whose vectors this object computed.
        read_back: windows whose vectors it read from the cache.
    """

    def __init__(self, source: RCNNSource, root: Path, dtype: str = "float16") -> None:
        self.source, self.dtype = source, dtype
        key = params_key({"trunk": trunk_fingerprint(source.trunk), "warp": source.info.warp_size,
                          "padding": source.padding, "levels": source.levels, "dtype": dtype,
                          "version": RCNN_CACHE_VERSION})
        self.folder = Path(root) / key
        self._layout = {"boxes": ArraySpec(("R", 4), "f"), "pool5": ArraySpec(("R", None), "f"),
                        "digest": ArraySpec((), "U")}
        self.computed = self.read_back = 0

    def path(self, image_id: str) -> Path:
        return self.folder / f"{image_id}.npz"

    def _load(self, record: ImageRecord, digest: str) -> tuple[np.ndarray, np.ndarray]:
        """The entry's (N, 4) windows and (N, D) vectors; empty when there is no valid entry."""
        entry = load_arrays(self.path(record.image_id), self._layout, RCNN_CACHE_VERSION)
        if entry is None or str(entry["digest"]) != digest:
            return np.zeros((0, 4), np.float32), np.zeros((0, 0), self.dtype)
        return entry["boxes"].astype(np.float32), entry["pool5"]

    @staticmethod
    def _lookup(stored: np.ndarray, wanted: np.ndarray) -> np.ndarray:
        """(R,) row of each wanted window in ``stored``, -1 where it is not there."""
        index = {k: i for i, k in enumerate(row_keys(stored))}
        return np.array([index.get(k, -1) for k in row_keys(wanted)], dtype=np.int64)

    def pool5(self, record: ImageRecord, boxes: torch.Tensor, sw: Stopwatch | None = None) -> torch.Tensor:
        """(R, 4) windows in original-image pixels -> (R, D) float32 pool5 vectors on the device."""
        wanted = torch.as_tensor(boxes).float().cpu().numpy().reshape(-1, 4)
        if len(wanted) == 0 or record.pixels is not None:  # an image in memory has no file to key an entry by
            return self.source.pool5(record, torch.as_tensor(wanted), sw)
        digest = file_digest(record.path)
        stored, vectors = self._load(record, digest)
        rows = self._lookup(stored, wanted)
        self.read_back += int((rows >= 0).sum())
        if (rows < 0).any():
            with claim(self.path(record.image_id), "R-CNN pool5 vectors"):
                stored, vectors = self._load(record, digest)  # another run may have added to it
                rows = self._lookup(stored, wanted)
                missing = np.unique(wanted[rows < 0], axis=0)
                if len(missing):
                    new = self.source.pool5(record, torch.from_numpy(missing), sw).cpu().numpy().astype(self.dtype)
                    self.computed += len(missing)
                    stored = np.concatenate([stored, missing])
                    vectors = new if len(vectors) == 0 else np.concatenate([vectors, new])
                    save_arrays(self.path(record.image_id), version=RCNN_CACHE_VERSION, boxes=stored,
                                pool5=vectors, digest=np.array(digest))
                    rows = self._lookup(stored, wanted)
        return torch.from_numpy(vectors[rows].astype(np.float32)).to(self.source.device)

    def summary(self) -> str:
        """One log line: what this object computed and read back."""
        return f"R-CNN pool5 cache {self.folder}: computed {self.computed} windows, read back {self.read_back}"

    def pool5_shared(self, record: ImageRecord, boxes: torch.Tensor,
                     sw: Stopwatch | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Every window has its own warped crop, hence its own vector: inverse is the identity."""
        pooled = self.pool5(record, boxes, sw)
        return pooled, torch.arange(pooled.shape[0])
