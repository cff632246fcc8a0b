"""Convolutional trunks that end in a stride-16 "conv5" map, as SPP-net's pyramid pooling expects.

Each trunk is an ``nn.Module`` mapping a normalised (N, 3, H, W) image batch to its (N, C, H', W')
conv5 map with H' ~ H / 16. ``Trunk`` records what the rest of the pipeline needs to know: channels
C, total stride S and the warp size R-CNN uses.

- ``mobilenet_v2`` (default): torchvision's ImageNet MobileNetV2 up to its last 320-channel block;
  its last stride-2 stage is dilated (stride 1, dilation 2) rather than dropped, so conv5 is at
  stride 16 with the pretrained weights still meaningful.
- ``zf5``: the paper's ZF-5 (Zeiler & Fergus "fast" net as in SPP-net table 1: conv5 256 channels,
  stride 16). No ImageNet weights exist offline; see ``detection.training.pretrain``.
- ``alexnet``, ``vgg16``: torchvision's definitions cut before their last max-pool (stride 16).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models

from data.errors import InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's normalisation, RGB in [0, 1]
IMAGENET_STD = (0.229, 0.224, 0.225)

BACKBONES = ("mobilenet_v2", "zf5", "alexnet", "vgg16")


@dataclass(frozen=True)
class TrunkInfo:
    """What the pipeline needs to know about a trunk.

    Attributes:
        name: backbone name.
        channels: C of conv5.
        stride: total stride S of conv5 in input pixels.
        warp_size: R-CNN's warped window side (224 for ZF-5 / MobileNetV2 / VGG, 227 for AlexNet).
        centre_offset: conv5 cell l's receptive field is centred on input pixel S * l +
            centre_offset (pixel indices; the same along y). 0 when every layer pads floor(k/2), as
            SPP-net's appendix A assumes; the others follow from their padding. Measured with
            autograd for every trunk in tests/detection/models/test_backbones.py.
    """

    name: str
    channels: int
    stride: int
    warp_size: int
    centre_offset: float


def _dilate_mobilenet_tail(features: nn.Sequential, first_block: int) -> None:
    """Turn the stride-2 block ``first_block`` and those after it into stride 1, dilation 2."""
    for block in list(features)[first_block:]:
        for m in block.modules():
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
                m.stride, m.dilation, m.padding = (1, 1), (2, 2), (2, 2)


def _mobilenet_v2(pretrained: bool) -> tuple[nn.Module, TrunkInfo]:
    weights = models.MobileNet_V2_Weights.IMAGENET1K_V1 if pretrained else None
    net = models.mobilenet_v2(weights=weights)
    # features[14] is the last stride-2 block (stride 32 after it); features[18] is the 1x1 conv
    # to 1280 channels, which would make 50-bin pooled vectors of 64,000 numbers: we stop at 320.
    trunk = nn.Sequential(*list(net.features)[:18])
    _dilate_mobilenet_tail(trunk, 14)
    return trunk, TrunkInfo("mobilenet_v2", 320, 16, 224, 0.0)


class WithinChannelLRN(nn.Module):
    """Caffe's LRN with ``norm_region: WITHIN_CHANNEL``, as in the released SPP-net ZF-5.

    b = a / (1 + alpha * m)^beta, where m is the mean of a^2 over the size x size spatial window
    around each value in its own channel, zeros beyond the border counting in the mean (Caffe builds
    it from a square, an average pooling with pad (size - 1) / 2 and a power layer; so do we, which
    keeps it ~1.6x cheaper on a CPU than an across-channel LRN of torch). No parameters or buffers.
    """

    def __init__(self, size: int = 3, alpha: float = 5e-5, beta: float = 0.75) -> None:
        super().__init__()
        if size < 1 or size % 2 == 0:
            raise ValueError(f"WithinChannelLRN size must be odd and >= 1, got {size}")
        self.size, self.alpha, self.beta = size, alpha, beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W)."""
        mean_sq = F.avg_pool2d(x * x, self.size, stride=1, padding=self.size // 2, count_include_pad=True)
        if torch.is_grad_enabled() and x.requires_grad:  # training: autograd needs the intermediates
            return x * mean_sq.mul(self.alpha).add(1.0).pow(-self.beta)
        # Inference: the same numbers in place, in one buffer. On conv1's map (96 x 342 x 516 at
        # scale 688) every new buffer costs as much as the arithmetic; this is ~1.8x faster.
        return mean_sq.mul_(self.alpha).add_(1.0).pow_(-self.beta).mul_(x)

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}"


def init_zf5_(trunk: nn.Module) -> nn.Module:
    """Kaiming-normal (fan-in) conv weights and zero biases, in place; returns ``trunk``.

    Caffe's ZF / AlexNet recipe (Gaussian std 0.01, LRN, no batch norm) needs long ImageNet runs to
    leave its near-zero start; torch's default init also shrinks the signal ~2x per layer, so conv5
    starts ~100x smaller than the input and a short crop pre-training stays at the majority class.
    He et al. 2015's init keeps each layer's forward variance, which is what a from-scratch trunk
    without batch norm needs.
    """
    for m in trunk.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return trunk


# (in, out, kernel, stride, padding) of conv1..conv5, the released Zeiler_conv5.prototxt
_ZF5_CONVS = ((3, 96, 7, 2, 1), (96, 256, 5, 2, 0), (256, 384, 3, 1, 1), (384, 384, 3, 1, 1), (384, 256, 3, 1, 1))


def zf5_trunk(batch_norm: bool = False) -> nn.Sequential:
    """ZF-5's five conv layers (SPP-net table 1, "ZF-5"): conv5 with 256 channels at stride 16.

    Layer for layer the released SPP_net code's ``model-defs/Zeiler_conv5.prototxt``: conv1 7x7/2
    pad 1, within-channel LRN (size 3, alpha 5e-5, beta 0.75), max-pool 3x3/2; conv2 5x5/2 pad 0,
    LRN, max-pool 3x3/2; conv3-5 3x3 pad 1. Caffe rounds pooled sizes up (``ceil_mode``), so a
    224 x 224 input gives the paper's 13 x 13 conv5. Weights are randomly initialised by
    :func:`init_zf5_` (seeded by torch's global RNG).

    Args:
        batch_norm: NOT in the released net (SPP-net predates Ioffe & Szegedy 2015): a
            ``BatchNorm2d`` between each conv and its ReLU, for training from scratch on a small
            budget (``detection.classification``). :func:`fold_batch_norm` turns such a trunk back
            into this plain one, exactly (eval mode), with the same state_dict keys.
    """
    layers: list[nn.Module] = []
    for i, (c_in, c_out, k, stride, pad) in enumerate(_ZF5_CONVS):
        layers.append(nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad))
        if batch_norm:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.ReLU(inplace=True))
        if i < 2:  # conv1, conv2: LRN then max-pool
            layers += [WithinChannelLRN(3, alpha=5e-5, beta=0.75), nn.MaxPool2d(3, stride=2, ceil_mode=True)]
    return init_zf5_(nn.Sequential(*layers))


def fold_batch_norm(trunk: nn.Sequential) -> nn.Sequential:
    """A ZF-5 trained with ``batch_norm=True`` -> the plain ZF-5 computing the same function.

    In eval mode BN is an affine map per channel, y = gamma * (x - mean) / sqrt(var + eps) + beta,
    applied to the conv output before the ReLU, so it folds into the conv exactly:
    W' = W * s, b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps). The result has
    :func:`zf5_trunk`'s layers and state_dict keys, so the detector loads it as any ZF-5. A trunk
    without BN is returned as a copy.
    """
    plain = zf5_trunk(batch_norm=False)
    convs = [m for m in trunk if isinstance(m, nn.Conv2d)]
    norms = {i: m for i, m in enumerate(trunk) if isinstance(m, nn.BatchNorm2d)}
    layers = list(trunk)
    with torch.no_grad():
        for dst, src in zip((m for m in plain if isinstance(m, nn.Conv2d)), convs):
            weight, bias = src.weight.clone(), src.bias.clone()
            bn = norms.get(layers.index(src) + 1)
            if bn is not None:
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
                weight = weight * scale.view(-1, 1, 1, 1)
                bias = (bias - bn.running_mean) * scale + bn.bias
            dst.weight.copy_(weight)
            dst.bias.copy_(bias)
    return plain.to(memory_format=torch.channels_last).train(trunk.training)


def _torchvision_weights_in_cache(weights: models.WeightsEnum, backbone: str) -> None:
    """Raise a clear error when ImageNet weights would need a download that cannot happen here."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / weights.url.rsplit("/", 1)[-1]
    if not path.is_file():
        raise InputError(
            f"--backbone {backbone}",
            f"ImageNet weights not found at {path}; download {weights.url} there "
            "(or run once with internet), or train from scratch with --pretrained none",
        )


def _alexnet(pretrained: bool) -> tuple[nn.Module, TrunkInfo]:
    weights = models.AlexNet_Weights.IMAGENET1K_V1 if pretrained else None
    if weights is not None:
        _torchvision_weights_in_cache(weights, "alexnet")
    net = models.alexnet(weights=weights)
    # AlexNet's features end conv5, ReLU, max-pool: without that pool conv5 is at stride 16
    # (torchvision's conv1 has padding 2, so the map is slightly larger than the paper's 13x13).
    return nn.Sequential(*list(net.features)[:12]), TrunkInfo("alexnet", 256, 16, 227, 15.0)  # conv1 11x11/4 pad 2, unpadded 3x3/2 pools


def _vgg16(pretrained: bool) -> tuple[nn.Module, TrunkInfo]:
    weights = models.VGG16_Weights.IMAGENET1K_V1 if pretrained else None
    if weights is not None:
        _torchvision_weights_in_cache(weights, "vgg16")
    net = models.vgg16(weights=weights)
    return nn.Sequential(*list(net.features)[:30]), TrunkInfo("vgg16", 512, 16, 224, 7.5)  # 2x2/2 pools: (16 - 1) / 2


def build_trunk(name: str, pretrained: bool) -> tuple[nn.Module, TrunkInfo]:
    """The conv trunk ``name`` in eval mode, with ImageNet weights when ``pretrained``.

    ``zf5`` has no ImageNet weights: ``pretrained`` is ignored for it and its weights come from
    ``detection.training.pretrain`` or a user checkpoint.
    """
    if name == "mobilenet_v2":
        trunk, info = _mobilenet_v2(pretrained)
    elif name == "zf5":
        trunk, info = zf5_trunk(), TrunkInfo("zf5", 256, 16, 224, 20.0)  # released prototxt: conv1 7x7/2 pad 1, conv2 pad 0
    elif name == "alexnet":
        trunk, info = _alexnet(pretrained)
    elif name == "vgg16":
        trunk, info = _vgg16(pretrained)
    else:
        raise InputError("--backbone", f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return trunk.eval(), info


def normalise(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) uint8 RGB -> float32 normalised with ImageNet mean and std."""
    x = images.float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
