"""Rendering the speed report: speed.json, a Markdown table in the paper's style, a stacked-bar plot.

The document comes from ``detection.speed.benchmark.speed_result``; its stage names are
``detection.inference.detect.DETECT_STAGES``.
"""

from __future__ import annotations

import json
import logging
import platform
from collections.abc import Mapping
from pathlib import Path

import torch

from data.cache import atomic_write_text
from detection.inference.detect import DETECT_STAGES

log = logging.getLogger(__name__)


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
        for stage in DETECT_STAGES:
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
