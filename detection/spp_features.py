"""SPP-net's feature extractor: windows -> pool5 vectors from the image's conv5 maps.

Steps for one image (SPP-net sec. 4.1-4.2):
  1. conv5 once per scale (from the per-image cache, or computed now);
  2. for each window, the scale at which it is closest to 224 x 224 pixels (1 scale: that one);
  3. project the window onto that map's cells (appendix A);
  4. spatial pyramid pooling, {6, 3, 2, 1} -> D = C * 50.
Windows that land on the same cells of the same map get the same vector; with
``share_identical_windows`` it is pooled once and copied (the released SPP_net code does the same).
"""

from __future__ import annotations

from typing import Protocol

import torch

from data.images import read_image
from data.records import ImageRecord
from detection.boxes import choose_scales, project_to_cells
from detection.conv5 import Conv5Cache, Conv5Maps, compute_conv5
from detection.spp import spatial_pyramid_pool
from detection.timing import NullStopwatch, Stopwatch


class Pool5Source(Protocol):
    """Anything that turns an image's windows into pool5 vectors (SPP-net or R-CNN)."""

    def pool5(self, record: ImageRecord, boxes: torch.Tensor, sw: Stopwatch | None = None) -> torch.Tensor:
        """(R, 4) windows in original-image pixels -> (R, D) float32 pool5 vectors."""
        ...


def pool_windows(maps: Conv5Maps, boxes: torch.Tensor, stride: int, levels: tuple[int, ...],
                 share_identical: bool = True) -> torch.Tensor:
    """Steps 2-4 above for one image.

    Args:
        maps: the image's conv5 maps, one per scale.
        boxes: (R, 4) windows in original-image pixels.
        stride: conv5's total stride S.
    Returns:
        (R, D) pooled vectors on the maps' device.
    """
    device = maps.maps[0].device
    level = (choose_scales(boxes, list(maps.scales)) if len(maps.scales) > 1
             else torch.zeros(boxes.shape[0], dtype=torch.long))
    c = maps.maps[0].shape[0]
    out = torch.empty(boxes.shape[0], c * sum(n * n for n in levels), device=device)
    for i, (fmap, scale) in enumerate(zip(maps.maps, maps.scales)):
        idx = (level == i).nonzero().squeeze(1)
        if idx.numel() == 0:
            continue
        cells = project_to_cells(boxes[idx], scale, stride, tuple(fmap.shape[1:]))
        if share_identical:
            cells, inverse = torch.unique(cells, dim=0, return_inverse=True)
            pooled = spatial_pyramid_pool(fmap, cells.to(device), levels).index_select(0, inverse.to(device))
        else:
            pooled = spatial_pyramid_pool(fmap, cells.to(device), levels)
        if idx.numel() == boxes.shape[0]:  # one scale holds every window: no scatter (~100 MB saved)
            return pooled
        out.index_copy_(0, idx.to(device), pooled)  # index_copy_ is a parallel row copy
    return out


class SPPSource:
    """pool5 vectors of SPP-net: conv5 once per image, then pyramid pooling per window.

    With a ``cache`` the maps come from (and go to) disk, as in training; without one they are
    computed on the fly with ``trunk`` on ``device``, as in timing runs.
    """

    def __init__(self, trunk: torch.nn.Module, stride: int, shorter_sides: tuple[int, ...],
                 levels: tuple[int, ...], device: torch.device, cache: Conv5Cache | None = None,
                 share_identical: bool = True) -> None:
        self.trunk, self.stride, self.shorter_sides = trunk, stride, tuple(shorter_sides)
        self.levels, self.device, self.cache = tuple(levels), device, cache
        self.share_identical = share_identical

    def conv5(self, record: ImageRecord) -> Conv5Maps:
        if self.cache is not None:
            maps = self.cache.get(record)
            return Conv5Maps(tuple(m.to(self.device) for m in maps.maps), maps.scales)
        return compute_conv5(self.trunk, read_image(record.path), self.shorter_sides, self.device)

    @torch.no_grad()  # conv is fixed (SPP-net fine-tunes fc only); no_grad keeps outputs usable for training
    def pool5(self, record: ImageRecord, boxes: torch.Tensor, sw: Stopwatch | None = None) -> torch.Tensor:
        sw = sw or NullStopwatch()
        with sw.stage("conv"):
            maps = self.conv5(record)
        with sw.stage("pool"):
            return pool_windows(maps, boxes.float().cpu(), self.stride, self.levels, self.share_identical)
