"""How windows become feature vectors: the trunk, the scales, the pyramid, R-CNN's warp."""

from __future__ import annotations

from dataclasses import dataclass

from data.errors import check_config
from detection.models.backbones import BACKBONES
from detection.models.spp import SPP_LEVELS

SINGLE_SCALE = (688,)  # SPP-net sec. 4.2, "1-scale": shorter side s = 688
FIVE_SCALES = (480, 576, 688, 864, 1200)  # SPP-net sec. 4.2, "5-scale"
CACHE_DTYPES = ("float16", "float32")


@dataclass(frozen=True)
class FeatureConfig:
    """How windows become feature vectors."""

    # The paper uses ZF-5 pre-trained on ImageNet; no such weights exist offline, MobileNetV2's do.
    backbone: str = "mobilenet_v2"
    # "imagenet" (torchvision weights; none exist for ZF-5), "none" (random init), a classifier work dir
    # of tools/train_cls.py (its trunk and fc6 / fc7) or a checkpoint path holding the trunk's
    # state_dict.
    pretrained: str = "imagenet"
    # Shorter side of the resized image, one entry per scale (SPP-net sec. 4.2).
    scales: tuple[int, ...] = SINGLE_SCALE
    # Pyramid levels (SPP-net sec. 4.1, detection): 6x6, 3x3, 2x2, 1x1 = 50 bins.
    levels: tuple[int, ...] = SPP_LEVELS
    # conv5 maps are cached in float16: half the disk, and the pooled maxima change by < 1e-3.
    cache_dtype: str = "float16"
    # Windows that project onto the same conv5 cells get the same vector; compute it once
    # (the released SPP_net code does this). Exact: it changes no number.
    share_identical_windows: bool = True
    # R-CNN sec. 2.1: warp with p = 16 pixels of context around the window.
    context_padding: int = 16
    # Windows per forward batch of R-CNN's per-window network (memory, not accuracy).
    rcnn_batch_size: int = 64
    # Cache R-CNN's pool5 vectors on disk per image (detection.features.rcnn_cache), as the
    # released R-CNN does: later runs on the same trunk (other seeds, other Table 9 rows, their
    # tests) skip the per-window trunk. Off by default: D x 2 bytes per window (32 KB for MobileNetV2).
    rcnn_cache: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.backbone in BACKBONES, f"features.backbone must be one of {BACKBONES}"),
            (len(self.scales) > 0 and min(self.scales) >= 32, "features.scales must be >= 32"),
            (len(self.levels) > 0 and min(self.levels) >= 1, "features.levels must be >= 1"),
            (self.cache_dtype in CACHE_DTYPES, f"features.cache_dtype must be one of {CACHE_DTYPES}"),
            (self.context_padding >= 0, "features.context_padding must be >= 0"),
            (self.rcnn_batch_size >= 1, "features.rcnn_batch_size must be >= 1"),
        ]
        check_config(checks)
