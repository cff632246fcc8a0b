"""Devkit matching: inclusive IoU, difficult objects, duplicates, best-match rule, slow reference."""

from __future__ import annotations

import numpy as np
import pytest

from eval.matching import devkit_overlaps, match_class, to_devkit_boxes
from eval.voc_ap import evaluate_voc, voc07_ap


def test_to_devkit_boxes_inverts_voc_reader():
    # VOC xmin=1, ymin=2, xmax=10, ymax=20 is read as 0-based (0, 1, 10, 20).
    np.testing.assert_array_equal(to_devkit_boxes(np.array([[0, 1, 10, 20]])), [[1, 2, 10, 20]])


def test_devkit_overlaps_inclusive_areas_by_hand():
    # 1-based GT 1..10 x 1..10 (100 px), det 6..15 x 1..10 (100 px): iw = 10-6+1 = 5, ih = 10,
    # inter 50, union 150 -> 1/3. Det 11..20 only touches nothing: iw = 10-11+1 = 0 -> no overlap.
    gt = np.array([[1.0, 1, 10, 10]])
    ov = devkit_overlaps(np.array([[6.0, 1, 15, 10], [11.0, 1, 20, 10]]), gt)
    assert ov[0, 0] == pytest.approx(1 / 3)
    assert ov[1, 0] == -np.inf


def test_inclusive_iou_decides_tp_at_border(make_record, make_dets):
    # Case 1: GT VOC (1,1,10,10) = 0-based (0,0,10,10); det VOC (1,1,10,5) = 0-based (0,0,10,5).
    # Devkit: det 10x5 = 50 px inside the GT's 10x10 = 100 px -> IoU 0.5 -> TP (AP 1).
    # Wrong "exclusive areas on VOC numbers": 9*4 / (9*9) = 0.444 -> FP (AP 0).
    rec = make_record("a", [[0, 0, 10, 10]], [0])
    res = evaluate_voc({"a": make_dets([[0, 0, 10, 5]], [1.0], [0])}, [rec], ["c"])
    assert res.ap["c"] == pytest.approx(1.0)
    # Case 2: GT 0-based (0,0,4,4) = 16 px; det (0,0,4,1.9): devkit 4*1.9 / 16 = 0.475 -> FP.
    # Wrong "+1 areas on 0-based numbers": 5*2.9 / (5*5) = 0.58 -> TP.
    rec = make_record("a", [[0, 0, 4, 4]], [0])
    res = evaluate_voc({"a": make_dets([[0, 0, 4, 1.9]], [1.0], [0])}, [rec], ["c"])
    assert res.ap["c"] == 0.0


def test_difficult_match_is_neither_and_not_in_npos():
    gt = [np.array([[0.0, 0, 10, 10], [50, 50, 60, 60]])]
    difficult = [np.array([True, False])]
    # ranked: on the difficult GT, on the normal GT, nowhere
    det_boxes = np.array([[0.0, 0, 10, 10], [50, 50, 60, 60], [100, 100, 110, 110]])
    tp, fp = match_class(np.zeros(3, int), det_boxes, gt, difficult)
    np.testing.assert_array_equal(tp, [False, True, False])
    np.testing.assert_array_equal(fp, [False, False, True])


def test_best_match_includes_difficult_gt():
    # The det overlaps the difficult GT more (IoU 1) than the normal GT (0,0,10,12) (inter 100,
    # union 120 -> 0.833). VOCevaldet takes the best GT over
    # all GTs, the difficult one, so the det is neither TP nor FP even though a normal GT matches.
    gt = [np.array([[0.0, 0, 10, 10], [0, 0, 10, 12]])]
    tp, fp = match_class(np.zeros(1, int), np.array([[0.0, 0, 10, 10]]), gt, [np.array([True, False])])
    assert not tp[0] and not fp[0]


def test_duplicate_is_fp_even_if_another_gt_would_match():
    # Two GTs: A (0,0,10,10), B (0,0,10,12). Both dets are exactly A: first TP on A, the second's
    # best is still A (claimed) -> FP, although B overlaps it by 0.833: the devkit never falls back.
    gt = [np.array([[0.0, 0, 10, 10], [0, 0, 10, 12]])]
    det_boxes = np.array([[0.0, 0, 10, 10], [0, 0, 10, 10]])
    tp, fp = match_class(np.zeros(2, int), det_boxes, gt, [np.zeros(2, bool)])
    np.testing.assert_array_equal(tp, [True, False])
    np.testing.assert_array_equal(fp, [False, True])


def test_equal_overlap_tie_goes_to_first_gt():
    # Det (0,0,10,10) overlaps GT0 (0,0,10,20) and GT1 (0,0,20,10) equally (0.5). The devkit's
    # strict ">" keeps GT0; GT0 is difficult -> neither. Had GT1 been chosen it would be a TP.
    gt = [np.array([[0.0, 0, 10, 20], [0, 0, 20, 10]])]
    tp, fp = match_class(np.zeros(1, int), np.array([[0.0, 0, 10, 10]]), gt, [np.array([True, False])])
    assert not tp[0] and not fp[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_slow_reference(seed, make_record, make_dets, slow_vocevaldet):
    rng = np.random.default_rng(seed)
    records, detections, gts = [], {}, {}
    ids, scores, boxes1 = [], [], []
    for n in range(6):
        image_id = f"im{n}"
        g = rng.integers(1, 5)
        xy = rng.integers(0, 40, size=(g, 2))
        wh = rng.integers(4, 20, size=(g, 2))
        gt0 = np.concatenate([xy, xy + wh], axis=1).astype(float)  # 0-based integer boxes
        diff = rng.random(g) < 0.25
        records.append(make_record(image_id, gt0, np.zeros(g), diff))
        gts[image_id] = ([[b[0] + 1, b[1] + 1, b[2], b[3]] for b in gt0], list(diff))
        r = rng.integers(0, 8)
        jitter = rng.integers(-3, 4, size=(r, 4))
        det0 = gt0[rng.integers(0, g, size=r)] + jitter
        det0[:, 2:] = np.maximum(det0[:, 2:], det0[:, :2] + 1)
        s = rng.choice([0.1, 0.5, 0.9], size=r)  # few values: many score ties
        detections[image_id] = make_dets(det0, s, np.zeros(r))
        ids += [image_id] * r
        scores += list(s.astype(np.float32))
        boxes1 += [[b[0] + 1, b[1] + 1, b[2], b[3]] for b in det0]
    if sum(1 for g in gts.values() for d in g[1] if not d) == 0:
        pytest.skip("no non-difficult GT drawn")
    res = evaluate_voc(detections, records, ["c"])
    rec, prec = slow_vocevaldet(ids, scores, boxes1, gts)
    np.testing.assert_allclose(res.curves["c"][0], rec)
    np.testing.assert_allclose(res.curves["c"][1], prec)
    assert res.ap["c"] == pytest.approx(voc07_ap(rec, prec))
