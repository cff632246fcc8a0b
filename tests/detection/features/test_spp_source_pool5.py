"""SPPSource.pool5, the production path: conv5 once per image, then each window pooled, against the
obvious route (compute the maps, project each window, pool it alone), live and from the cache."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from data.boxes import project_to_cells
from data.images import read_image
from data.records import ImageRecord
from detection.features.conv5 import Conv5Cache, compute_conv5
from detection.features.spp_source import SPPSource
from detection.models.backbones import build_trunk
from detection.models.spp import SPP_LEVELS, spatial_pyramid_pool

CPU = torch.device("cpu")


def test_pool5_pools_each_window_from_the_images_conv5_maps(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "im.png"
    cv2.imwrite(str(path), rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    record = ImageRecord.unannotated(path, (120, 160))
    torch.manual_seed(0)
    trunk, info = build_trunk("mobilenet_v2", pretrained=False)
    xy = torch.from_numpy(rng.uniform(0, 100, (12, 2))).float()
    boxes = torch.cat([xy, xy + torch.from_numpy(rng.uniform(16, 60, (12, 2))).float()], 1)
    boxes[5] = boxes[4]  # a duplicate window: shared, then expanded back
    maps = compute_conv5(trunk, read_image(path), (96,), CPU)
    fmap, scale = maps.maps[0], maps.scales[0]
    expect = torch.cat([spatial_pyramid_pool(fmap, project_to_cells(b[None], scale, info.stride, tuple(fmap.shape[1:]),
                                                                    info.centre_offset)) for b in boxes])
    live = SPPSource(trunk, info, (96,), SPP_LEVELS, CPU)
    assert torch.equal(live.pool5(record, boxes), expect)
    shared, inverse = live.pool5_shared(record, boxes)
    assert len(shared) < len(boxes) and torch.equal(shared[inverse], expect)
    cache = Conv5Cache(tmp_path / "cache", trunk, (96,), CPU, "float32")
    cached = SPPSource(trunk, info, (96,), SPP_LEVELS, CPU, cache)
    assert torch.equal(cached.pool5(record, boxes), expect)  # computed into the cache
    assert torch.equal(cached.pool5(record, boxes), expect)  # read back from it
