"""The forward passes that end-to-end fine-tuning trains through, one per method.

SPP-net: the fixed first blocks' output per image and scale comes from a per-image cache (like
conv5 in fc-only fine-tuning); the trained blocks turn it into conv5 for the scales the sampled
windows choose, and the windows are pooled from it with a gradient. R-CNN: each window is warped
and run through the whole trunk (``detection.features.rcnn_source.warped_pool5_grad``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from data.images import read_image
from data.records import ImageRecord
from detection.features.config import FeatureConfig
from detection.features.conv5 import Conv5Cache
from detection.features.rcnn_source import warped_pool5_grad
from detection.features.spp_source import pool_windows_grad
from detection.models.backbones import TrunkInfo
from detection.models.dilated_conv import phase_dilated
from detection.models.trunk_blocks import split_trunk


@dataclass
class SPPRegions:
    """SPP-net's training forward: cached fixed blocks -> trained blocks -> pooling with a gradient."""

    cache: Conv5Cache  # output of the fixed blocks, per image and scale
    trained: nn.Module
    info: TrunkInfo
    levels: tuple[int, ...]
    device: torch.device

    def __call__(self, record: ImageRecord, boxes: torch.Tensor) -> torch.Tensor:
        """(R, 4) windows in original-image pixels -> (R, D) pool5 with its graph."""
        maps = self.cache.get(record)

        def conv5_at(i: int) -> torch.Tensor:
            x = maps.maps[i].to(self.device, torch.float32).unsqueeze(0).contiguous(memory_format=torch.channels_last)
            return self.trained(x)[0]  # (C, H, W)

        return pool_windows_grad(conv5_at, maps.scales, boxes.float().cpu(), self.info.stride,
                                 self.info.centre_offset, self.levels)


@dataclass
class RCNNRegions:
    """R-CNN's training forward: each window warped, fixed blocks without a graph, trained blocks with."""

    frozen: nn.Module
    trained: nn.Module
    info: TrunkInfo
    levels: tuple[int, ...]
    context_padding: int
    device: torch.device

    def __call__(self, record: ImageRecord, boxes: torch.Tensor) -> torch.Tensor:
        return warped_pool5_grad(read_image(record.path), boxes, self.frozen, self.trained, self.info,
                                 self.levels, self.context_padding, self.device)


def make_regions(method: str, features: FeatureConfig, freeze_blocks: int, trunk: nn.Sequential, info: TrunkInfo,
                 cache_root: Path, device: torch.device) -> SPPRegions | RCNNRegions:
    """The training forward of ``method`` ("spp" or "rcnn") over ``trunk`` cut after ``freeze_blocks``.

    The SPP-net cache folder is keyed by the fixed blocks' layers and weights, the scales and the
    dtype (``Conv5Cache``), under ``cache_root / "frozen"``. The trained blocks' dilated convs (the
    stride-16 trunk's last stage) run phase by phase (``detection.models.dilated_conv``): the same
    numbers and parameters, and a backward 2.6x shorter on a CPU (MobileNetV2's last 4 blocks, 2
    images at 688 px: 5.6 s against 2.2 s, measured 2026-12-07 on 2 shared cores).
    """
    frozen, trained = split_trunk(trunk, freeze_blocks)
    phase_dilated(trained)  # in place: ``trunk`` holds the same modules, and so does trunk.pt's state dict
    if method == "rcnn":
        return RCNNRegions(frozen, trained, info, tuple(features.levels), features.context_padding, device)
    cache = Conv5Cache(cache_root / "frozen", frozen, features.scales, device, features.cache_dtype)
    return SPPRegions(cache, trained, info, tuple(features.levels), device)
