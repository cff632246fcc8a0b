"""Configuration of the selective-search proposals (defaults from R-CNN / SPP-net)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2

from data.errors import check_config

MODES = ("fast", "quality", "single", "mat")

# Bump when the way boxes are produced or stored changes: it is part of every cache key.
# 2: min_size counts pixels at VOC's size (images larger than 500 px keep fewer small boxes).
CACHE_VERSION = 2


@dataclass(frozen=True)
class ProposalConfig:
    """How proposals are made for one image.

    Attributes:
        mode: "fast" | "quality" | "single" (OpenCV selective-search strategies), or "mat" (boxes
            imported from a released selective_search_data/*.mat file, see ``mat_file``).
        max_proposals: keep at most this many boxes per image, in selective-search rank order.
        min_size: drop boxes whose width or height is below this, in pixels of the image at VOC's
            size (an image larger than 500 px: scaled by its longer side / 500, as R-CNN filters
            the boxes of the 500-px image it segmented).
        resize_longer: when the image's longer side is larger, shrink the image to this longer
            side before segmentation; boxes are mapped back to the original image. None segments
            the image at its own size (minutes for a phone photo, see below).
        base_k: Felzenszwalb-Huttenlocher k of the first segmentation ("fast"/"quality").
        inc_k: increment of k between the segmentations ("fast"/"quality").
        single_k: k of the one segmentation of the "single" mode.
        sigma: Gaussian smoothing of the segmentations.
        seed: seed of the pseudo-random ranking of the boxes (C library ``srand``).
        mat_file: the .mat file of the "mat" mode.
    """

    # R-CNN and SPP-net (sec. 4) both use selective search in its "fast" mode.
    mode: str = "fast"
    # SPP-net sec. 4 / R-CNN sec. 2.1: "~2000 candidate windows per image".
    max_proposals: int = 2000
    # R-CNN selective_search_boxes.m: minBoxWidth = 20 (FilterBoxesWidth).
    min_size: float = 20.0
    # R-CNN's demo (examples/rcnn_detect.m, im_width = 500) segments every image at width 500.
    # Selective search's regions are sized in pixels (its k = 50, 100 and min_size = 20 are
    # VOC-sized), and its cost grows faster than the pixel count: a 12-megapixel photo took 15 to
    # over 30 minutes at its own size and gave no detection, 1.9 s at 500 px. VOC images are
    # <= 500 px, so this changes nothing there (docs/own_data.md measures other sizes). Never enlarges.
    resize_longer: int | None = 500
    # R-CNN selective_search_boxes.m: ks = [50 100 150 300], fast mode uses ks(1:2) = 50, 100.
    # (OpenCV's own defaults, 150/150, give ~45% fewer boxes and lower recall.)
    base_k: int = 50
    inc_k: int = 50
    # OpenCV switchToSingleStrategy default k (Uijlings et al. single-strategy example).
    single_k: int = 200
    # R-CNN selective_search_boxes.m: sigma = 0.8 (also OpenCV's default).
    sigma: float = 0.8
    # glibc's default rand() seed: a fresh process running plain OpenCV gives the same order.
    seed: int = 1
    mat_file: str | None = None

    def __post_init__(self) -> None:
        check_config([
            (self.mode in MODES, f"proposals.mode must be one of {MODES}, got {self.mode!r}"),
            (self.max_proposals >= 1, f"proposals.max_proposals must be >= 1, got {self.max_proposals}"),
            (self.min_size >= 0, f"proposals.min_size must be >= 0, got {self.min_size}"),
            (self.resize_longer is None or self.resize_longer >= 16,
             f"proposals.resize_longer must be >= 16, got {self.resize_longer}"),
            (self.mode != "mat" or bool(self.mat_file), "proposals.mode 'mat' needs proposals.mat_file"),
        ])

    def cache_params(self) -> dict[str, Any]:
        """Everything that decides the boxes: the config, the cache version and OpenCV's version."""
        params: dict[str, Any] = asdict(self)
        params["cache_version"] = CACHE_VERSION
        if self.mode != "mat":
            params["opencv"] = cv2.__version__
        return params
