"""Spatial pyramid pooling (SPP-net, section 2.3 and appendix A): the paper's own layer.

A window, already projected onto conv5 cells (``data.boxes.project_to_cells``), is divided at
each pyramid level n into n x n bins and each bin is max-pooled; the levels are concatenated into a
fixed-length vector whatever the window's size: C * sum(n^2) numbers (256 * 50 = 12,800 for ZF-5's
{6, 3, 2, 1} pyramid).

Bins (appendix A): over a window of w cells, bin i of n spans cells floor(i * w / n) to
ceil((i + 1) * w / n) (exclusive end), computed here in exact integer arithmetic.

Speed (on a CPU pooling ~2000 windows costs more than the conv layers): a bin's maximum is read
from a 2-D sparse table of the map, the maxima over every 2^a x 2^b block, as the maximum of the
four (overlapping) blocks that cover the bin, so a bin costs four C-long reads whatever its size.
The map is stored cells-major, (H, W, C), so each read is one contiguous row. Coarser levels whose
n divides the finest one are derived from it: bins 2i and 2i+1 of the 6-level cover exactly bin i
of the 3-level (the floors and ceilings nest), so a max over them is the same number, bit for bit.
Max is exact, so every path gives the numbers a plain loop over the bins gives (tests/detection/
test_spp.py checks this against such a loop). For the same reason a float16 map (the conv5 cache's
default dtype) is pooled in float16, and the vectors come out as float32: the same numbers as
pooling the map converted to float32, with half the bytes to move, which on a CPU (where the table
and its reads are bound by memory) makes the pooling about 2.3x faster.

Back-propagation (end-to-end fine-tuning; beyond the paper) goes through torchvision's
``roi_pool``, one call per level: its bins are appendix A's (floor / ceil of i * w / n; tested equal
to ours for every window up to 100 x 100 cells) and its backward sends each bin's gradient to the
cell holding the maximum (Fast R-CNN sec. 2.1), with CPU and CUDA kernels. ``tools/bench_pooling.py``
times both: on 2 CPU cores, one thread, roi_pool's forward + backward of 128 windows took a third
of an arg-max sparse table's, while for the forward pass alone the sparse table on the float16
cache is 7-8x faster than roi_pool (2000 windows of a 320 x 43 x 57 map).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import roi_pool

SPP_LEVELS = (6, 3, 2, 1)  # SPP-net section 4.1 (detection): {6x6, 3x3, 2x2, 1x1}, 50 bins
_CHUNK = 128  # windows per gather: keeps the (chunk, n, n, C) temporaries in cache


def pooled_length(channels: int, levels: tuple[int, ...] = SPP_LEVELS) -> int:
    """D = C * sum(n^2), the length of one pooled vector."""
    return channels * sum(n * n for n in levels)


def _bins(lo: torch.Tensor, hi: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(R,) inclusive cell ranges -> (R, n) bin starts and (R, n) exclusive ends (appendix A)."""
    w = (hi - lo + 1).unsqueeze(1)  # (R, 1)
    i = torch.arange(n, device=lo.device).unsqueeze(0)  # (1, n)
    start = lo.unsqueeze(1) + torch.div(i * w, n, rounding_mode="floor")
    end = lo.unsqueeze(1) - torch.div(-(i + 1) * w, n, rounding_mode="floor")  # ceil
    return start, end


def _log2(size: torch.Tensor) -> torch.Tensor:
    """floor(log2(size)) of positive int64 sizes (exact: powers of two are exact in float)."""
    return torch.log2(size.double()).floor().long()


def _table_layout(h: int, w: int, amax: int, bmax: int) -> tuple[list[tuple[int, int]], list[int]]:
    """Where each 2^a x 2^b table sits in one flat buffer: its (rows, cols), k = a * (bmax + 1) + b,
    and the start row of each (plus the total at the end)."""
    shapes = [(h - (1 << a) + 1, w - (1 << b) + 1) for a in range(amax + 1) for b in range(bmax + 1)]
    starts = [0]
    for th, tw in shapes:
        starts.append(starts[-1] + th * tw)
    return shapes, starts


class _SparseTable:
    """Maxima over every 2^a x 2^b block of a (H, W, C) map, a <= amax, b <= bmax, stacked flat."""

    def __init__(self, hwc: torch.Tensor, amax: int, bmax: int) -> None:
        h, w, c = hwc.shape
        shapes, starts = _table_layout(h, w, amax, bmax)
        # One buffer for all tables, each computed straight into its slot (no cat, no copies).
        self.flat = hwc.new_empty((starts[-1], c))  # (P, C)
        self.offsets = torch.tensor(starts[:-1], device=hwc.device).view(amax + 1, bmax + 1)
        self.width = w
        tables: dict[tuple[int, int], torch.Tensor] = {}
        for a in range(amax + 1):
            for b in range(bmax + 1):
                k = a * (bmax + 1) + b
                th, tw = shapes[k]
                dst = self.flat[starts[k]:starts[k + 1]].view(th, tw, c)
                if a == 0 and b == 0:
                    dst.copy_(hwc)
                elif b > 0:  # two half-width blocks side by side
                    src, sh = tables[(a, b - 1)], 1 << (b - 1)
                    torch.maximum(src[:, :-sh], src[:, sh:], out=dst)
                else:  # two half-height blocks one above the other
                    src, sh = tables[(a - 1, 0)], 1 << (a - 1)
                    torch.maximum(src[:-sh], src[sh:], out=dst)
                tables[(a, b)] = dst

    def query(self, y0: torch.Tensor, y1: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """Maxima of bins [y0, y1) x [x0, x1): (R, n) rows and (R, m) columns -> (R, n, m, C)."""
        a, b = _log2(y1 - y0), _log2(x1 - x0)  # (R, n), (R, m)
        base = self.offsets[a.unsqueeze(2), b.unsqueeze(1)]  # (R, n, m)
        stride = (self.width - (1 << b) + 1).unsqueeze(1)  # (R, 1, m) row length of table (a, b)
        top, bottom = y0.unsqueeze(2), (y1 - (1 << a)).unsqueeze(2)  # (R, n, 1)
        left, right = x0.unsqueeze(1), (x1 - (1 << b)).unsqueeze(1)  # (R, 1, m)
        out = None
        for y in (top, bottom):
            for x in (left, right):
                part = torch.index_select(self.flat, 0, (base + y * stride + x).flatten())  # (R*n*m, C)
                out = part if out is None else torch.maximum(out, part, out=out)
        r, n, m = base.shape
        return out.view(r, n, m, -1)


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
        levels in the order given; float32 for a float16 map (pooled in float16: exact), else the
        map's dtype. When the map requires grad, each bin's gradient goes to the cell holding its
        maximum (:func:`_pool_with_grad`).
    """
    if torch.is_grad_enabled() and feature_map.requires_grad:
        return _pool_with_grad(feature_map, cells, levels)
    r, c = cells.shape[0], feature_map.shape[0]
    dtype = torch.promote_types(feature_map.dtype, torch.float32)
    out = feature_map.new_empty((r, pooled_length(c, levels)), dtype=dtype)
    if r == 0:
        return out
    cells = cells.to(feature_map.device).long()
    finest = max(levels)
    # A bin of level n over w cells spans at most ceil(w / n) + 1 cells: the coarsest level pooled
    # directly decides the largest block the table needs.
    direct = [n for n in levels if n == finest or finest % n]
    span_h = int((cells[:, 3] - cells[:, 1]).max()) + 1
    span_w = int((cells[:, 2] - cells[:, 0]).max()) + 1
    lo = min(direct)
    table = _SparseTable(feature_map.permute(1, 2, 0).contiguous(),
                         _log2_int(-(-span_h // lo) + 1, feature_map.shape[1]),
                         _log2_int(-(-span_w // lo) + 1, feature_map.shape[2]))
    offsets = {}
    pos = 0
    for n in levels:
        offsets[n] = pos
        pos += c * n * n
    for s in range(0, r, _CHUNK):
        part = cells[s:s + _CHUNK]
        pooled: dict[int, torch.Tensor] = {}
        for n in direct:
            y0, y1 = _bins(part[:, 1], part[:, 3], n)
            x0, x1 = _bins(part[:, 0], part[:, 2], n)
            pooled[n] = table.query(y0, y1, x0, x1)  # (r', n, n, C)
        for n in levels:
            if n not in pooled:
                pooled[n] = _coarsen(pooled, n)
            dst = out[s:s + _CHUNK, offsets[n]:offsets[n] + c * n * n].view(-1, c, n, n)
            dst.copy_(pooled[n].permute(0, 3, 1, 2))
    return out


def _pool_with_grad(feature_map: torch.Tensor, cells: torch.Tensor, levels: tuple[int, ...]) -> torch.Tensor:
    """:func:`spatial_pyramid_pool`'s vectors with a gradient: each level is torchvision's ``roi_pool``
    over the same bins, whose backward adds each bin's gradient into its arg-max cell."""
    cells = cells.to(feature_map.device)
    rois = torch.cat([torch.zeros_like(cells[:, :1]), cells], 1).to(feature_map.dtype)  # (R, 5): image 0, box
    pooled = [roi_pool(feature_map[None], rois, n, 1.0).flatten(1) for n in levels]  # (R, C * n * n) each
    return torch.cat(pooled, 1).to(torch.promote_types(feature_map.dtype, torch.float32))


def _coarsen(pooled: dict[int, torch.Tensor], n: int) -> torch.Tensor:
    """Level n from the coarsest pooled level m that n divides: (r, m, m, C) -> (r, n, n, C).

    Bins k*i .. k*i + k - 1 of level m (k = m / n) cover exactly bin i of level n; pairwise maxima
    of strided slices (contiguous C-long rows) are much cheaper than a multi-axis amax.
    """
    m = min(m for m in pooled if m % n == 0)
    k = m // n
    x = pooled[m]
    rows = x[:, 0::k]
    for j in range(1, k):
        rows = torch.maximum(rows, x[:, j::k])  # (r, n, m, C)
    out = rows[:, :, 0::k]
    for j in range(1, k):
        out = torch.maximum(out, rows[:, :, j::k])  # (r, n, n, C)
    return out


def _log2_int(size: int, limit: int) -> int:
    """floor(log2(min(size, limit))) for a positive int."""
    return max(1, min(size, limit)).bit_length() - 1


def pyramid_pool_whole(maps: torch.Tensor, levels: tuple[int, ...] = SPP_LEVELS) -> torch.Tensor:
    """Pyramid-pool the WHOLE of each map (R-CNN's warped windows): (N, C, H, W) -> (N, D).

    Same bins as :func:`spatial_pyramid_pool` with the full-map cell box (0, 0, W-1, H-1):
    adaptive max pooling's bin i of n spans floor(i*H/n) to ceil((i+1)*H/n), appendix A's rule.
    """
    n_maps, c = maps.shape[:2]
    out = maps.new_empty((n_maps, pooled_length(c, levels)))
    pos = 0
    for n in levels:
        out[:, pos:pos + c * n * n].view(n_maps, c, n, n).copy_(F.adaptive_max_pool2d(maps, n))
        pos += c * n * n
    return out
