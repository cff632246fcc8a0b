"""The timing loop of the SPP-net vs R-CNN speed report (SPP-net sec. 4.3, table 10).

Both methods are timed on the same images, the same proposals and the same network (trunk, fc
head, SVMs, box regressors): only the pool5 extractor differs. Each method first detects one
warm-up image (a few of its windows, not recorded: first-call allocations, lazy kernels), then every image once; a
figure is the median over images of the seconds per stage (``detection.runtime.stopwatch.Stopwatch``).
Proposal time is reported apart and left out of the ratio, as in the paper. Rendering the result
(Markdown, plot, files) is ``detection.speed.report``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from data.progress import track
from data.records import ImageRecord
from detection.features.spp_source import Pool5Source
from detection.inference.detect import DETECT_STAGES, DetectConfig, TrainedModel, detect_image
from detection.models.bbox_regression import BBoxRegressors
from detection.models.head import FcHead, apply_test_levers
from detection.runtime.stopwatch import Stopwatch
from svm.model import LinearSVMs

log = logging.getLogger(__name__)

WARMUP_WINDOWS = 128  # windows of the warm-up detection: every kernel runs, at little cost


@dataclass(frozen=True)
class MethodTiming:
    """Median seconds per image of one method: in total (proposals excluded) and per stage."""

    seconds_per_image: float
    stages: dict[str, float]
    images: int


def initial_model(in_dim: int, fc6: int, fc7: int, num_classes: int, seed: int = 0) -> TrainedModel:
    """An untrained detector of the right shapes, for timing only (Caffe-style random fc weights).

    SVMs and box regressors are small random linear maps on fc7 / pool5: the same arithmetic as
    trained ones, so the timing is that of a trained detector.
    """
    torch.manual_seed(seed)
    head = FcHead(in_dim, fc6, fc7, num_classes).eval()
    rng = np.random.default_rng(seed)
    svms = LinearSVMs(rng.normal(0, fc7 ** -0.5, (fc7, num_classes)).astype(np.float32),
                      np.zeros(num_classes, np.float32), 1.0)
    bbox = BBoxRegressors(rng.normal(0, 1e-4, (num_classes, in_dim, 4)).astype(np.float32),
                          np.zeros((num_classes, 4), np.float32), 1.0)
    return TrainedModel(head, "fc7", svms, bbox)


def with_levers(model: TrainedModel, rank_fc6: int | None, rank_fc7: int | None, int8: bool,
                device: torch.device) -> TrainedModel:
    """The model with the head's test-time levers: truncated SVD of fc6 / fc7 (``None`` keeps the
    layer; Fast R-CNN: 1024 / 256) and int8 fc layers (see ``detection.models.head.apply_test_levers``)."""
    head = apply_test_levers(model.head, rank_fc6, rank_fc7, int8, device)
    return TrainedModel(head, model.layer, model.svms, model.bbox)


def time_detection(records: Sequence[ImageRecord], proposals: Mapping[str, np.ndarray], source: Pool5Source,
                   model: TrainedModel, cfg: DetectConfig, device: torch.device, name: str = "",
                   progress: bool = True) -> MethodTiming:
    """Detect ``records[0]`` once to warm up, then time every other record (all if only one).

    Args:
        records: the images: a warm-up image, then the timed ones.
        proposals: image id -> (R, 4) windows.
        source: the method's pool5 extractor. model: head, SVMs, regressors. cfg: NMS etc.
    Returns:
        medians over the timed images.
    """
    # A few windows are enough to warm up (R-CNN would spend ~40 s on a whole image).
    detect_image(records[0], proposals[records[0].image_id][:WARMUP_WINDOWS], source, model, cfg)
    sw = Stopwatch(device)
    timed = records[1:] if len(records) > 1 else records
    for record in track(timed, desc=f"timing {name}", show=progress):
        detect_image(record, proposals[record.image_id], source, model, cfg, sw)
        sw.next_image()
    medians = sw.medians()
    stages = {s: float(medians.get(s, 0.0)) for s in DETECT_STAGES}
    total = float(sw.median_total(list(DETECT_STAGES)))
    log.info("%s: %.3f s per image (median of %d): %s", name, total, len(timed),
             ", ".join(f"{k} {v:.3f}" for k, v in stages.items()))
    return MethodTiming(total, stages, len(timed))


def speed_result(settings: Mapping[str, object], spp: MethodTiming, rcnn: MethodTiming,
                 proposal_seconds: float) -> dict:
    """The speed.json document: settings, both methods, the R-CNN / SPP ratio."""
    doc = dict(settings)
    doc.update({"spp": asdict(spp), "rcnn": asdict(rcnn),
                "ratio": rcnn.seconds_per_image / max(spp.seconds_per_image, 1e-12),
                "proposal_seconds_per_image": proposal_seconds})
    return doc
