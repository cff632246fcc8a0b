"""Fine-tuning's settings (fc-only and end-to-end), beside the stage they configure."""

from __future__ import annotations

from dataclasses import dataclass, field

from data.errors import check_config

FINETUNE_MODES = ("fc", "e2e")


@dataclass(frozen=True)
class E2EConfig:
    """End-to-end fine-tuning's own settings (``finetune.mode=e2e``, ``detection.training.e2e``:
    beyond SPP-net, Fast R-CNN's recipe)."""

    # Leading conv blocks kept fixed (their output cached per image for SPP-net); Fast R-CNN
    # sec. 4.5 fixes conv1 of its small nets. A block is a top-level child holding a conv.
    freeze_blocks: int = 1
    # Images per mini-batch, batch_size / images windows from each (Fast R-CNN sec. 2.3: N = 2).
    images_per_batch: int = 2
    # The conv blocks' learning rate is lr * conv_lr_mult (Caffe's lr_mult; Fast R-CNN: 1). Lower it
    # when the head starts from scratch at a high lr, so the pre-trained conv is not wrecked early.
    conv_lr_mult: float = 1.0
    # Fast R-CNN's box-regression layer trained jointly, smooth L1 weighted by bbox_loss_weight.
    joint_bbox: bool = False
    bbox_loss_weight: float = 1.0  # Fast R-CNN eq. 1: lambda = 1

    def __post_init__(self) -> None:
        check_config([
            (self.freeze_blocks >= 0, "finetune.e2e.freeze_blocks must be >= 0"),
            (self.images_per_batch >= 1, "finetune.e2e.images_per_batch must be >= 1"),
            (self.bbox_loss_weight >= 0, "finetune.e2e.bbox_loss_weight must be >= 0"),
            (self.conv_lr_mult >= 0, "finetune.e2e.conv_lr_mult must be >= 0"),
        ])


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning fc6, fc7 and a new (K+1)-way fc8 on pooled vectors, conv fixed (SPP-net sec. 4.1)."""

    enabled: bool = True  # false: fc6 / fc7 as they come (SPP-net table 9's "pool5" and "fc6" rows)
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
    bg_iou_high: float = 0.5  # (the upper end of that band)
    # Windows per image whose pool5 vectors are pooled once for fine-tuning (float16: images x
    # windows_per_image x D x 2 bytes, in memory up to train_det's --memory-gb, on disk past it);
    # batches are drawn from them across all images. The paper samples over all windows; this makes
    # a step cost only the fc layers.
    windows_per_image: int = 128
    # Beyond the paper (``detection.training.e2e``): "fc" trains fc6-fc8 on fixed pool5 vectors
    # (SPP-net sec. 4.1, R-CNN's conv fixed too); "e2e" also trains the conv layers, back-propagating
    # through the pyramid pooling (SPP-net) or through each warped window (R-CNN sec. 2.3's recipe).
    mode: str = "fc"
    e2e: E2EConfig = field(default_factory=E2EConfig)  # read with mode=e2e only

    def __post_init__(self) -> None:
        check_config([
            (self.iterations >= 0, "finetune.iterations must be >= 0"),
            (self.lr > 0, "finetune.lr must be > 0"),
            (self.lr_step >= 1, "finetune.lr_step must be >= 1"),
            (0.0 < self.fg_fraction < 1.0, "finetune.fg_fraction must be in (0, 1)"),
            (self.batch_size >= 2, "finetune.batch_size must be >= 2"),
            (0.0 <= self.bg_iou_low <= self.bg_iou_high <= self.fg_iou <= 1.0,
             "finetune IoU bands: need 0 <= bg_iou_low <= bg_iou_high <= fg_iou <= 1"),
            (self.windows_per_image >= 1, "finetune.windows_per_image must be >= 1"),
            (self.mode in FINETUNE_MODES, f"finetune.mode must be one of {FINETUNE_MODES}"),
            (self.e2e.images_per_batch <= self.batch_size, "finetune.e2e.images_per_batch must be <= batch_size"),
            (not self.e2e.joint_bbox or self.mode == "e2e", "finetune.e2e.joint_bbox needs finetune.mode=e2e"),
        ])
