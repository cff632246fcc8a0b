"""The SPP-net classifier (sec. 3): conv trunk -> pyramid pooling (or a fixed pool5) -> fc6 -> fc7 -> fc8.

    image (N, 3, H, W), any H, W -> trunk -> conv5 (N, C, H/16, W/16)
      -> "spp":   pyramid pooling of the whole map, {6, 3, 2, 1}: (N, C * 50), whatever H, W
      -> "fixed": the no-SPP baseline's pool5, a max pool with a fixed window and stride: (N, C * n * n)
                  only at the training size (another size gives another length, which fc6 refuses)
      -> fc6 -> ReLU -> dropout -> fc7 -> ReLU -> dropout -> fc8: (N, K) logits

The head is the detector's own :class:`~detection.models.head.FcHead`, so a classifier's fc6 / fc7
load into a detector's head unchanged (``head.fc6.*`` / ``head.fc7.*``), as the trunk does
(``trunk.*``). FcHead's fc8 has ``num_classes + 1`` outputs (the detector's background first); a
classifier's K classes already include its background (the embedded set's label 0), so it is built
with K - 1.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from detection.classification.config import ModelConfig
from detection.models.backbones import build_trunk, fold_batch_norm, zf5_trunk
from detection.models.head import FcHead
from detection.models.spp import pooled_length, pyramid_pool_whole


def conv5_side(trunk: nn.Module, size: int) -> int:
    """Side a of the conv5 map of a ``size`` x ``size`` input (measured, so any trunk works)."""
    with torch.no_grad():
        was_training = trunk.training
        out = trunk.eval()(torch.zeros(1, 3, size, size, device=next(trunk.parameters()).device))
        trunk.train(was_training)
    return int(out.shape[-1])


class FixedPool5(nn.Module):
    """The no-SPP baseline's pool5: max pool, window ceil(a / n), stride floor(a / n) (sec. 2.3).

    Built for an a x a conv5 (the training size) it gives n x n bins; at any other size its output
    has another length, and :meth:`forward` says so instead of letting fc6 fail obscurely.
    """

    def __init__(self, conv5: int, bins: int) -> None:
        super().__init__()
        if conv5 < bins:
            raise ValueError(f"a fixed {bins}x{bins} pool5 needs conv5 >= {bins} cells, the training size gives "
                             f"{conv5}; lower model.fixed_bins or train at a larger size")
        self.bins = bins
        self.pool = nn.MaxPool2d(math.ceil(conv5 / bins), conv5 // bins)

    def forward(self, conv5: torch.Tensor) -> torch.Tensor:
        """(N, C, a, a) -> (N, C * n * n)."""
        out = self.pool(conv5)
        if out.shape[-2:] != (self.bins, self.bins):
            raise ValueError(f"fixed pool5 gives {tuple(out.shape[-2:])} bins on a {tuple(conv5.shape[-2:])} conv5; "
                             "a no-SPP network takes its training size only")
        return out.flatten(1)


class PyramidPool(nn.Module):
    """Pyramid pooling of each WHOLE conv5 map (``detection.models.spp.pyramid_pool_whole``)."""

    def __init__(self, levels: tuple[int, ...]) -> None:
        super().__init__()
        self.levels = tuple(levels)

    def forward(self, conv5: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C * sum(n^2))."""
        return pyramid_pool_whole(conv5, self.levels)

    def extra_repr(self) -> str:
        return f"levels={self.levels}"


class SPPClassifier(nn.Module):
    """Trunk + pooling + FcHead; takes (N, 3, H, W) normalised images, returns (N, K) logits."""

    def __init__(self, cfg: ModelConfig, num_classes: int, train_size: int) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        self.trunk, self.info = build_trunk(cfg.backbone, pretrained=cfg.imagenet)  # zf5: He init (init_zf5_)
        if cfg.backbone == "zf5" and cfg.batch_norm:  # trained with BN, saved without (fold_batch_norm)
            self.trunk = zf5_trunk(batch_norm=True)
        if cfg.pool == "spp":
            self.pool: nn.Module = PyramidPool(cfg.levels)
            dim = pooled_length(self.info.channels, cfg.levels)
        else:
            self.pool = FixedPool5(conv5_side(self.trunk, train_size), cfg.fixed_bins)
            dim = self.info.channels * cfg.fixed_bins ** 2
        self.head = FcHead(dim, cfg.fc6, cfg.fc7, num_classes - 1, cfg.dropout)
        # fc8 starts at zero: FcHead's std 0.01 on He-scaled fc7 activations of a from-scratch trunk
        # gives logits of std ~1.5 (initial loss 3.8 for 13 classes, ln 13 = 2.56), whose first steps
        # shrink conv5 towards dead ReLUs; zero logits start at the uniform prior instead.
        nn.init.zeros_(self.head.fc8.weight)
        # channels_last: ~1.7x faster ZF-5 training on our CPU (measured fwd + bwd, batch 32 at 112 px)
        self.trunk.to(memory_format=torch.channels_last)

    def plain_state_dict(self) -> dict[str, torch.Tensor]:
        """The state_dict with a ZF-5 trunk's batch norm folded into its convs: the plain ZF-5 as
        released (``backbones.fold_batch_norm``), the same function in eval mode. What classifier.pt
        holds, and what a network built with ``batch_norm=False`` loads."""
        state = self.state_dict()
        if self.info.name == "zf5" and any(isinstance(m, nn.BatchNorm2d) for m in self.trunk.modules()):
            state = {k: v for k, v in state.items() if not k.startswith("trunk.")}
            state.update({f"trunk.{k}": v for k, v in fold_batch_norm(self.trunk).state_dict().items()})
        return state

    def forward(self, images: torch.Tensor, masks: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """(N, 3, H, W) normalised (``backbones.normalise``) -> (N, K) logits.

        ``masks``: the head's dropout masks, drawn by the caller (``FcHead.forward``; distributed training).
        """
        return self.head(self.pool(self.trunk(images.contiguous(memory_format=torch.channels_last))), masks)
