"""Spatial pyramid pooling against a slow reference written from the paper's bin rule."""

import math

import pytest
import torch
from torchvision.ops import roi_pool

from detection.models.spp import SPP_LEVELS, pooled_length, pyramid_pool_whole, spatial_pyramid_pool


def reference_spp(fmap: torch.Tensor, cells: torch.Tensor, levels) -> torch.Tensor:
    """Plain loops: bin i of n over w cells spans floor(i*w/n) .. ceil((i+1)*w/n) (appendix A)."""
    out = []
    for left, top, right, bottom in cells.tolist():
        w, h = right - left + 1, bottom - top + 1
        vec = []
        for n in levels:
            level = torch.empty(fmap.shape[0], n, n)
            for i in range(n):  # rows
                y0, y1 = top + math.floor(i * h / n), top + math.ceil((i + 1) * h / n)
                for j in range(n):  # columns
                    x0, x1 = left + math.floor(j * w / n), left + math.ceil((j + 1) * w / n)
                    level[:, i, j] = fmap[:, y0:y1, x0:x1].amax(dim=(1, 2))
            vec.append(level.flatten())
        out.append(torch.cat(vec))
    return torch.stack(out)


def random_cells(gen, r, h, w):
    x = torch.randint(0, w, (r, 2), generator=gen).sort(1).values
    y = torch.randint(0, h, (r, 2), generator=gen).sort(1).values
    return torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], 1)


@pytest.mark.parametrize("levels", [SPP_LEVELS, (4, 2, 1), (5, 3, 1)])
def test_matches_slow_reference(levels):
    gen = torch.Generator().manual_seed(0)
    fmap = torch.randn(7, 23, 31, generator=gen)
    cells = random_cells(gen, 60, 23, 31)
    cells[0] = torch.tensor([4, 5, 4, 5])  # a single cell
    cells[1] = torch.tensor([0, 0, 30, 22])  # the whole map
    got = spatial_pyramid_pool(fmap, cells, levels)
    assert got.shape == (60, pooled_length(7, levels))
    assert torch.equal(got, reference_spp(fmap, cells, levels))


def test_float16_map_pooled_exactly_into_float32():
    """A float16 map (the conv5 cache's dtype) is pooled in float16: max is exact, so the vectors are
    those of the map converted to float32, and they come out as float32."""
    gen = torch.Generator().manual_seed(3)
    fmap = torch.randn(9, 29, 37, generator=gen).half()
    cells = random_cells(gen, 300, 29, 37)  # > one chunk of windows
    got = spatial_pyramid_pool(fmap, cells)
    assert got.dtype == torch.float32
    assert torch.equal(got, reference_spp(fmap.float(), cells, SPP_LEVELS))


def test_equals_pooling_the_cropped_region():
    """Pooling a window of the map equals pooling the whole of a map cropped to that window."""
    gen = torch.Generator().manual_seed(1)
    fmap = torch.randn(5, 20, 20, generator=gen)
    window = torch.tensor([[3, 2, 14, 17]])
    crop = fmap[:, 2:18, 3:15]
    whole = torch.tensor([[0, 0, crop.shape[2] - 1, crop.shape[1] - 1]])
    assert torch.equal(spatial_pyramid_pool(fmap, window), spatial_pyramid_pool(crop, whole))


def test_layout_is_level_then_channel_major():
    fmap = torch.zeros(2, 6, 6)
    fmap[1, 5, 5] = 9.0  # bottom-right cell of channel 1
    v = spatial_pyramid_pool(fmap, torch.tensor([[0, 0, 5, 5]]))[0]
    assert v.shape == (100,)
    assert v[36 + 35] == 9.0  # level 6: channel 1, bin (5, 5)
    assert v[72 + 9 + 8] == 9.0  # level 3: channel 1, bin (2, 2)
    assert v[-1] == 9.0  # level 1: channel 1
    assert v.sum() == 4 * 9.0


def test_no_windows():
    assert spatial_pyramid_pool(torch.zeros(3, 4, 4), torch.zeros(0, 4, dtype=torch.long)).shape == (0, 150)


def test_pyramid_pool_whole_equals_spp_on_the_full_box():
    gen = torch.Generator().manual_seed(0)
    for h, w in ((13, 13), (14, 14), (7, 9), (1, 3)):
        maps = torch.randn(3, 5, h, w, generator=gen)
        got = pyramid_pool_whole(maps)
        full = torch.tensor([[0, 0, w - 1, h - 1]])
        expect = torch.cat([spatial_pyramid_pool(m, full) for m in maps])
        assert torch.equal(got, expect)


def test_pyramid_pool_whole_passes_gradients_like_per_level_pooling():
    """ZF-5 pre-training back-propagates through it: the gradient is that of plain adaptive max pooling."""
    maps = torch.randn(2, 3, 5, 7, generator=torch.Generator().manual_seed(1), requires_grad=True)
    weights = torch.randn(2, pooled_length(3), generator=torch.Generator().manual_seed(2))
    (pyramid_pool_whole(maps) * weights).sum().backward()
    got = maps.grad.clone()
    maps.grad = None
    plain = torch.cat([torch.nn.functional.adaptive_max_pool2d(maps, n).flatten(1) for n in SPP_LEVELS], 1)
    (plain * weights).sum().backward()
    assert torch.equal(got, maps.grad)


def distinct_map(gen, c, h, w, dtype=torch.float32):
    """A map without ties (a random permutation of distinct values): arg-max cells are unique."""
    return torch.randperm(c * h * w, generator=gen).to(dtype).div(c * h * w).view(c, h, w)


@pytest.mark.parametrize("levels", [SPP_LEVELS, (4, 2, 1)])
def test_grad_path_matches_reference_values_and_gradients(levels):
    gen = torch.Generator().manual_seed(1)
    fmap = distinct_map(gen, 5, 17, 21)
    cells = random_cells(gen, 25, 17, 21)
    cells[0] = torch.tensor([3, 4, 3, 4])  # a single cell
    cells[1] = torch.tensor([0, 0, 20, 16])  # the whole map
    weights = torch.randn(25, pooled_length(5, levels), generator=gen)
    a, b = fmap.clone().requires_grad_(), fmap.clone().requires_grad_()
    got = spatial_pyramid_pool(a, cells, levels)
    want = reference_spp(b, cells, levels)
    assert torch.equal(got.detach(), want.detach())
    assert torch.equal(got.detach(), spatial_pyramid_pool(fmap, cells, levels))
    (got * weights).sum().backward()
    (want * weights).sum().backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-6)
    # The gradient reaches arg-max cells only: at most one cell per bin is non-zero.
    assert int((a.grad != 0).sum()) <= 25 * sum(n * n for n in levels) * 5


def test_grad_path_gradcheck():
    gen = torch.Generator().manual_seed(2)
    fmap = distinct_map(gen, 2, 6, 7, torch.float64).requires_grad_()
    cells = torch.tensor([[0, 0, 6, 5], [1, 2, 4, 4], [2, 1, 2, 3], [5, 0, 6, 1]])
    assert torch.autograd.gradcheck(lambda m: spatial_pyramid_pool(m, cells, (3, 2, 1)), (fmap,))


def test_grad_path_without_grad_is_the_fast_path():
    gen = torch.Generator().manual_seed(3)
    fmap = torch.randn(4, 9, 9, generator=gen)
    cells = random_cells(gen, 10, 9, 9)
    with torch.no_grad():
        assert torch.equal(spatial_pyramid_pool(fmap.requires_grad_(), cells), spatial_pyramid_pool(fmap, cells))


def test_the_gradient_of_a_bin_lands_on_a_cell_holding_its_maximum_even_with_ties():
    gen = torch.Generator().manual_seed(4)
    fmap = torch.randint(0, 3, (3, 11, 13), generator=gen).float()  # many ties
    cells = random_cells(gen, 30, 11, 13)
    values = spatial_pyramid_pool(fmap, cells)
    for row, col in ((0, 0), (5, 140), (29, 149)):  # level 6 channel 0, level 2 channel 1, level 1 channel 2
        grad_map = fmap.clone().requires_grad_()
        spatial_pyramid_pool(grad_map, cells)[row, col].backward()
        (channel, y, x), = grad_map.grad.nonzero().tolist()
        assert fmap[channel, y, x] == values[row, col]


def test_each_level_equals_torchvision_roi_pool_for_every_window_up_to_100_cells():
    """An independent library's RoI max pooling (Fast R-CNN's layer) over every window size."""
    fmap = torch.randn(2, 104, 106, generator=torch.Generator().manual_seed(5))
    cells = torch.tensor([[x0, y0, x0 + w - 1, y0 + h - 1] for w in range(1, 101) for h in range(1, 101)
                          for x0, y0 in ((0, 0), (3, 2))])
    rois = torch.cat([torch.zeros(len(cells), 1), cells.float()], 1)
    with torch.no_grad():
        theirs = torch.cat([roi_pool(fmap[None], rois, n, 1.0).flatten(1) for n in SPP_LEVELS], 1)
        assert torch.equal(spatial_pyramid_pool(fmap, cells), theirs)
