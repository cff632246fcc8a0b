"""SPP-net's feature extractor: windows -> pool5 vectors from the image's conv5 maps.

Steps for one image (SPP-net sec. 4.1-4.2):
  1. conv5 once per scale (from the per-image cache, or computed now);
  2. for each window, the scale at which it is closest to 224 x 224 pixels (1 scale: that one);
  3. project the window onto the cells of that map whose receptive-field centres lie inside it
     (appendix A; the trunk declares where its centres are, ``TrunkInfo.centre_offset``);
  4. spatial pyramid pooling, {6, 3, 2, 1} -> D = C * 50.
Windows that land on the same cells of the same map get the same vector; with
``share_identical_windows`` it is pooled once and copied (the released SPP_net code does the same).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from data.boxes import choose_scales, project_to_cells
from data.images import record_image
from data.records import ImageRecord
from detection.features.conv5 import Conv5Cache, Conv5Maps, compute_conv5
from detection.models.backbones import TrunkInfo
from detection.models.spp import spatial_pyramid_pool
from detection.runtime.stopwatch import NullStopwatch, Stopwatch


class Pool5Source(Protocol):
    """Anything that turns an image's windows into pool5 vectors (SPP-net or R-CNN)."""

    def pool5(self, record: ImageRecord, boxes: torch.Tensor, sw: Stopwatch | None = None) -> torch.Tensor:
        """(R, 4) windows in original-image pixels -> (R, D) float32 pool5 vectors."""
        ...

    def pool5_shared(self, record: ImageRecord, boxes: torch.Tensor,
                     sw: Stopwatch | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Distinct pool5 vectors (U, D) and, per window, the index (R,) of its vector.

        Test time runs fc, SVMs and box-regression deltas once per distinct vector.
        """
        ...


def window_scales(boxes: torch.Tensor, scales: tuple[float, ...]) -> torch.Tensor:
    """Step 2: (R, 4) windows -> (R,) index of the scale each is pooled from (1 scale: 0)."""
    if len(scales) > 1:
        return choose_scales(boxes, list(scales))
    return torch.zeros(boxes.shape[0], dtype=torch.long)


def pool_windows_grad(conv5_at: Callable[[int], torch.Tensor], scales: tuple[float, ...], boxes: torch.Tensor,
                      stride: int, centre_offset: float, levels: tuple[int, ...]) -> torch.Tensor:
    """Steps 2-4 with a gradient to the conv5 maps (end-to-end fine-tuning), one row per window.

    Args:
        conv5_at: i -> the (C, H_i, W_i) conv5 map at scale i, with its graph; called once for each
            scale that some window chooses, and only for those.
        scales: resized size / original size of each scale.
        boxes: (R, 4) windows in original-image pixels.
    Returns:
        (R, D) pool5 vectors, the numbers :func:`pool_windows` gives on the same maps.
    """
    level = window_scales(boxes, scales)
    rows, order = [], []
    for i, scale in enumerate(scales):
        idx = (level == i).nonzero().squeeze(1)
        if idx.numel() == 0:
            continue
        fmap = conv5_at(i)
        cells = project_to_cells(boxes[idx], scale, stride, tuple(fmap.shape[1:]), centre_offset)
        rows.append(spatial_pyramid_pool(fmap, cells, levels))
        order.append(idx)
    out, order = torch.cat(rows), torch.cat(order)
    return out[torch.argsort(order).to(out.device)]


def pool_windows_shared(maps: Conv5Maps, boxes: torch.Tensor, stride: int, centre_offset: float,
                        levels: tuple[int, ...], share_identical: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps 2-4 above for one image, pooling each distinct (scale, cells) window once.

    Args:
        maps: the image's conv5 maps, one per scale.
        boxes: (R, 4) windows in original-image pixels.
        stride: conv5's total stride S.
        centre_offset: receptive-field centre of cell 0 in input pixels (``TrunkInfo.centre_offset``).
        share_identical: when False every window is pooled on its own (U = R, inverse = arange).
    Returns:
        (U, D) pooled vectors on the maps' device, and (R,) int64 index of each window's vector.
    """
    device = maps.maps[0].device
    r = boxes.shape[0]
    level = window_scales(boxes, maps.scales)
    cells = torch.empty((r, 4), dtype=torch.long)
    for i, (fmap, scale) in enumerate(zip(maps.maps, maps.scales)):
        idx = (level == i).nonzero().squeeze(1)
        if idx.numel():
            cells[idx] = project_to_cells(boxes[idx], scale, stride, tuple(fmap.shape[1:]), centre_offset)
    key = torch.cat([level.unsqueeze(1), cells], 1)  # (R, 5): scale index, cells
    if share_identical:
        key, inverse = torch.unique(key, dim=0, return_inverse=True)
    else:
        inverse = torch.arange(r)
    c = maps.maps[0].shape[0]
    out = torch.empty(key.shape[0], c * sum(n * n for n in levels), device=device)
    for i, fmap in enumerate(maps.maps):
        sel = (key[:, 0] == i).nonzero().squeeze(1)
        if sel.numel() == 0:
            continue
        pooled = spatial_pyramid_pool(fmap, key[sel, 1:].to(device), levels)
        if sel.numel() == key.shape[0]:  # one scale holds every window: no scatter
            return pooled, inverse
        out.index_copy_(0, sel.to(device), pooled)  # a parallel row copy
    return out, inverse


def pool_windows(maps: Conv5Maps, boxes: torch.Tensor, stride: int, centre_offset: float,
                 levels: tuple[int, ...], share_identical: bool = True) -> torch.Tensor:
    """Like :func:`pool_windows_shared`, expanded to one (R, D) row per window."""
    pooled, inverse = pool_windows_shared(maps, boxes, stride, centre_offset, levels, share_identical)
    return _expand(pooled, inverse, share_identical)


def _expand(pooled: torch.Tensor, inverse: torch.Tensor, shared: bool) -> torch.Tensor:
    """(U, D) distinct vectors (in ``torch.unique``'s order when ``shared``) and (R,) each window's
    index -> (R, D), one row per window in window order."""
    return pooled.index_select(0, inverse.to(pooled.device)) if shared else pooled


class SPPSource:
    """pool5 vectors of SPP-net: conv5 once per image, then pyramid pooling per window.

    With a ``cache`` the maps come from (and go to) disk, as in training; without one they are
    computed on the fly with ``trunk`` on ``device``, as in timing runs.
    """

    def __init__(self, trunk: torch.nn.Module, info: TrunkInfo, shorter_sides: tuple[int, ...],
                 levels: tuple[int, ...], device: torch.device, cache: Conv5Cache | None = None,
                 share_identical: bool = True) -> None:
        self.trunk, self.info, self.shorter_sides = trunk, info, tuple(shorter_sides)
        self.levels, self.device, self.cache = tuple(levels), device, cache
        self.share_identical = share_identical

    def conv5(self, record: ImageRecord) -> Conv5Maps:
        if self.cache is not None and record.pixels is None:  # an image in memory has no file to key an entry by
            maps = self.cache.get(record)
            return Conv5Maps(tuple(m.to(self.device) for m in maps.maps), maps.scales)
        return compute_conv5(self.trunk, record_image(record), self.shorter_sides, self.device)

    @torch.no_grad()  # conv is fixed (SPP-net fine-tunes fc only); no_grad keeps outputs usable for training
    def pool5_shared(self, record: ImageRecord, boxes: torch.Tensor,
                     sw: Stopwatch | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        sw = sw or NullStopwatch()
        with sw.stage("conv"):
            maps = self.conv5(record)
        with sw.stage("pool"):
            return pool_windows_shared(maps, boxes.float().cpu(), self.info.stride, self.info.centre_offset,
                                       self.levels, self.share_identical)

    def pool5(self, record: ImageRecord, boxes: torch.Tensor, sw: Stopwatch | None = None) -> torch.Tensor:
        """One (R, D) row per window: :meth:`pool5_shared` expanded by its inverse index."""
        pooled, inverse = self.pool5_shared(record, boxes, sw)
        return _expand(pooled, inverse, self.share_identical)
