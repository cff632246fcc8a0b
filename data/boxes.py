"""All box math of the project, in one place.

Convention (see CONVENTIONS.md): boxes are float tensors of shape (R, 4) in (x1, y1, x2, y2),
continuous 0-based pixel coordinates of the original image, width = x2 - x1. Sizes are
(height, width); ``scale`` means new size / original size.

The generic operations wrap ``torchvision.ops``; what is written here by hand is only what the
papers define: the box-regression encoding (R-CNN appendix C) and the projection of a window onto
conv5 cells (SPP-net appendix A).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torchvision import ops

Tensor = torch.Tensor


def as_tensor(boxes: np.ndarray | Tensor) -> Tensor:
    """Boxes as a float32 tensor of shape (R, 4) (an empty input gives shape (0, 4))."""
    t = torch.as_tensor(boxes, dtype=torch.float32)
    return t.reshape(-1, 4)


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise IoU. a: (R, 4), b: (G, 4) -> (R, G)."""
    return ops.box_iou(a, b)


def paired_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of each box with its partner: a, b (R, 4) -> (R,) (the diagonal of ``box_iou(a, b)``)."""
    wh = (torch.minimum(a[:, 2:], b[:, 2:]) - torch.maximum(a[:, :2], b[:, :2])).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    return inter / (box_area(a) + box_area(b) - inter)


def box_area(boxes: Tensor) -> Tensor:
    """Areas, (R, 4) -> (R,)."""
    return ops.box_area(boxes)


def shorter_side(boxes: Tensor) -> Tensor:
    """min(width, height) of each box, (R, 4) -> (R,)."""
    return torch.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def clip_boxes(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Clip (R, 4) boxes to an image of size (height, width)."""
    return ops.clip_boxes_to_image(boxes, size)


def scale_boxes(boxes: Tensor, scale: float) -> Tensor:
    """Boxes of the original image -> boxes of the image resized by ``scale``."""
    return boxes * scale


def hflip_boxes(boxes: Tensor, width: int) -> Tensor:
    """Boxes of an image of ``width`` pixels -> the same boxes in the image mirrored left to right,
    (R, 4) -> (R, 4): x1' = width - x2, x2' = width - x1 (continuous pixels: no "- 1")."""
    return torch.stack((width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]), dim=1)


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """Indices (K,) of the boxes whose width and height are both >= min_size."""
    return ops.remove_small_boxes(boxes, min_size)


def unique_boxes(boxes: Tensor) -> Tensor:
    """Indices (K,) of the first occurrence of each distinct box, in their original order."""
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long)
    _, inverse = torch.unique(boxes, dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), boxes.shape[0], dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(boxes.shape[0]), reduce="amin")
    return first.sort().values


def batched_nms(boxes: Tensor, scores: Tensor, labels: Tensor, iou_threshold: float) -> Tensor:
    """Per-class NMS. boxes (R, 4), scores (R,), labels (R,) -> kept indices, by descending score."""
    return ops.batched_nms(boxes, scores, labels, iou_threshold)


def max_overlaps(boxes: Tensor, gt_boxes: Tensor, gt_labels: Tensor, num_classes: int) -> Tensor:
    """For each box, its best IoU with the ground truth of each class.

    Args:
        boxes: (R, 4). gt_boxes: (G, 4). gt_labels: (G,) in 0..K-1.
    Returns:
        (R, K) float32; 0 where an image has no ground truth of a class.
    """
    out = torch.zeros(boxes.shape[0], num_classes)
    if gt_boxes.shape[0] == 0 or boxes.shape[0] == 0:
        return out
    iou = box_iou(boxes, gt_boxes)  # (R, G)
    index = gt_labels.long().unsqueeze(0).expand_as(iou)
    return out.scatter_reduce_(1, index, iou, reduce="amax")


# --- bounding-box regression targets (R-CNN, appendix C) -------------------------------------


def encode(src: Tensor, dst: Tensor) -> Tensor:
    """Regression targets that move ``src`` boxes onto ``dst`` boxes.

    With centres (x, y) and sizes (w, h):
        dx = (x_dst - x_src) / w_src      dy = (y_dst - y_src) / h_src
        dw = log(w_dst / w_src)           dh = log(h_dst / h_src)
    Invariant: ``decode(encode(src, dst), src) == dst``.

    Args:
        src, dst: (R, 4) with positive widths and heights.
    Returns:
        (R, 4) deltas (dx, dy, dw, dh).
    """
    sw, sh = src[:, 2] - src[:, 0], src[:, 3] - src[:, 1]
    sx, sy = src[:, 0] + 0.5 * sw, src[:, 1] + 0.5 * sh
    dw_, dh_ = dst[:, 2] - dst[:, 0], dst[:, 3] - dst[:, 1]
    dx_, dy_ = dst[:, 0] + 0.5 * dw_, dst[:, 1] + 0.5 * dh_
    return torch.stack([(dx_ - sx) / sw, (dy_ - sy) / sh, torch.log(dw_ / sw), torch.log(dh_ / sh)], 1)


# log(1000 / 16): the largest size change a delta may ask for, so exp() cannot overflow.
_MAX_LOG_SCALE = math.log(1000.0 / 16)


def decode(deltas: Tensor, src: Tensor) -> Tensor:
    """Apply (R, 4) deltas (dx, dy, dw, dh) to (R, 4) ``src`` boxes; the inverse of :func:`encode`."""
    sw, sh = src[:, 2] - src[:, 0], src[:, 3] - src[:, 1]
    sx, sy = src[:, 0] + 0.5 * sw, src[:, 1] + 0.5 * sh
    x = sx + deltas[:, 0] * sw
    y = sy + deltas[:, 1] * sh
    w = sw * torch.exp(deltas[:, 2].clamp(max=_MAX_LOG_SCALE))
    h = sh * torch.exp(deltas[:, 3].clamp(max=_MAX_LOG_SCALE))
    return torch.stack([x - 0.5 * w, y - 0.5 * h, x + 0.5 * w, y + 0.5 * h], 1)


# --- windows on conv5 (SPP-net, appendix A) --------------------------------------------------


def project_to_cells(boxes: Tensor, scale: float, stride: int, map_size: tuple[int, int],
                     centre_offset: float = 0.0) -> Tensor:
    """Project image windows onto the conv-map cells whose receptive-field centres lie inside them.

    SPP-net, appendix A: with every layer padded by floor(k/2), the response at (0-based) cell l is
    centred on pixel S * l of the resized image, and a window's left / right edges x go to cells
    floor(x / S) + 1 and ceil(x / S) - 1: the first and last cells whose centres lie inside the
    window. A trunk padded otherwise has its centres at S * l + ``centre_offset`` (ZF-5 as released:
    + 20; MobileNetV2: 0; see ``TrunkInfo.centre_offset``), and the same rule applies to them. In our
    continuous coordinates pixel p spans [p, p + 1), so cell l's centre is at S * l + offset + 0.5.
    (The released SPP_net code instead shifts every window by fixed offsets fitted to its own nets
    before dividing by the stride.) A window that contains no centre (smaller than a cell) takes the
    cell nearest its own centre. Cells are clipped to the map.

    Args:
        boxes: (R, 4) windows in original-image pixels.
        scale: resized size / original size of the image the map was computed on.
        stride: total stride S of the map (16 for conv5).
        map_size: (height, width) of the map, in cells.
        centre_offset: receptive-field centre of cell 0, in pixels of the resized image.
    Returns:
        (R, 4) int64 cells (left, top, right, bottom), 0-based and inclusive.
    """
    b = boxes * scale - (centre_offset + 0.5)  # pixel coordinates relative to cell 0's centre
    lo = torch.ceil(b[:, :2] / stride)  # first cell whose centre is >= the left / top edge
    hi = torch.floor(b[:, 2:] / stride)  # last cell whose centre is <= the right / bottom edge
    nearest = torch.floor((b[:, :2] + b[:, 2:]) / (2 * stride) + 0.5)
    empty = hi < lo
    lo = torch.where(empty, nearest, lo)
    hi = torch.where(empty, nearest, hi)
    h, w = map_size
    limit = torch.tensor([w - 1, h - 1], dtype=b.dtype)
    lo = torch.minimum(lo.clamp(min=0), limit)
    hi = torch.minimum(hi.clamp(min=0), limit)
    return torch.cat([lo, hi], 1).long()


def choose_scales(boxes: Tensor, scales: list[float], target_area: float = 224.0 * 224.0) -> Tensor:
    """For each window, the index of the scale at which its area is closest to ``target_area``.

    SPP-net, section 4.2 (multi-scale feature extraction): "we choose a single scale s such that
    the scaled candidate window has a number of pixels closest to 224 x 224".

    Args:
        boxes: (R, 4) windows in original-image pixels.
        scales: resized size / original size, one per pyramid level.
    Returns:
        (R,) int64 indices into ``scales``.
    """
    area = box_area(boxes).unsqueeze(1)  # (R, 1)
    s = torch.as_tensor(scales, dtype=torch.float32).unsqueeze(0)  # (1, L)
    return (area * s * s - target_area).abs().argmin(1)


def add_context(boxes: Tensor, out_size: int, padding: int) -> Tensor:
    """Grow windows so that, once warped to ``out_size``, ``padding`` pixels of context surround them.

    R-CNN, section 2.1 and appendix A: "we dilate the tight bounding box so that at the warped
    size there are exactly p pixels of warped image context around the original box (p = 16)".

    Args:
        boxes: (R, 4). out_size: the warped side (224 or 227). padding: p.
    Returns:
        (R, 4) enlarged boxes (not clipped; the crop pads with the image mean outside).
    """
    factor = out_size / (out_size - 2.0 * padding)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    hw = (boxes[:, 2] - boxes[:, 0]) * factor / 2
    hh = (boxes[:, 3] - boxes[:, 1]) * factor / 2
    return torch.stack([cx - hw, cy - hh, cx + hw, cy + hh], 1)
