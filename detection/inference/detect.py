"""Detection of one image with a trained model (R-CNN / SPP-net test time).

  1. pool5 vectors of the proposals (SPP-net: conv5 once + pyramid pooling; R-CNN: per window),
     one per distinct vector (SPP-net windows that land on the same conv5 cells share one);
  2. fc6 / fc7 features of the layer the SVMs were trained on (``test.scoring=softmax``: fc8);
  3. per-class SVM scores (softmax: class probabilities, Fast R-CNN);
  4. per-class bounding-box regression of every window, on pool5 (SPP-net sec. 4.1; with
     ``test.bbox=joint``, the head's jointly trained bbox_pred on fc7, Fast R-CNN);
  5. clip to the image, drop windows scoring below the threshold, per-class NMS at IoU 0.3;
  6. keep the ``max_per_image`` best.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from data.boxes import as_tensor, batched_nms, clip_boxes
from data.errors import check_config
from data.records import Detections, ImageRecord
from detection.features.spp_source import Pool5Source
from detection.models.bbox_regression import BBoxRegressors, apply_deltas, predict_deltas
from detection.models.head import FcHead
from detection.runtime.stopwatch import NullStopwatch, Stopwatch
from svm.model import LinearSVMs

# The stopwatch stages of one detection, in order ("conv" and "pool" are timed inside the source).
DETECT_STAGES = ("conv", "pool", "fc", "svm", "bbox", "nms")
SCORINGS = ("svm", "softmax")
BBOX_SOURCES = ("ridge", "joint")
# Where a picture cuts by default (tools/demo.py): the SVM margin, or the more likely class.
DRAW_THRESHOLDS = {"svm": 0.0, "softmax": 0.5}


@dataclass(frozen=True)
class DetectConfig:
    """Turning window scores into detections."""

    nms_iou: float = 0.3  # R-CNN / SPP-net: per-class NMS at IoU 0.3
    max_per_image: int = 100  # keep the 100 best after NMS (Fast R-CNN test.py)
    score_threshold: float = -1.5  # drop windows whose SVM score is below (well under the margin)
    bbox_reg: bool = True  # SPP-net table 9: "ftfc7 bb"
    # Beyond the paper: "softmax" scores by the fine-tuned fc8's class probabilities (Fast R-CNN)
    # instead of the SVMs; "joint" regresses boxes with the head's bbox_pred (finetune.e2e.joint_bbox)
    # instead of the ridge regressors.
    scoring: str = "svm"
    bbox: str = "ridge"

    def __post_init__(self) -> None:
        check_config([
            (self.scoring in SCORINGS, f"test.scoring must be one of {SCORINGS}"),
            (self.bbox in BBOX_SOURCES, f"test.bbox must be one of {BBOX_SOURCES}"),
            (0.0 < self.nms_iou <= 1.0, "test.nms_iou must be in (0, 1]"),
            (self.max_per_image >= 1, "test.max_per_image must be >= 1"),
        ])


@dataclass(frozen=True)
class TrainedModel:
    """What training produces: the head, the SVMs (on ``layer`` features) and the box regressors.

    ``untrained``: ids of the classes trained without any object (``missing_classes=skip``); they
    have no SVM, so they are never detected.
    """

    head: FcHead
    layer: str
    svms: LinearSVMs
    bbox: BBoxRegressors | None
    untrained: tuple[int, ...] = ()


@torch.no_grad()
def detect_image(record: ImageRecord, proposals: np.ndarray, source: Pool5Source, model: TrainedModel,
                 cfg: DetectConfig, sw: Stopwatch | None = None) -> Detections:
    """Detections of one image.

    Args:
        record: the image (its path and size; annotations are not used).
        proposals: (R, 4) windows in original-image pixels.
        source: pool5 extractor (SPP-net or R-CNN).
        model: trained head, SVMs and regressors.
        cfg: NMS threshold, score threshold, maximum detections, whether to regress boxes.
        sw: records seconds per stage ("conv", "pool" inside the source; "fc", "svm", "bbox", "nms").
    """
    sw = sw or NullStopwatch()
    boxes = as_tensor(proposals)
    if boxes.shape[0] == 0:
        return Detections.empty()
    # Windows that pool to the same vector share steps 2-4 (U <= R rows); ``inverse`` maps back.
    pool5, inverse = source.pool5_shared(record, boxes, sw)  # (U, D), (R,)
    # Steps 2-5 stay on pool5's device (the GPU's, if any): only the kept detections leave it.
    inverse, src = inverse.to(pool5.device), boxes.to(pool5.device)
    with sw.stage("fc"):
        if cfg.scoring == "softmax":  # fc8's class probabilities, background dropped
            probs = torch.softmax(model.head(pool5).float(), 1)[:, 1:]  # (U, K)
        else:
            feats = model.head.features(pool5, model.layer).float()  # (U, D_layer)
    with sw.stage("svm"):
        scores = (probs if cfg.scoring == "softmax" else model.svms.score(feats))[inverse]  # (R, K)
        scores[:, list(model.untrained)] = -torch.inf  # never above any threshold
    with sw.stage("bbox"):
        k = scores.shape[1]
        if cfg.bbox_reg and cfg.bbox == "joint":
            per_class = apply_deltas(model.head.box_deltas(pool5)[inverse], src)  # (R, K, 4)
        elif cfg.bbox_reg and model.bbox is not None:
            per_class = apply_deltas(predict_deltas(model.bbox, pool5)[inverse], src)
        else:
            per_class = src[:, None, :].expand(-1, k, -1)
    with sw.stage("nms"):
        return _select(per_class, scores, record.size, cfg)


def _select(per_class: torch.Tensor, scores: torch.Tensor, size: tuple[int, int], cfg: DetectConfig) -> Detections:
    """Steps 5-6: (R, K, 4) boxes and (R, K) scores -> the kept detections, best first."""
    r, k = scores.shape
    keep = scores > cfg.score_threshold  # (R, K)
    win, cls = keep.nonzero(as_tuple=True)
    boxes = clip_boxes(per_class[win, cls], size)
    s = scores[win, cls]
    kept = batched_nms(boxes, s, cls, cfg.nms_iou)[: cfg.max_per_image]
    return Detections(boxes[kept].cpu().numpy().astype(np.float32), s[kept].cpu().numpy().astype(np.float32),
                      cls[kept].cpu().numpy().astype(np.int64))
