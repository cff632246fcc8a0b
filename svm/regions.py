"""The windows of one training image, as the SVM trainer receives them from the feature extractor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.errors import InputError


@dataclass(frozen=True)
class RegionSet:
    """All the windows of one training image.

    Attributes:
        features: (R, D) float32, the windows' features (pool5, fc6 or fc7), NOT yet scaled.
        boxes: (R, 4) float32 windows: ground-truth boxes first, then proposals.
        gt_labels: (R,) int64 class id for ground-truth windows (non-difficult GT), -1 for proposals.
        overlaps: (R, K) float32 best IoU of each window with the GT of each class (0 if none).
    """

    features: np.ndarray
    boxes: np.ndarray
    gt_labels: np.ndarray
    overlaps: np.ndarray

    @property
    def num_windows(self) -> int:
        return int(self.features.shape[0])


def check_region_set(regions: RegionSet, num_classes: int, dim: int | None, where: str) -> None:
    """Raise InputError (naming ``where``) when the arrays of ``regions`` do not fit together.

    Args:
        regions: the windows of one image.
        num_classes: K, the number of columns ``overlaps`` must have.
        dim: the feature length D every image must share (None: any).
        where: what to name in the error, e.g. "regions of image 000005".
    """
    f, b, g, o = regions.features, regions.boxes, regions.gt_labels, regions.overlaps
    if f.ndim != 2:
        raise InputError(where, f"features must be (R, D), got shape {f.shape}")
    r = f.shape[0]
    if dim is not None and f.shape[1] != dim:
        raise InputError(where, f"features have length {f.shape[1]}, earlier images had {dim}")
    if b.shape != (r, 4):
        raise InputError(where, f"boxes must be ({r}, 4), got shape {b.shape}")
    if g.shape != (r,):
        raise InputError(where, f"gt_labels must be ({r},), got shape {g.shape}")
    if o.shape != (r, num_classes):
        raise InputError(where, f"overlaps must be ({r}, {num_classes}), got shape {o.shape}")
    if r and (g.min() < -1 or g.max() >= num_classes):
        raise InputError(where, f"gt_labels must lie in -1..{num_classes - 1}")
    if not np.isfinite(f).all():
        raise InputError(where, "features contain NaN or infinity")
