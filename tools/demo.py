"""Draw a trained detector's detections on your own images.

For each IMAGE: selective-search proposals (the work dir's proposal settings), the detector of
WORK_DIR (made by tools/train_det.py), then boxes labelled "class score" drawn on the image and
saved as OUT/<image stem>.png. Scores are the per-class SVM scores: 0 is the SVM's decision
boundary, so the default --threshold 0 shows the windows the SVMs call positive (raise it for
fewer, surer boxes; values below the work dir's test.score_threshold, -1.5 by default, show
nothing more). With ``--set test.scoring=softmax`` (a work dir fine-tuned with finetune.mode=e2e)
scores are class probabilities and the default threshold is 0.5. ``tools/eval_voc.py --threshold``
gives the precision and recall of what a threshold draws over a test split. It takes image files,
not a dataset: a work dir trained on a COCO json labels its boxes with that json's category names
(kept in the work dir), as a VOC-trained one does.

Any photo size works: selective search sees the image shrunk to a longer side of 500 px (VOC's
size; ``proposals.resize_longer``), the boxes are scaled back, and conv5 sees its fixed scale, so a
12-megapixel phone photo takes seconds. Each image's log line gives the time of both steps.

With --grid FILE the drawn images are also tiled, in the order given, into one PNG (a picture of
several results at once, e.g. for a README).

Example:
  python tools/demo.py --work-dir runs/spp --out runs/demo runs/synthetic_voc/JPEGImages/test_000000.jpg
  python tools/demo.py --work-dir runs/spp --out runs/demo --grid runs/demo/grid.png runs/synthetic_voc/JPEGImages/test_00000[0-5].jpg
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from data.cache import atomic_write_bytes
from data.errors import InputError
from data.images import read_image
from data.progress import track
from data.records import Detections, ImageRecord
from detection.config import FAST_PRESET, fast_overrides
from detection.inference.detect import DRAW_THRESHOLDS, detect_image
from detection.workdir import open_detector
from proposals.workers import iter_proposals
from tools._cli import add_no_progress, run_cli, setup_logging

log = logging.getLogger("demo")

# Distinct colours (RGB), one per class id modulo their number (matplotlib's tab10).
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    p.add_argument("--work-dir", type=Path, required=True, help="a work dir trained by tools/train_det.py")
    p.add_argument("--out", type=Path, required=True, help="folder for the drawn images (OUT/<stem>.png)")
    p.add_argument("--threshold", type=float, default=None,
                   help="draw detections scoring above this (default: 0.0, the SVM margin, for SVM scores; "
                   "0.5 for softmax probabilities, test.scoring=softmax)")
    p.add_argument("--grid", type=Path, default=None, metavar="FILE",
                   help="also tile the drawn images into this one PNG, in the order given")
    p.add_argument("--grid-columns", type=int, default=3, help="images per row of --grid (default 3)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="test-time setting, e.g. test.scoring=softmax or test.bbox=joint (repeatable)")
    p.add_argument("--fast", action="store_true",
                   help=f"the speed levers that cost at most 0.5 mAP ({' '.join(FAST_PRESET)}; int8 on CPUs only)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    p.add_argument("--workers", type=int, default=None,
                   help="processes for selective search, run on the next images while one is detected "
                        "(default: all cores; 1: serial); does not change the result")
    add_no_progress(p)
    return p.parse_args(argv)


def draw_detections(image: np.ndarray, dets: Detections, classes: Sequence[str]) -> np.ndarray:
    """(H, W, 3) uint8 RGB image -> a copy with each box and its "class score" label drawn.

    The best detection is drawn last, so it stays on top where boxes overlap.
    """
    out = image.copy()
    h, w = out.shape[:2]
    thick = max(1, round(min(h, w) / 250))
    font = max(0.4, max(h, w) / 625)  # from the longer side: images shown at one width get labels of one size
    for i in np.argsort(dets.scores, kind="stable"):
        colour = PALETTE[int(dets.labels[i]) % len(PALETTE)]
        x1, y1, x2, y2 = (int(round(float(v))) for v in dets.boxes[i])
        cv2.rectangle(out, (x1, y1), (max(x2 - 1, x1), max(y2 - 1, y1)), colour, thick)
        text = f"{classes[int(dets.labels[i])]} {float(dets.scores[i]):.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        ty = y1 if y1 - th - base >= 0 else min(y1 + th + base, h - 1)  # inside the box at the top edge
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw, ty), colour, -1)
        cv2.putText(out, text, (x1, ty - base), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def tile(images: Sequence[np.ndarray], columns: int, width: int = 400) -> np.ndarray:
    """(H_i, W_i, 3) uint8 images -> one (rows * h, columns * width, 3) grid, each image scaled to
    ``width`` wide (aspect kept), rows as tall as their tallest image, white around."""
    scaled = [cv2.resize(im, (width, max(1, round(im.shape[0] * width / im.shape[1]))), interpolation=cv2.INTER_AREA)
              for im in images]
    rows = [scaled[i:i + columns] for i in range(0, len(scaled), columns)]
    height = [max(im.shape[0] for im in row) for row in rows]
    grid = np.full((sum(height), min(columns, len(scaled)) * width, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            y = sum(height[:r])
            grid[y:y + im.shape[0], c * width:(c + 1) * width] = im
    return grid


def write_png(path: Path, image: np.ndarray) -> None:
    """Save an (H, W, 3) uint8 RGB image as PNG, atomically."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError(path, "PNG encoding failed")
    atomic_write_bytes(path, buf.tobytes())


def above(dets: Detections, threshold: float) -> Detections:
    keep = dets.scores > threshold
    return Detections(dets.boxes[keep], dets.scores[keep], dets.labels[keep])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    stems = [p.stem for p in args.images]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise InputError(args.images[stems.index(dup[0])], f"several images named {dup[0]}.*: their outputs would clash")
    records = [ImageRecord.unannotated(path, read_image(path).shape[:2]) for path in args.images]  # fail on a bad file first
    device = torch.device(args.device)
    detector = open_detector(args.work_dir, device, (fast_overrides(device.type) if args.fast else []) + args.set)
    cfg, classes = detector.cfg, detector.classes
    if args.threshold is None:
        args.threshold = DRAW_THRESHOLDS[cfg.test.scoring]
    if args.grid_columns < 1:
        raise InputError("--grid-columns", "must be >= 1")
    workers = min(args.workers or len(os.sched_getaffinity(0)), len(records))
    warn_full_size(records, cfg.proposals.resize_longer)
    drawn = []
    # selective search of the next images runs in workers while this one is detected
    for item in track(iter_proposals(records, cfg.proposals, workers), total=len(records), desc="demo",
                      show=not args.no_progress):
        path = item.record.path
        image = read_image(path)
        start = time.perf_counter()
        dets = above(detect_image(item.record, item.boxes, detector.source, detector.model, cfg.test), args.threshold)
        seconds = time.perf_counter() - start
        out = args.out / f"{path.stem}.png"
        drawn.append(draw_detections(image, dets, classes))
        write_png(out, drawn[-1])
        best = ", ".join(f"{classes[int(c)]} {s:.2f}" for c, s in zip(dets.labels[:3], dets.scores[:3]))
        (h, w), (sh, sw) = item.record.size, item.segmented_size
        log.info("%s (%dx%d): proposals %.2f s (selective search at %dx%d), detection %.2f s; %d detections above "
                 "%.2f%s -> %s", path, w, h, item.seconds, sw, sh, seconds, len(dets), args.threshold,
                 f" (best: {best})" if best else "", out)  # fmt: skip
    if args.grid is not None:
        write_png(args.grid, tile(drawn, args.grid_columns))
        log.info("grid of %d images -> %s", len(drawn), args.grid)
    log.info("peak memory of this process: %.0f MB%s", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
             " (selective search ran here)" if workers <= 1 else f" ({workers} selective-search workers apart)")
    return 0


def warn_full_size(records: Sequence[ImageRecord], resize_longer: int | None, limit: int = 1000) -> None:
    """Warn when selective search will segment a large image at its own size (a work dir trained
    without ``proposals.resize_longer``): minutes per photo, and boxes sized for another scale."""
    large = [r for r in records if resize_longer is None and max(r.size) > limit]
    if large:
        log.warning("%d image(s) up to %d px wide will be segmented at their own size, since this work dir's "
                    "proposals.resize_longer is unset: minutes each; --set proposals.resize_longer=500 takes "
                    "seconds", len(large), max(max(r.size) for r in large))


if __name__ == "__main__":
    sys.exit(run_cli(main))
