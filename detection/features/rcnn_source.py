"""R-CNN's feature extractor, the baseline SPP-net is measured against: the whole network per window.

Steps for one image (R-CNN sec. 2.1 and appendix A; SPP-net sec. 4.3's fair comparison):
  1. grow each window so that 16 pixels of context surround it once warped (``add_context``);
  2. crop it from the image, filling what falls outside the image with the mean colour (zero
     after normalisation, as R-CNN's mean-subtracted padding), and warp it to warp_size x
     warp_size (224 for ZF-5 / MobileNetV2, 227 for AlexNet), all in one affine warp per window;
  3. run the trunk on the warped windows in batches (channels_last, inference mode);
  4. pyramid-pool each window's WHOLE conv5 map with the same levels as SPP-net, so both methods
     give vectors of the same length D and share the fc head, SVMs, box regression and NMS.
The Stopwatch stages are "conv" (steps 1-3) and "pool" (step 4), as in SPP-net's extractor.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from data.boxes import add_context
from data.images import record_image
from data.progress import track
from data.records import ImageRecord
from detection.models.backbones import IMAGENET_MEAN, TrunkInfo, normalise
from detection.models.spp import pooled_length, pyramid_pool_whole
from detection.runtime.stopwatch import NullStopwatch, Stopwatch

# R-CNN pads outside the image with the mean; in uint8 RGB that is ImageNet's mean colour.
MEAN_COLOUR = tuple(round(255 * m) for m in IMAGENET_MEAN)
_PROGRESS_MIN = 512  # show a progress bar for calls with at least this many windows


def warp_matrix(box: np.ndarray, size: int) -> np.ndarray:
    """The 2 x 3 affine map from image pixel indices to warped pixel indices of ``box``.

    ``box`` is (x1, y1, x2, y2) in continuous pixels (pixel i covers [i, i + 1)); OpenCV indexes
    pixel centres, so index i sits at continuous i + 0.5 in both images.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    sx, sy = size / max(x2 - x1, 1e-6), size / max(y2 - y1, 1e-6)
    return np.array([[sx, 0.0, (0.5 - x1) * sx - 0.5], [0.0, sy, (0.5 - y1) * sy - 0.5]])


def warp_windows(image: np.ndarray, boxes: np.ndarray, size: int, padding: int) -> np.ndarray:
    """Steps 1-2: crops with context, warped to size x size.

    Args:
        image: (H, W, 3) uint8 RGB.
        boxes: (R, 4) windows in image pixels.
        size: warped side. padding: context pixels at the warped size (R-CNN: 16).
    Returns:
        (R, size, size, 3) uint8 warped windows; outside the image: ``MEAN_COLOUR``.
    """
    grown = add_context(torch.as_tensor(boxes, dtype=torch.float32), size, padding).numpy()
    out = np.empty((len(grown), size, size, 3), np.uint8)
    for i, box in enumerate(grown):
        cv2.warpAffine(image, warp_matrix(box, size), (size, size), dst=out[i], flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=MEAN_COLOUR)
    return out


def warped_pool5_grad(image: np.ndarray, boxes: torch.Tensor, frozen: torch.nn.Module, trained: torch.nn.Module,
                      info: TrunkInfo, levels: tuple[int, ...], context_padding: int,
                      device: torch.device) -> torch.Tensor:
    """R-CNN's fine-tuning forward (R-CNN sec. 2.3): steps 1-4 with a gradient to ``trained``'s weights.

    Args:
        image: (H, W, 3) uint8 RGB.
        boxes: (R, 4) windows in image pixels.
        frozen, trained: the trunk cut in two (``detection.models.trunk_blocks.split_trunk``); the
            first runs without a graph.
    Returns:
        (R, D) pool5 vectors on ``device``, with their graph.
    """
    crops = warp_windows(image, boxes.float().cpu().numpy().reshape(-1, 4), info.warp_size, context_padding)
    x = normalise(torch.from_numpy(crops).to(device).permute(0, 3, 1, 2)).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        x = frozen(x)
    return pyramid_pool_whole(trained(x), levels)


class RCNNSource:
    """pool5 vectors of R-CNN: every window warped and run through the trunk on its own.

    Implements ``detection.features.spp_source.Pool5Source``. No conv5 cache: each window has its own
    conv5 map, so every call pays the per-window cost, as R-CNN does; ``features.rcnn_cache`` wraps
    this in ``detection.features.rcnn_cache.CachedRCNNSource`` (D floats per window on disk).
    """

    def __init__(self, trunk: torch.nn.Module, info: TrunkInfo, levels: tuple[int, ...], context_padding: int,
                 batch_size: int, device: torch.device, progress: bool = False) -> None:
        self.trunk, self.info, self.levels = trunk, info, tuple(levels)
        self.padding, self.batch_size, self.device = int(context_padding), max(1, int(batch_size)), device
        self.progress = progress
        # channels_last helps the CPU convolutions (1.3-1.6x measured) and is a no-op elsewhere.
        self.trunk.to(memory_format=torch.channels_last)

    @torch.no_grad()  # outputs stay ordinary tensors: fine-tuning feeds them to a head with grad
    def pool5(self, record: ImageRecord, boxes: torch.Tensor, sw: Stopwatch | None = None) -> torch.Tensor:
        """(R, 4) windows in original-image pixels -> (R, D) float32 pool5 vectors on ``device``."""
        sw = sw or NullStopwatch()
        boxes_np = torch.as_tensor(boxes).float().cpu().numpy().reshape(-1, 4)
        r = boxes_np.shape[0]
        out = torch.empty((r, pooled_length(self.info.channels, self.levels)), device=self.device)
        if r == 0:
            return out
        with sw.stage("conv"):
            image = record_image(record)
        starts = range(0, r, self.batch_size)
        for s in track(starts, desc=f"R-CNN windows {record.image_id}", leave=False,
                       show=self.progress and r >= _PROGRESS_MIN):
            with sw.stage("conv"):
                crops = warp_windows(image, boxes_np[s:s + self.batch_size], self.info.warp_size, self.padding)
                with torch.inference_mode():
                    x = normalise(torch.from_numpy(crops).to(self.device).permute(0, 3, 1, 2))
                    maps = self.trunk(x.contiguous(memory_format=torch.channels_last))  # (B, C, h, w)
            with sw.stage("pool"), torch.inference_mode():
                pooled = pyramid_pool_whole(maps.contiguous(), self.levels)
            out[s:s + pooled.shape[0]] = pooled
        return out

    def pool5_shared(self, record: ImageRecord, boxes: torch.Tensor,
                     sw: Stopwatch | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Every window has its own warped crop, hence its own vector: inverse is the identity."""
        pooled = self.pool5(record, boxes, sw)
        return pooled, torch.arange(pooled.shape[0])
