"""The detector's configuration: frozen dataclasses whose defaults are the papers'.

Tools build one :class:`DetectorConfig` (defaults, then a YAML file, then ``--set key=value``
overrides, see ``detection.config_io``), save the resolved config in the work dir, and pass plain
values down. Library code never reads a global config.

Where our default differs from the paper it says why (mostly: no ImageNet ZF-5 offline, a CPU).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from data.errors import InputError
from detection.backbones import BACKBONES
from detection.bbox_regression import BBoxRegConfig
from detection.spp import SPP_LEVELS
from proposals.config import ProposalConfig
from svm.config import SVMConfig

METHODS = ("spp", "rcnn")
SVM_LAYERS = ("pool5", "fc6", "fc7")
SINGLE_SCALE = (688,)  # SPP-net sec. 4.2, "1-scale": shorter side s = 688
FIVE_SCALES = (480, 576, 688, 864, 1200)  # SPP-net sec. 4.2, "5-scale"


@dataclass(frozen=True)
class FeatureConfig:
    """How windows become feature vectors."""

    # The paper uses ZF-5 pre-trained on ImageNet; no such weights exist offline, MobileNetV2's do.
    backbone: str = "mobilenet_v2"
    # "imagenet" (torchvision weights), "none" (random init / zf5 pre-trained on our crops), or a
    # checkpoint path holding the trunk's state_dict.
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


@dataclass(frozen=True)
class HeadConfig:
    """fc6 and fc7 on top of the pooled vector (ZF-5's, SPP-net table 1: 4096 each)."""

    fc6: int = 4096
    fc7: int = 4096
    dropout: float = 0.5  # ZF-5 / AlexNet dropout on fc6 and fc7 during training
    # Fast R-CNN sec. 3.1: truncated SVD of fc6 / fc7 at test time (ranks 1024 / 256 there);
    # None keeps the full layer. A speed lever, off by default.
    svd_fc6: int | None = None
    svd_fc7: int | None = None
    # Dynamic int8 quantisation of fc6 / fc7 at test time (CPU only, ~2x faster fc); a speed
    # lever, off by default. Its mAP cost is in the README's lever table.
    int8: bool = False


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning fc6, fc7 and a new (K+1)-way fc8 on pooled vectors, conv fixed (SPP-net sec. 4.1)."""

    enabled: bool = True
    # SPP-net sec. 4.1: lr 1e-4 for 250k mini-batches, then 1e-5 for 50k.
    iterations: int = 300_000
    lr: float = 1e-4
    lr_step: int = 250_000
    lr_gamma: float = 0.1
    momentum: float = 0.9  # Caffe's solver for R-CNN / SPP-net
    weight_decay: float = 5e-4  # idem
    batch_size: int = 128  # SPP-net sec. 4.1: mini-batch 128
    fg_fraction: float = 0.25  # 25% positives
    fg_iou: float = 0.5  # positives: IoU in [0.5, 1]
    bg_iou_low: float = 0.1  # negatives: IoU in [0.1, 0.5)
    bg_iou_high: float = 0.5
    # Windows per image whose pool5 vectors are kept in memory for fine-tuning (float16: memory
    # = images x windows_per_image x D x 2 bytes); batches are drawn from them across all images.
    # The paper samples over all windows; this bounds memory and makes a step cost only the fc.
    windows_per_image: int = 128


@dataclass(frozen=True)
class TestConfig:
    """Turning window scores into detections."""

    nms_iou: float = 0.3  # R-CNN / SPP-net: per-class NMS at IoU 0.3
    max_per_image: int = 100  # keep the 100 best after NMS (Fast R-CNN test.py)
    score_threshold: float = -1.5  # drop windows whose SVM score is below (well under the margin)
    bbox_reg: bool = True  # SPP-net table 9: "ftfc7 bb"


@dataclass(frozen=True)
class DetectorConfig:
    """Everything that decides a trained detector and its detections."""

    method: str = "spp"  # "spp" or "rcnn": the only part they do not share is the extractor
    svm_layer: str = "fc7"  # SPP-net table 9 ablations: pool5, fc6, fc7 (ft or not)
    seed: int = 0
    proposals: ProposalConfig = field(default_factory=ProposalConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    svm: SVMConfig = field(default_factory=SVMConfig)
    bbox: BBoxRegConfig = field(default_factory=BBoxRegConfig)
    test: TestConfig = field(default_factory=TestConfig)

    def __post_init__(self) -> None:
        checks = [
            (self.method in METHODS, f"method must be one of {METHODS}"),
            (self.svm_layer in SVM_LAYERS, f"svm_layer must be one of {SVM_LAYERS}"),
            (self.features.backbone in BACKBONES, f"features.backbone must be one of {BACKBONES}"),
            (len(self.features.scales) > 0 and min(self.features.scales) >= 32, "features.scales must be >= 32"),
            (self.features.cache_dtype in ("float16", "float32"), "features.cache_dtype: float16 or float32"),
            (0.0 < self.finetune.fg_fraction < 1.0, "finetune.fg_fraction must be in (0, 1)"),
            (self.finetune.batch_size >= 2, "finetune.batch_size must be >= 2"),
            (0.0 < self.test.nms_iou <= 1.0, "test.nms_iou must be in (0, 1]"),
        ]
        for ok, problem in checks:
            if not ok:
                raise InputError("config", problem)
