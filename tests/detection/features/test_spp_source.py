"""pool_windows: every window pooled on the map of its chosen scale, shared or not, in order."""

import torch

from data.boxes import choose_scales, project_to_cells
from detection.features.conv5 import Conv5Maps
from detection.features.spp_source import pool_windows
from detection.models.spp import spatial_pyramid_pool


def test_pool_windows_matches_per_window_pooling():
    gen = torch.Generator().manual_seed(0)
    maps = Conv5Maps((torch.randn(3, 10, 12, generator=gen), torch.randn(3, 20, 24, generator=gen)), (0.5, 1.0))
    xy = torch.rand(40, 2, generator=gen) * 300
    wh = torch.rand(40, 2, generator=gen) * 450 + 8  # > 320 px: closer to 224 at scale 0.5
    boxes = torch.cat([xy, xy + wh], 1)
    boxes[1] = boxes[0]  # a duplicate window
    level = choose_scales(boxes, list(maps.scales))
    assert 0 < int(level.sum()) < 40  # both scales used
    offset = 20.0  # ZF-5's receptive-field centres: every scale projects with the trunk's offset
    expect = torch.stack([
        spatial_pyramid_pool(maps.maps[s], project_to_cells(b[None], maps.scales[s], 16, tuple(maps.maps[s].shape[1:]),
                                                            offset))[0]
        for b, s in zip(boxes, level.tolist())])
    for share in (True, False):
        assert torch.equal(pool_windows(maps, boxes, 16, offset, (6, 3, 2, 1), share), expect)
    assert not torch.equal(pool_windows(maps, boxes, 16, 0.0, (6, 3, 2, 1)), expect)  # the offset matters
    one = Conv5Maps(maps.maps[:1], maps.scales[:1])
    cells = project_to_cells(boxes, 0.5, 16, (10, 12))
    assert torch.equal(pool_windows(one, boxes, 16, 0.0, (6, 3, 2, 1)), spatial_pyramid_pool(one.maps[0], cells))
