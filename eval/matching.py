"""Matching detections of one class to ground truth exactly as the VOC devkit's ``VOCevaldet``.

This is the one place in the project where the devkit's inclusive "+1" pixel areas live
(CONVENTIONS.md rule 1). Our boxes are continuous 0-based (x1, y1, x2, y2); the devkit works on
VOC's 1-based inclusive pixel indices. Converting back (the inverse of the VOC reader):

    xmin = x1 + 1,  ymin = y1 + 1,  xmax = x2,  ymax = y2

and then, as in VOCevaldet,

    iw = min(xmax_d, xmax_g) - max(xmin_d, xmin_g) + 1      (overlap only when iw > 0 and ih > 0)
    ih = min(ymax_d, ymax_g) - max(ymin_d, ymin_g) + 1
    ua = (xmax_d - xmin_d + 1) * (ymax_d - ymin_d + 1) + (same for the GT) - iw * ih
    ov = iw * ih / ua

(Written out in 0-based terms this is the continuous IoU, iw = min(x2) - max(x1); computing it the
devkit's way keeps its float behaviour at the 0.5 border.)

Matching rules of VOCevaldet, per class, after sorting all detections by descending score:
  1. a detection's best GT is the GT of that class in the same image with the highest overlap,
     among ALL of them: difficult ones and ones already claimed included (first one wins a tie,
     because the devkit updates only on a strictly greater overlap);
  2. best overlap >= threshold and that GT is difficult -> neither TP nor FP;
  3. best overlap >= threshold, GT not difficult and unclaimed -> TP, the GT is now claimed;
  4. best overlap >= threshold, GT not difficult but already claimed -> FP (a duplicate);
  5. otherwise (no overlap, or best overlap below the threshold) -> FP.
Since the best GT does not depend on claims, steps 1 and 2 are vectorised per image and steps 3-4
reduce to "the first detection, in sorted order, that claims a given GT is the TP".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def to_devkit_boxes(boxes: np.ndarray) -> np.ndarray:
    """0-based continuous boxes -> the devkit's 1-based inclusive pixel boxes.

    Args:
        boxes: (R, 4) x1, y1, x2, y2, 0-based continuous.

    Returns:
        (R, 4) float64 xmin, ymin, xmax, ymax, 1-based inclusive (xmin = x1 + 1, xmax = x2).
    """
    out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    out[:, :2] += 1.0
    return out


def devkit_overlaps(dets: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """VOCevaldet's overlap of every detection with every GT, on 1-based inclusive boxes.

    Args:
        dets: (R, 4) devkit boxes (see :func:`to_devkit_boxes`).
        gts: (G, 4) devkit boxes.

    Returns:
        (R, G) float64 overlaps; -inf where the boxes do not overlap (iw <= 0 or ih <= 0), as the
        devkit never considers those pairs.
    """
    d = dets[:, None, :]  # (R, 1, 4)
    g = gts[None, :, :]  # (1, G, 4)
    iw = np.minimum(d[..., 2], g[..., 2]) - np.maximum(d[..., 0], g[..., 0]) + 1.0
    ih = np.minimum(d[..., 3], g[..., 3]) - np.maximum(d[..., 1], g[..., 1]) + 1.0
    area_d = (d[..., 2] - d[..., 0] + 1.0) * (d[..., 3] - d[..., 1] + 1.0)
    area_g = (g[..., 2] - g[..., 0] + 1.0) * (g[..., 3] - g[..., 1] + 1.0)
    inter = iw * ih
    valid = (iw > 0) & (ih > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ov = inter / (area_d + area_g - inter)
    return np.where(valid, ov, -np.inf)


def best_matches(dets: np.ndarray, gts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each detection's best GT (rule 1): (ovmax (R,) float64, jmax (R,) int64, -1 when none)."""
    r = dets.shape[0]
    if gts.shape[0] == 0 or r == 0:
        return np.full(r, -np.inf), np.full(r, -1, np.int64)
    ov = devkit_overlaps(to_devkit_boxes(dets), to_devkit_boxes(gts))  # (R, G)
    jmax = np.argmax(ov, axis=1)  # argmax keeps the first maximum, like the devkit's strict ">"
    ovmax = ov[np.arange(r), jmax]
    jmax = np.where(np.isfinite(ovmax), jmax, -1)
    return ovmax, jmax.astype(np.int64)


def match_class(
    det_image: np.ndarray,
    det_boxes: np.ndarray,
    gt_boxes: Sequence[np.ndarray],
    gt_difficult: Sequence[np.ndarray],
    iou_threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Label each detection of one class TP, FP or neither (VOCevaldet).

    Args:
        det_image: (R,) int, index into ``gt_boxes`` of each detection's image; detections must
            already be in the devkit's order (descending score, stable).
        det_boxes: (R, 4) 0-based continuous boxes.
        gt_boxes: per image, (G_i, 4) 0-based GT boxes of this class (difficult ones included).
        gt_difficult: per image, (G_i,) bool.
        iou_threshold: VOCopts.minoverlap, 0.5.

    Returns:
        tp, fp: (R,) bool each; a detection matched to a difficult GT has both False.
    """
    det_image = np.asarray(det_image, dtype=np.int64)
    det_boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    r = det_image.shape[0]
    ovmax = np.full(r, -np.inf)
    gt_index = np.full(r, -1, np.int64)  # global index of the best GT over all images
    difficult = np.zeros(r, bool)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in gt_difficult])]).astype(np.int64)
    flat_difficult = np.concatenate([np.asarray(d, bool).reshape(-1) for d in gt_difficult] + [np.zeros(0, bool)])
    by_image = np.argsort(det_image, kind="stable")
    images, starts = np.unique(det_image[by_image], return_index=True)
    for i, sel in zip(images, np.split(by_image, starts[1:])):
        ov, j = best_matches(det_boxes[sel], np.asarray(gt_boxes[i], np.float64).reshape(-1, 4))
        ovmax[sel] = ov
        gt_index[sel] = np.where(j >= 0, offsets[i] + j, -1)
    matched = ovmax >= iou_threshold
    difficult[matched] = flat_difficult[gt_index[matched]]
    claims = matched & ~difficult
    tp = np.zeros(r, bool)
    claim_pos = np.flatnonzero(claims)
    # np.unique's return_index gives the first position of each GT, i.e. the highest-ranked claim.
    _, first = np.unique(gt_index[claim_pos], return_index=True)
    tp[claim_pos[first]] = True
    fp = ~matched | (claims & ~tp)
    return tp, fp
