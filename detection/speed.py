"""The library part of the SPP-net vs R-CNN speed report (SPP-net sec. 4.3, table 10).

Both methods are timed on the same images, the same proposals and the same network (trunk, fc
head, SVMs, box regressors): only the pool5 extractor differs. Each method first detects one
warm-up image (a few of its windows, not recorded: first-call allocations, lazy kernels), then every image once; a
figure is the median over images of the seconds per stage (``detection.timing.Stopwatch``).
Proposal time is reported apart and left out of the ratio, as in the paper.
"""

from __future__ import annotations

import json
import logging
import platform
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from data.cache import atomic_write_text
from data.records import ImageRecord
from detection.bbox_regression import BBoxRegressors
from detection.config import TestConfig
from detection.detect import TrainedModel, detect_image
from detection.head import FcHead, apply_test_levers
from detection.spp_features import Pool5Source
from detection.timing import Stopwatch
from svm.model import LinearSVMs

log = logging.getLogger(__name__)

WARMUP_WINDOWS = 128  # windows of the warm-up detection: every kernel runs, at little cost
STAGES = ("conv", "pool", "fc", "svm", "bbox", "nms")  # detect_image's stopwatch stages, in order


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
    layer; Fast R-CNN: 1024 / 256) and int8 fc layers (see ``detection.head.apply_test_levers``)."""
    head = apply_test_levers(model.head, rank_fc6, rank_fc7, int8, device)
    return TrainedModel(head, model.layer, model.svms, model.bbox)


def time_detection(records: Sequence[ImageRecord], proposals: Mapping[str, np.ndarray], source: Pool5Source,
                   model: TrainedModel, cfg: TestConfig, device: torch.device, name: str = "",
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
    for record in tqdm(timed, desc=f"timing {name}", disable=not progress):
        detect_image(record, proposals[record.image_id], source, model, cfg, sw)
        sw.next_image()
    medians = sw.medians()
    stages = {s: float(medians.get(s, 0.0)) for s in STAGES}
    total = float(sw.median_total(list(STAGES)))
    log.info("%s: %.3f s per image (median of %d): %s", name, total, len(timed),
             ", ".join(f"{k} {v:.3f}" for k, v in stages.items()))
    return MethodTiming(total, stages, len(timed))


def machine() -> str:
    """A one-line description of the CPU (and GPU when present)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if torch.cuda.is_available():
        return f"{cpu}; GPU {torch.cuda.get_device_name(0)}"
    return cpu


def speed_result(settings: Mapping[str, object], spp: MethodTiming, rcnn: MethodTiming,
                 proposal_seconds: float) -> dict:
    """The speed.json document: settings, both methods, the R-CNN / SPP ratio."""
    doc = dict(settings)
    doc.update({"spp": asdict(spp), "rcnn": asdict(rcnn),
                "ratio": rcnn.seconds_per_image / max(spp.seconds_per_image, 1e-12),
                "proposal_seconds_per_image": proposal_seconds})
    return doc


def markdown(doc: Mapping) -> str:
    """A table in the style of SPP-net's table 10 (conv, fc, total per image, speed-up)."""
    spp, rcnn = doc["spp"]["stages"], doc["rcnn"]["stages"]
    scales = doc["scales"]
    spp_name = f"SPP ({len(scales)}-scale)"

    def row(name: str, a: float, b: float) -> str:
        return f"| {name} | {a:.3f} | {b:.3f} |"

    rest = ("svm", "bbox", "nms")
    lines = [
        f"| s per image (median of {doc['num_images']}) | {spp_name} | R-CNN |",
        "|---|---|---|",
        row("conv (R-CNN: crop + warp + conv)", spp["conv"], rcnn["conv"]),
        row("pyramid pooling", spp["pool"], rcnn["pool"]),
        row("fc6 + fc7", spp["fc"], rcnn["fc"]),
        row("svm + bbox + nms", sum(spp[s] for s in rest), sum(rcnn[s] for s in rest)),
        row("**total** (proposals excluded)", doc["spp"]["seconds_per_image"], doc["rcnn"]["seconds_per_image"]),
        f"| **speed-up** | **{doc['ratio']:.1f}x** | 1x |",
        "",
        f"Backbone {doc['backbone']}, scales {list(scales)}, {doc['num_proposals']} proposals per image "
        f"(mean used: {doc.get('mean_proposals', float('nan')):.0f}), {doc['num_images']} images, "
        f"{doc['threads']} threads, device {doc['device']}, machine: {doc.get('machine', '?')}.",
        f"Settings: {doc.get('settings', '')}. Selective search (not in the ratio): "
        f"{doc['proposal_seconds_per_image']:.2f} s per image.",
    ]
    return "\n".join(lines) + "\n"


def plot(doc: Mapping, path: Path) -> None:
    """Stacked bars of the stages for both methods, each on its own scale (R-CNN is ~100x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    for ax, key, title in ((axes[0], "spp", "SPP-net"), (axes[1], "rcnn", "R-CNN")):
        bottom = 0.0
        for stage in STAGES:
            value = doc[key]["stages"][stage]
            ax.bar([title], [value], bottom=bottom, label=stage)
            bottom += value
        ax.set_ylabel("seconds per image")
        ax.set_title(f"{title}: {doc[key]['seconds_per_image']:.2f} s")
    axes[1].legend(loc="upper right", fontsize="small")
    fig.suptitle(f"{doc['backbone']}, scales {list(doc['scales'])}: R-CNN / SPP = {doc['ratio']:.1f}x")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(doc: Mapping, out: Path) -> None:
    """speed.json, speed.md and speed.png in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "speed.json", json.dumps(doc, indent=2))
    atomic_write_text(out / "speed.md", markdown(doc))
    plot(doc, out / "speed.png")
    log.info("speed report in %s: R-CNN / SPP = %.1fx", out, doc["ratio"])
