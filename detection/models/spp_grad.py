"""Back-propagation through spatial pyramid pooling (end-to-end fine-tuning; beyond the paper).

A bin's output is the maximum of its cells, so its gradient goes to the cell that holds the
maximum, its arg-max (Fast R-CNN sec. 2.1, RoI pooling's backward). The forward pass is
``spp.py``'s sparse table, carrying beside each block maximum the flat index (y * W + x) of the
cell it came from: a bin's four covering blocks then give its maximum AND a cell holding it, for
four C-long reads as before. The backward pass adds each bin's gradient into that cell.
Same bins, same maxima as :func:`detection.models.spp.spatial_pyramid_pool` (tested against
autograd on the slow loop reference, and with gradcheck, in tests/detection/features/test_spp.py).
On ties any cell holding the maximum may receive the gradient.
"""

from __future__ import annotations

import torch

from detection.models.spp import SPP_LEVELS, _bins, _log2, _log2_int, _table_layout, spatial_pyramid_pool


def _keep_larger(va: torch.Tensor, ia: torch.Tensor, vb: torch.Tensor, ib: torch.Tensor,
                 out_v: torch.Tensor, out_i: torch.Tensor) -> None:
    """out = the larger of a and b, with the index of the cell it came from (a on ties)."""
    take_a = va >= vb
    torch.where(take_a, va, vb, out=out_v)
    torch.where(take_a, ia, ib, out=out_i)


class _ArgSparseTable:
    """``spp._SparseTable`` with, beside every block maximum, the flat index of its cell."""

    def __init__(self, hwc: torch.Tensor, amax: int, bmax: int) -> None:
        h, w, c = hwc.shape
        shapes, starts = _table_layout(h, w, amax, bmax)
        self.val = hwc.new_empty((starts[-1], c))  # (P, C)
        self.arg = torch.empty((starts[-1], c), dtype=torch.int64, device=hwc.device)  # (P, C)
        self.offsets = torch.tensor(starts[:-1], device=hwc.device).view(amax + 1, bmax + 1)
        self.width = w
        tables: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        for a in range(amax + 1):
            for b in range(bmax + 1):
                k = a * (bmax + 1) + b
                th, tw = shapes[k]
                v = self.val[starts[k]:starts[k + 1]].view(th, tw, c)
                i = self.arg[starts[k]:starts[k + 1]].view(th, tw, c)
                if a == 0 and b == 0:
                    v.copy_(hwc)
                    i.copy_(torch.arange(h * w, device=hwc.device).view(h, w, 1).expand(h, w, c))
                elif b > 0:  # two half-width blocks side by side
                    (sv, si), sh = tables[(a, b - 1)], 1 << (b - 1)
                    _keep_larger(sv[:, :-sh], si[:, :-sh], sv[:, sh:], si[:, sh:], v, i)
                else:  # two half-height blocks one above the other
                    (sv, si), sh = tables[(a - 1, 0)], 1 << (a - 1)
                    _keep_larger(sv[:-sh], si[:-sh], sv[sh:], si[sh:], v, i)
                tables[(a, b)] = (v, i)

    def query(self, y0: torch.Tensor, y1: torch.Tensor, x0: torch.Tensor,
              x1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bins [y0, y1) x [x0, x1), (R, n) rows and (R, m) columns -> maxima and their cells (R, n, m, C)."""
        a, b = _log2(y1 - y0), _log2(x1 - x0)
        base = self.offsets[a.unsqueeze(2), b.unsqueeze(1)]  # (R, n, m)
        stride = (self.width - (1 << b) + 1).unsqueeze(1)
        top, bottom = y0.unsqueeze(2), (y1 - (1 << a)).unsqueeze(2)
        left, right = x0.unsqueeze(1), (x1 - (1 << b)).unsqueeze(1)
        out_v = out_i = None
        for y in (top, bottom):
            for x in (left, right):
                rows = (base + y * stride + x).flatten()
                v, i = torch.index_select(self.val, 0, rows), torch.index_select(self.arg, 0, rows)
                if out_v is None:
                    out_v, out_i = v, i
                else:
                    _keep_larger(out_v, out_i, v, i, out_v, out_i)
        r, n, m = base.shape
        return out_v.view(r, n, m, -1), out_i.view(r, n, m, -1)


def pool_with_argmax(feature_map: torch.Tensor, cells: torch.Tensor,
                     levels: tuple[int, ...] = SPP_LEVELS) -> tuple[torch.Tensor, torch.Tensor]:
    """Pyramid pooling that also says where each maximum is.

    Args:
        feature_map: (C, H, W). cells: (R, 4) int64 (left, top, right, bottom), inclusive, inside the map.
    Returns:
        (R, D) pooled vectors (``spatial_pyramid_pool``'s layout and numbers) and (R, D) int64 flat
        index y * W + x, in its channel's map, of the cell each value came from.
    """
    cells = cells.to(feature_map.device).long()
    finest = max(levels)
    direct = [n for n in levels if n == finest or finest % n]  # the others nest in a finer level, as in spp.py
    span_h = int((cells[:, 3] - cells[:, 1]).max()) + 1
    span_w = int((cells[:, 2] - cells[:, 0]).max()) + 1
    lo = min(direct)
    table = _ArgSparseTable(feature_map.detach().permute(1, 2, 0).contiguous(),
                            _log2_int(-(-span_h // lo) + 1, feature_map.shape[1]),
                            _log2_int(-(-span_w // lo) + 1, feature_map.shape[2]))
    pooled: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for n in direct:
        y0, y1 = _bins(cells[:, 1], cells[:, 3], n)
        x0, x1 = _bins(cells[:, 0], cells[:, 2], n)
        pooled[n] = table.query(y0, y1, x0, x1)  # (R, n, n, C) each
    values, where = [], []
    for n in levels:
        if n not in pooled:
            pooled[n] = _coarsen(pooled, n)
        v, i = pooled[n]
        values.append(v.permute(0, 3, 1, 2).reshape(v.shape[0], -1))  # channel-major (C, n, n)
        where.append(i.permute(0, 3, 1, 2).reshape(i.shape[0], -1))
    return torch.cat(values, 1), torch.cat(where, 1)


def _coarsen(pooled: dict[int, tuple[torch.Tensor, torch.Tensor]], n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Level n from the coarsest pooled level m that n divides (``spp._coarsen``), cells carried along."""
    m = min(m for m in pooled if m % n == 0)
    k = m // n
    v, i = pooled[m]
    rv, ri = v[:, 0::k].clone(), i[:, 0::k].clone()
    for j in range(1, k):
        _keep_larger(rv, ri, v[:, j::k], i[:, j::k], rv, ri)  # (r, n, m, C)
    ov, oi = rv[:, :, 0::k].clone(), ri[:, :, 0::k].clone()
    for j in range(1, k):
        _keep_larger(ov, oi, rv[:, :, j::k], ri[:, :, j::k], ov, oi)  # (r, n, n, C)
    return ov, oi


class _PyramidPoolFunction(torch.autograd.Function):
    """Forward: :func:`pool_with_argmax`; backward: each bin's gradient added into its arg-max cell."""

    @staticmethod
    def forward(ctx, feature_map: torch.Tensor, cells: torch.Tensor, levels: tuple[int, ...]) -> torch.Tensor:
        values, where = pool_with_argmax(feature_map, cells, levels)
        c, h, w = feature_map.shape
        channel = torch.cat([torch.arange(c, device=where.device).repeat_interleave(n * n) for n in levels])  # (D,)
        ctx.save_for_backward(where + channel * (h * w))  # (R, D) flat index into the (C, H, W) map
        ctx.shape = (c, h, w)
        return values

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (flat,) = ctx.saved_tensors
        c, h, w = ctx.shape
        out = grad.new_zeros(c * h * w).index_add_(0, flat.flatten(), grad.contiguous().flatten())
        return out.view(c, h, w), None, None


def spatial_pyramid_pool_grad(
    feature_map: torch.Tensor, cells: torch.Tensor, levels: tuple[int, ...] = SPP_LEVELS
) -> torch.Tensor:
    """:func:`~detection.models.spp.spatial_pyramid_pool` with a gradient to ``feature_map``.

    Args:
        feature_map: (C, H, W) conv5 map of one image at one scale, may require grad.
        cells: (R, 4) int64 windows in cells (left, top, right, bottom), inclusive, inside the map.
    Returns:
        (R, D) pooled vectors, the same numbers in the same layout; each bin's gradient goes to its
        arg-max cell. Without a gradient to compute it is the forward-only fast path.
    """
    if not (torch.is_grad_enabled() and feature_map.requires_grad) or cells.shape[0] == 0:
        return spatial_pyramid_pool(feature_map, cells, levels)
    return _PyramidPoolFunction.apply(feature_map, cells, tuple(levels))
