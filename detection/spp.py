"""Spatial pyramid pooling (SPP-net, section 2.3 and appendix A): the paper's own layer.

A window, already projected onto conv5 cells (``detection.boxes.project_to_cells``), is divided at
each pyramid level n into n x n bins and each bin is max-pooled; the levels are concatenated into a
fixed-length vector whatever the window's size: C * sum(n^2) numbers (256 * 50 = 12,800 for ZF-5's
{6, 3, 2, 1} pyramid).

Bins (appendix A): over a window of w cells, bin i of n spans cells floor(i * w / n) to
ceil((i + 1) * w / n) (exclusive end). That is exactly the bin rule of ``torchvision.ops.roi_pool``
when the box is given in cell units (spatial_scale 1, inclusive right/bottom cell), so the finest
level is one ``roi_pool`` call. Coarser levels whose n divides the finest one are derived from it:
bins 2i and 2i+1 of the 6-level cover exactly bin i of the 3-level (the floors and ceilings
nest), so a max over them is the same number, bit for bit, without touching conv5 again.
Levels that do not divide the finest one are pooled directly.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import roi_pool

SPP_LEVELS = (6, 3, 2, 1)  # SPP-net section 4.1 (detection): {6x6, 3x3, 2x2, 1x1}, 50 bins


def pooled_length(channels: int, levels: tuple[int, ...] = SPP_LEVELS) -> int:
    """D = C * sum(n^2), the length of one pooled vector."""
    return channels * sum(n * n for n in levels)


def spatial_pyramid_pool(
    feature_map: torch.Tensor, cells: torch.Tensor, levels: tuple[int, ...] = SPP_LEVELS
) -> torch.Tensor:
    """Pool windows of one conv map into fixed-length vectors.

    Args:
        feature_map: (C, H, W) conv5 map of one image at one scale.
        cells: (R, 4) int64 windows in cells (left, top, right, bottom), 0-based, inclusive, inside
            the map.
        levels: pyramid levels n, finest first.
    Returns:
        (R, D) pooled vectors, D = C * sum(n^2); each level flattened channel-major (C, n, n),
        levels in the order given.
    """
    r, c = cells.shape[0], feature_map.shape[0]
    if r == 0:
        return feature_map.new_zeros((0, pooled_length(c, levels)))
    finest = max(levels)
    rois = torch.cat([cells.new_zeros(r, 1), cells], 1).to(feature_map.dtype)
    fine = roi_pool(feature_map.unsqueeze(0), rois, (finest, finest), spatial_scale=1.0)  # (R, C, 6, 6)
    parts = []
    for n in levels:
        if n == finest:
            parts.append(fine)
        elif finest % n == 0:
            k = finest // n  # (R, C, n, k, n, k): one reshape and one max, no per-plane kernel calls
            parts.append(fine.view(r, c, n, k, n, k).amax(dim=(3, 5)))
        else:
            parts.append(roi_pool(feature_map.unsqueeze(0), rois, (n, n), spatial_scale=1.0))
    return torch.cat([p.flatten(1) for p in parts], 1)


class SpatialPyramidPool(nn.Module):
    """Thin module around :func:`spatial_pyramid_pool`."""

    def __init__(self, levels: tuple[int, ...] = SPP_LEVELS) -> None:
        super().__init__()
        self.levels = tuple(levels)

    def forward(self, feature_map: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
        return spatial_pyramid_pool(feature_map, cells, self.levels)

    def extra_repr(self) -> str:
        return f"levels={self.levels}"
