"""Selective search (Uijlings et al.) through OpenCV, made deterministic, for one image.

Determinism. OpenCV's ``SelectiveSearchSegmentation.process()`` ranks the boxes of each hierarchy
by ``level * rand()`` (as the original MATLAB code does, "pseudo random sorting") using the C
library's ``std::rand()``, not OpenCV's RNG: ``cv2.setRNGSeed`` has no effect (checked: two calls
after ``setRNGSeed(0)`` give the same set of boxes in different orders). The set of boxes never
depends on the seed; only their order does, and the order decides which boxes survive the
``max_proposals`` cap. We therefore call the C library's ``srand(cfg.seed)`` through ctypes right
before every ``process()``, under a process-wide lock so that two threads cannot interleave their
``rand()`` calls, with OpenCV limited to one thread during the call. Worker processes each run
the same seeded sequence, so the same image and config give the same boxes in the same order in
any process, any thread, any run (tested in tests/proposals/test_proposals_selective_search.py).
The default seed 1 is glibc's own default, so a fresh process running plain OpenCV agrees.

Coordinates. An OpenCV rect (x, y, w, h) covers the integer pixels x..x+w-1, i.e. the continuous
box (x, y, x + w, y + h). After a resize by (scale_x, scale_y) = new size / original size per
axis, the box in the original image is (x / scale_x, y / scale_y, (x + w) / scale_x, (y + h) / scale_y).

Only :func:`run_selective_search` and :func:`compute_raw` run in worker processes: they use
OpenCV and numpy only (no torch, which must not be used in a forked child).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from data import boxes as B
from data.cache import file_digest
from data.errors import InputError
from data.images import read_image
from proposals.config import ProposalConfig

_LIBC = ctypes.CDLL(ctypes.util.find_library("c"))
# One lock per process: rand() is a single global sequence shared by all threads.
_RAND_LOCK = threading.Lock()


@dataclass(frozen=True)
class RawProposals:
    """What a worker sends back for one image (plain numpy, cheap to pickle between processes).

    Attributes:
        rects: (R, 4) int32 OpenCV rects (x, y, w, h) in the pixels of the segmented image.
        scale_xy: (2,) float64, segmented size / original size for x and y.
        size: (height, width) of the original image.
        seconds: wall-clock seconds of reading + segmenting the image.
        image_hash: :func:`data.cache.file_digest` of the image file.
    """

    rects: np.ndarray
    scale_xy: np.ndarray
    size: tuple[int, int]
    seconds: float
    image_hash: str


def _resize_for_segmentation(image: np.ndarray, resize_longer: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Shrink (never enlarge) so that the longer side is ``resize_longer``; returns (image, scale_xy)."""
    h, w = image.shape[:2]
    if resize_longer is None or max(h, w) <= resize_longer:
        return image, np.ones(2)
    s = resize_longer / max(h, w)
    new_w, new_h = max(1, round(w * s)), max(1, round(h * s))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    # Per-axis scales: rounding makes them differ slightly from s, and the exact ones map back exactly.
    return resized, np.array([new_w / w, new_h / h])


def run_selective_search(image_rgb: np.ndarray, cfg: ProposalConfig) -> tuple[np.ndarray, np.ndarray]:
    """Selective search on one image, deterministic (see the module docstring).

    Args:
        image_rgb: (H, W, 3) uint8 RGB.
        cfg: the proposal config (its mode must not be "mat").
    Returns:
        rects (R, 4) int32 (x, y, w, h) in the segmented image, ranked; scale_xy (2,) float64.
    """
    image, scale_xy = _resize_for_segmentation(image_rgb, cfg.resize_longer)
    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    # OpenCV's colour-space conversions inside selective search expect BGR.
    ss.setBaseImage(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if cfg.mode == "fast":
        ss.switchToSelectiveSearchFast(cfg.base_k, cfg.inc_k, cfg.sigma)
    elif cfg.mode == "quality":
        ss.switchToSelectiveSearchQuality(cfg.base_k, cfg.inc_k, cfg.sigma)
    elif cfg.mode == "single":
        ss.switchToSingleStrategy(cfg.single_k, cfg.sigma)
    else:
        raise InputError("proposal config", f"mode {cfg.mode!r} does not run selective search")
    with _RAND_LOCK:
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)  # no OpenCV worker threads calling rand() in parallel
        try:
            _LIBC.srand(ctypes.c_uint(cfg.seed))
            rects = ss.process()
        finally:
            cv2.setNumThreads(threads)
    rects = np.asarray(rects, dtype=np.int32).reshape(-1, 4)
    return rects, scale_xy


def compute_raw(path: Path, cfg: ProposalConfig) -> RawProposals:
    """Read one image file and run selective search on it (the work of one worker task).

    Raises:
        InputError: the image cannot be read.
    """
    start = time.perf_counter()
    image_hash = file_digest(path) if Path(path).is_file() else ""
    image = read_image(path)
    rects, scale_xy = run_selective_search(image, cfg)
    size = (int(image.shape[0]), int(image.shape[1]))
    return RawProposals(rects, scale_xy, size, time.perf_counter() - start, image_hash)


def rects_to_boxes(rects: np.ndarray, scale_xy: np.ndarray) -> np.ndarray:
    """OpenCV rects of the segmented image -> continuous boxes of the original image.

    Args:
        rects: (R, 4) (x, y, w, h) integer pixels of the segmented image.
        scale_xy: (2,) segmented size / original size, for x and y.
    Returns:
        (R, 4) float32 boxes (x1, y1, x2, y2) = (x / sx, y / sy, (x + w) / sx, (y + h) / sy).
    """
    r = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
    xyxy = np.stack([r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3]], axis=1)
    sx, sy = float(scale_xy[0]), float(scale_xy[1])
    return (xyxy / np.array([sx, sy, sx, sy])).astype(np.float32)


# R-CNN drops boxes under 20 px in the image it segmented, 500 px wide (selective_search_boxes.m
# filters before scaling the boxes back). So ``min_size`` counts pixels of the image at VOC's size:
# in a larger image a box needs min_size x (longer side / 500) of its own pixels. Without this a
# phone photo kept boxes of 2.5 VOC-sized pixels, and other boxes than its VOC-sized copy.
VOC_LONGER_SIDE = 500


def filter_boxes(boxes: np.ndarray, size: tuple[int, int], cfg: ProposalConfig) -> np.ndarray:
    """Clip, drop small boxes and duplicates, cap the number; keeps the rank order.

    Args:
        boxes: (R, 4) float boxes of the original image, ranked.
        size: (height, width) of the original image.
        cfg: gives min_size (pixels at VOC's size, see :data:`VOC_LONGER_SIDE`) and max_proposals.
    Returns:
        (R', 4) float32, R' <= cfg.max_proposals.
    """
    # 1. clip to the image  2. remove boxes under min_size  3. remove duplicates  4. cap
    t = B.clip_boxes(B.as_tensor(boxes), size)
    t = t[B.remove_small_boxes(t, cfg.min_size * max(1.0, max(size) / VOC_LONGER_SIDE))]
    t = t[B.unique_boxes(t)]
    return t[: cfg.max_proposals].numpy().astype(np.float32)


def propose(image_rgb: np.ndarray, cfg: ProposalConfig) -> np.ndarray:
    """Proposals of one in-memory image: (R, 4) float32 boxes, ranked (R <= cfg.max_proposals)."""
    rects, scale_xy = run_selective_search(image_rgb, cfg)
    size = (int(image_rgb.shape[0]), int(image_rgb.shape[1]))
    return filter_boxes(rects_to_boxes(rects, scale_xy), size, cfg)
