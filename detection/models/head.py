"""The fully connected head on pool5: fc6, fc7 and, for fine-tuning, a (K+1)-way fc8.

SPP-net sec. 4.1: the pooled vector goes through fc6 and fc7 (4096-d each for ZF-5); fine-tuning
adds a 21-way (K+1, background first) fc8 and trains fc6-fc8 only. SVMs are then trained on one of
"pool5", "fc6", "fc7" (after ReLU, as in R-CNN). Two test-time speed levers shrink the head:
Fast R-CNN's truncated SVD replaces fc6/fc7 by two thinner layers (:func:`truncate_svd`), and
dynamic int8 quantisation runs them in 8-bit integers on a CPU (:func:`quantize_int8`);
:func:`apply_test_levers` applies the ones a config asks for.

Beyond the paper (``finetune.e2e.joint_bbox``): Fast R-CNN's sibling box-regression layer on fc7,
(K x 4) class-specific deltas trained jointly with fc8 by a smooth L1 loss, its targets normalised
by :data:`JOINT_BBOX_STDS`; :meth:`FcHead.box_deltas` returns them de-normalised.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

from data.errors import InputError, check_config

BACKGROUND = 0  # fine-tuning label of background; object class k is label k + 1
JOINT_BBOX_STDS = (0.1, 0.1, 0.2, 0.2)  # Fast R-CNN BBOX_NORMALIZE_STDS: joint-bbox targets / these


@dataclass(frozen=True)
class HeadConfig:
    """fc6 and fc7 on top of the pooled vector (ZF-5's, SPP-net table 1: 4096 each)."""

    # Widths of fc6 / fc7: ZF-5's 4096 (SPP-net table 1). train_det's recipe for fc layers that start
    # from scratch makes them 512 (detection/config.py, FROM_SCRATCH_FC).
    fc6: int = 4096
    fc7: int = 4096
    dropout: float = 0.5  # ZF-5 / AlexNet dropout on fc6 and fc7 during training
    # Fast R-CNN sec. 3.1: truncated SVD of fc6 / fc7 at test time (ranks 1024 / 256 there);
    # None keeps the full layer. A speed lever, off by default.
    svd_fc6: int | None = None
    svd_fc7: int | None = None
    # Dynamic int8 quantisation of fc6 / fc7 at test time (CPU only, ~2x faster fc); a speed
    # lever, off by default (docs/performance.md: how to measure its mAP cost).
    int8: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.fc6 >= 1 and self.fc7 >= 1, "head.fc6 and head.fc7 must be >= 1"),
            (0.0 <= self.dropout < 1.0, "head.dropout must be in [0, 1)"),
            (self.svd_fc6 is None or 1 <= self.svd_fc6 <= self.fc6, "head.svd_fc6 must be in [1, head.fc6]"),
            (self.svd_fc7 is None or 1 <= self.svd_fc7 <= min(self.fc6, self.fc7),
             "head.svd_fc7 must be in [1, min(head.fc6, head.fc7)]"),
        ]
        check_config(checks)


class FcHead(nn.Module):
    """fc6 -> ReLU -> dropout -> fc7 -> ReLU -> dropout -> fc8 (K + 1 logits) [and bbox_pred (K x 4)].

    ``joint_bbox`` adds Fast R-CNN's box-regression layer ``bbox_pred`` beside fc8; without it the
    state_dict is exactly the paper's head's.
    """

    def __init__(self, in_dim: int, fc6: int, fc7: int, num_classes: int, dropout: float = 0.5,
                 joint_bbox: bool = False) -> None:
        super().__init__()
        self.fc6 = nn.Linear(in_dim, fc6)
        self.fc7 = nn.Linear(fc6, fc7)
        self.fc8 = nn.Linear(fc7, num_classes + 1)
        self.drop = nn.Dropout(dropout)
        # Caffe's ZF / AlexNet heads use Gaussian std 0.005, tuned to AlexNet's pool5 magnitudes and
        # pre-trained fc layers. Our fc6/fc7 start from scratch on pool5 vectors of any trunk
        # (MobileNetV2's are ~0.1 in size), where std 0.005 leaves the head stuck at the class
        # prior; He initialisation keeps the signal's scale through the ReLUs.
        for layer in (self.fc6, self.fc7):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)
        nn.init.normal_(self.fc8.weight, std=0.01)
        nn.init.zeros_(self.fc8.bias)
        self.num_classes = num_classes
        if joint_bbox:  # created after fc8 so the paper's head draws the same initial weights
            self.bbox_pred = nn.Linear(fc7, 4 * num_classes)
            nn.init.normal_(self.bbox_pred.weight, std=0.001)  # Fast R-CNN: Gaussian std 0.001
            nn.init.zeros_(self.bbox_pred.bias)

    def features(self, pool5: torch.Tensor, layer: str) -> torch.Tensor:
        """(R, D) pool5 -> (R, D_layer) features of ``layer`` in "pool5", "fc6", "fc7" (no dropout)."""
        if layer == "pool5":
            return pool5
        x = torch.relu(self.fc6(pool5))
        if layer == "fc6":
            return x
        return torch.relu(self.fc7(x))

    def forward(self, pool5: torch.Tensor, masks: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """(R, D) pool5 -> (R, K + 1) logits, with dropout in training mode.

        ``masks``: (R, fc6) and (R, fc7) keep-masks of 0 / 1 drawn by the caller (distributed
        fine-tuning draws a whole mini-batch's masks on every rank, as nn.Dropout would, and each
        rank applies its rows); x * (mask / (1 - p)) is what nn.Dropout computes on a CPU.
        """
        return self.fc8(self._fc7(pool5, masks))

    def _fc7(self, pool5: torch.Tensor, masks: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if masks is None:
            x = self.drop(torch.relu(self.fc6(pool5)))
            return self.drop(torch.relu(self.fc7(x)))
        keep = 1.0 - self.drop.p
        x = torch.relu(self.fc6(pool5)) * (masks[0] / keep)
        return torch.relu(self.fc7(x)) * (masks[1] / keep)

    def forward_with_boxes(self, pool5: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(R, D) pool5 -> (R, K + 1) logits and (R, K, 4) NORMALISED deltas (joint_bbox heads only)."""
        x = self._fc7(pool5)
        return self.fc8(x), self.bbox_pred(x).view(-1, self.num_classes, 4)

    def box_deltas(self, pool5: torch.Tensor) -> torch.Tensor:
        """(R, D) pool5 -> (R, K, 4) deltas (dx, dy, dw, dh) for ``data.boxes.decode``, de-normalised."""
        _, deltas = self.forward_with_boxes(pool5)
        return deltas * deltas.new_tensor(JOINT_BBOX_STDS)

    def draw_masks(self, rows: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The dropout keep-masks nn.Dropout would draw for a batch of ``rows`` (same generator
        calls, same order, on the head's device); None when dropout is off (p = 0 draws nothing)."""
        if self.drop.p == 0:
            return None
        dev, keep = self.fc6.weight.device, 1.0 - self.drop.p
        m6 = torch.empty(rows, self.fc6.out_features, device=dev).bernoulli_(keep)
        m7 = torch.empty(rows, self.fc7.out_features, device=dev).bernoulli_(keep)
        return m6, m7


def truncate_svd(layer: nn.Linear, rank: int) -> nn.Sequential:
    """Fast R-CNN sec. 3.1: W (out, in) ~= U_t S_t V_t^T as two layers, in -> rank -> out.

    Cost per vector drops from in*out to rank*(in + out) multiply-adds.
    """
    u, s, vh = torch.linalg.svd(layer.weight.detach(), full_matrices=False)
    first = nn.Linear(layer.in_features, rank, bias=False)
    second = nn.Linear(rank, layer.out_features)
    with torch.no_grad():
        first.weight.copy_(s[:rank, None] * vh[:rank])
        second.weight.copy_(u[:, :rank])
        second.bias.copy_(layer.bias.detach())
    return nn.Sequential(first, second)


def quantize_int8(head: FcHead) -> FcHead:
    """A copy of ``head`` whose linear layers compute in int8 (dynamic quantisation, CPU only).

    Weights are stored as int8 (one scale per layer), each input batch is quantised on the fly and
    the products are accumulated in int32 (fbgemm on x86): ~2x faster than float32 for fc6/fc7 on a
    CPU. Same ``features`` / ``forward`` interface; for inference only.
    """
    with warnings.catch_warnings():
        # torch.ao's eager quantisation API warns that it is deprecated in favour of torchao; it
        # still works in the pinned torch and needs no extra dependency.
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(head.cpu().eval(), {nn.Linear}, dtype=torch.qint8)


def apply_test_levers(head: FcHead, svd_fc6: int | None, svd_fc7: int | None, int8: bool,
                      device: torch.device) -> FcHead:
    """``head`` with the test-time levers applied (SVD first, then int8), in eval mode on ``device``.

    Raises:
        InputError: int8 asked for on a GPU (dynamic quantisation runs on CPUs only).
    """
    if svd_fc6:
        head.fc6 = truncate_svd(head.fc6, svd_fc6)
    if svd_fc7:
        head.fc7 = truncate_svd(head.fc7, svd_fc7)
    if int8:
        if device.type != "cpu":
            raise InputError("head.int8", f"int8 fc layers run on a CPU only, not on {device}")
        return quantize_int8(head)
    return head.to(device).eval()
