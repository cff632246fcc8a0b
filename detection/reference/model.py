"""torchvision's Faster R-CNN built on OUR trunk: the ImageNet MobileNetV2 SPP-net uses, cut at its
last 320-channel block with the stride-2 stage dilated (``detection.models.backbones``), so the
RPN and the RoI head read the same stride-16 conv5 map as SPP-net's pyramid pooling.

Why stride 16 rather than MobileNetV2's own 32 (torchvision's docstring example): it is the map
SPP-net and R-CNN see here, so the row compares detectors, not features; it is Faster R-CNN's own
stride (VGG-16's conv5_3, sec. 3.1); and the embedded set's small objects (a fifth below 64 px)
keep 4x more cells. It costs ~4x the FLOPs of the last blocks.

torchvision's detectors take float RGB in [0, 1] and (x1, y1, x2, y2) boxes in continuous pixels
of the original image, our convention: boxes pass through unchanged; labels are shifted by one
(``BACKGROUND`` = 0, class k is label k + 1, as our fine-tuning's).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.misc import FrozenBatchNorm2d

from data.boxes import as_tensor, clip_boxes, hflip_boxes
from data.images import record_image
from data.records import Detections, ImageRecord
from detection.models.backbones import IMAGENET_MEAN, IMAGENET_STD, build_trunk
from detection.models.dilated_conv import phase_dilated
from detection.models.head import BACKGROUND
from detection.reference.config import FasterRCNNConfig


def freeze_batch_norm(module: nn.Module) -> nn.Module:
    """Every ``BatchNorm2d`` of ``module`` -> a ``FrozenBatchNorm2d`` with its statistics and affine
    weights (in place; returns ``module``): torchvision's pre-trained detection backbones do the same."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(frozen, key).copy_(getattr(child, key).detach())
            setattr(module, name, frozen)
        else:
            freeze_batch_norm(child)
    return module


def stage_starts(trunk: nn.Sequential) -> list[int]:
    """The first block of each stage of a MobileNetV2 trunk: torchvision's ``_mobilenet_extractor``
    rule, block 0, every stride-2 block (``_is_cn``) and the last block."""
    return [0] + [i for i, b in enumerate(trunk) if getattr(b, "_is_cn", False)] + [len(trunk) - 1]


def reference_trunk(trainable_stages: int, pretrained: bool = True) -> nn.Sequential:
    """Our MobileNetV2 trunk (N, 3, H, W) -> (N, 320, H / 16, W / 16) with batch norm frozen, its
    blocks before the last ``trainable_stages`` stages fixed and its dilated convs computed phase by
    phase (``detection.models.dilated_conv``); ``out_channels`` set for torchvision."""
    trunk, info = build_trunk("mobilenet_v2", pretrained)
    starts = stage_starts(trunk)
    fixed = len(trunk) if trainable_stages == 0 else starts[len(starts) - trainable_stages]
    for block in list(trunk)[:fixed]:
        block.requires_grad_(False)
    # The dilated tail's convs computed phase by phase: the same function, a backward ~40x faster on a CPU.
    trunk = phase_dilated(freeze_batch_norm(trunk))
    trunk.out_channels = info.channels
    return trunk


def build_faster_rcnn(num_classes: int, cfg: FasterRCNNConfig, pretrained: bool = True) -> FasterRCNN:
    """Faster R-CNN for ``num_classes`` (K) classes on our trunk, its new layers drawn from ``cfg.seed``.

    RPN: ``cfg.anchor_sizes`` x ``cfg.aspect_ratios`` anchors on the one map. RoI head: RoIAlign to
    7 x 7 with 2 samples per bin (torchvision's MultiScaleRoIAlign on one map, its FasterRCNN
    default), two fc layers of 1024 (TwoMLPHead), K + 1 scores and per-class boxes. ``cfg`` sets the
    RoIs sampled per training image and the proposals kept at test time; the rest is torchvision's
    defaults (RPN: 2000 proposals kept after NMS 0.7 in training, 256 anchors sampled per image;
    NMS 0.5 per class).
    """
    with torch.random.fork_rng(devices=[]):  # the new layers' init, without touching the caller's stream
        torch.manual_seed(cfg.seed)
        trunk = reference_trunk(cfg.trainable_stages, pretrained)
        anchors = AnchorGenerator(sizes=(tuple(cfg.anchor_sizes),), aspect_ratios=(tuple(cfg.aspect_ratios),))
        roi_pool = MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2)
        return FasterRCNN(trunk, num_classes=num_classes + 1, min_size=cfg.min_size, max_size=cfg.max_size,
                          image_mean=list(IMAGENET_MEAN), image_std=list(IMAGENET_STD),
                          rpn_anchor_generator=anchors, box_roi_pool=roi_pool,
                          rpn_post_nms_top_n_test=cfg.test_proposals, box_batch_size_per_image=cfg.rois_per_image,
                          box_score_thresh=cfg.box_score_thresh, box_detections_per_img=cfg.detections_per_img)


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32 in [0, 1], what torchvision's detectors take."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)


def training_pair(record: ImageRecord, flip: bool, use_difficult: bool) -> tuple[torch.Tensor, dict]:
    """One training image and its target: (3, H, W) and {"boxes": (G, 4), "labels": (G,) in 1..K},
    mirrored left to right when ``flip``; difficult objects dropped unless ``use_difficult``."""
    image = image_tensor(record_image(record))
    keep = np.ones(record.num_objects, bool) if use_difficult else ~record.difficult
    boxes = as_tensor(record.boxes[keep])
    if flip:
        image, boxes = image.flip(-1), hflip_boxes(boxes, record.size[1])
    labels = torch.as_tensor(record.labels[keep], dtype=torch.int64) + (BACKGROUND + 1)
    return image, {"boxes": boxes, "labels": labels}


def to_detections(output: dict[str, torch.Tensor], size: tuple[int, int]) -> Detections:
    """torchvision's output for one image -> our Detections (labels 0..K-1, boxes inside ``size``)."""
    boxes = clip_boxes(output["boxes"].detach().float().cpu(), size)
    return Detections(boxes.numpy().astype(np.float32), output["scores"].detach().float().cpu().numpy(),
                      (output["labels"].detach().cpu() - (BACKGROUND + 1)).numpy().astype(np.int64))
