"""Builders shared by the eval tests, as fixtures (tests use --import-mode=importlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data.records import Detections, ImageRecord


def _record(image_id: str, boxes, labels, difficult=None, size=(100, 200)) -> ImageRecord:
    """An in-memory ground-truth record; boxes 0-based (G, 4)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    g = boxes.shape[0]
    diff = np.zeros(g, bool) if difficult is None else np.asarray(difficult, bool)
    labels = np.asarray(labels, np.int64).reshape(-1)
    return ImageRecord(image_id, Path(f"{image_id}.jpg"), size, boxes, labels, diff, np.zeros(g, bool))


def _dets(boxes, scores, labels) -> Detections:
    """In-memory detections; boxes 0-based (R, 4)."""
    return Detections(
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(scores, np.float32).reshape(-1),
        np.asarray(labels, np.int64).reshape(-1),
    )


def _slow_vocevaldet(ids, scores, boxes_1based, gts, threshold=0.5):
    """VOCevaldet line by line (1-based boxes, MATLAB loops): (recall, precision).

    ``ids``, ``scores``, ``boxes_1based`` are the detections in the devkit's input order (for a
    result file, its line order, as ``textread`` returns them); gts: id -> (BB list, diff list).
    """
    order = sorted(range(len(scores)), key=lambda d: -scores[d])  # Python's sort is stable too
    claimed = {i: [False] * len(g[0]) for i, g in gts.items()}
    npos = sum(sum(1 for d in g[1] if not d) for g in gts.values())
    tp, fp = [], []
    for d in order:
        bb = boxes_1based[d]
        ovmax, jmax = -np.inf, -1
        for j, bbgt in enumerate(gts[ids[d]][0]):
            bi = [max(bb[0], bbgt[0]), max(bb[1], bbgt[1]), min(bb[2], bbgt[2]), min(bb[3], bbgt[3])]
            iw, ih = bi[2] - bi[0] + 1, bi[3] - bi[1] + 1
            if iw > 0 and ih > 0:
                ua = (bb[2] - bb[0] + 1) * (bb[3] - bb[1] + 1) + (bbgt[2] - bbgt[0] + 1) * (bbgt[3] - bbgt[1] + 1) - iw * ih
                if iw * ih / ua > ovmax:
                    ovmax, jmax = iw * ih / ua, j
        t = f = 0
        if ovmax >= threshold:
            if not gts[ids[d]][1][jmax]:
                if not claimed[ids[d]][jmax]:
                    t, claimed[ids[d]][jmax] = 1, True
                else:
                    f = 1
        else:
            f = 1
        tp.append(t)
        fp.append(f)
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    rec = tp / npos
    prec = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
    return rec, prec


@pytest.fixture
def make_record():
    return _record


@pytest.fixture
def make_dets():
    return _dets


@pytest.fixture
def slow_vocevaldet():
    return _slow_vocevaldet


# A scaling table (tests/eval/test_scaling_page.py, test_rcnn_projection.py): an images axis
# (small, large, huge) and a proposals axis (small against few windows).
SCALING_SPEC = """title: How cost grows
question: how?
kind: scaling
data: {preset: voc07, seed: 0}
seeds: [0]
rows:
  - {id: a, name: small, config: c.yaml, data: {num_trainval: 100, num_test: 50}}
  - {id: b, name: large, config: c.yaml, data: {num_trainval: 400, num_test: 200}}
  - {id: c, name: huge, config: c.yaml, data: {num_trainval: 1600, num_test: 800}}
  - {id: p, name: few windows, config: c.yaml, data: {num_trainval: 100, num_test: 50},
     set: [proposals.max_proposals=500]}
"""


@pytest.fixture
def scaling_dir(tmp_path: Path) -> Path:
    """A folder with SCALING_SPEC as its table.yaml and the rows' config."""
    folder = tmp_path / "scaling"
    folder.mkdir()
    (folder / "c.yaml").write_text("seed: 0\n")
    (folder / "table.yaml").write_text(SCALING_SPEC)
    return folder
