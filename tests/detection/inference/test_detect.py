"""The detection read-out: score threshold, per-class NMS, the cap, clipping."""

import numpy as np
import torch

from detection.inference.detect import DetectConfig, _select


def test_select_nms_per_class_threshold_and_cap():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float32)
    per_class = boxes[:, None, :].repeat(1, 2, 1)  # (R, K=2, 4)
    scores = torch.tensor([[0.9, 0.8], [0.7, -2.0], [-3.0, 0.1]])
    det = _select(per_class, scores, (100, 100), DetectConfig(score_threshold=-1.5, max_per_image=10))
    # class 0: boxes 0 and 1 overlap (IoU .68 > .3): only 0 survives; box 2 is below threshold.
    # class 1: box 0 (.8) and box 2 (.1); box 1 is below threshold.
    assert sorted((int(k), round(float(s), 3)) for k, s in zip(det.labels, det.scores)) == [(0, 0.9), (1, 0.1), (1, 0.8)]
    assert det.scores.tolist() == sorted(det.scores.tolist(), reverse=True)
    capped = _select(per_class, scores, (100, 100), DetectConfig(max_per_image=1))
    assert len(capped) == 1 and capped.scores[0] == np.float32(0.9)


def test_select_clips_to_the_image():
    per_class = torch.tensor([[[-5.0, -5.0, 150.0, 60.0]]])
    det = _select(per_class, torch.tensor([[1.0]]), (50, 100), DetectConfig())
    assert det.boxes.tolist() == [[0.0, 0.0, 100.0, 50.0]]

