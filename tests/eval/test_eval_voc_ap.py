"""VOC AP formulas and evaluate_voc on hand-computed examples."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from data.errors import InputError
from eval.voc_ap import VOC07_THRESHOLDS, evaluate_voc, matlab_colon, voc07_ap, voc10_ap

FAR = [150, 80, 160, 90]  # a box that overlaps no GT below


def _four_gt_example(make_record, make_dets):
    """One image, 4 GTs of class 0; ranked dets TP, FP, TP, FP, TP (GT 4 is missed)."""
    gts = [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]]
    rec = make_record("a", gts, [0, 0, 0, 0])
    det = make_dets([gts[0], FAR, gts[1], FAR, gts[2]], [0.9, 0.8, 0.7, 0.6, 0.5], [0] * 5)
    return {"a": det}, [rec]


def test_hand_computed_pr_both_metrics(make_record, make_dets):
    detections, records = _four_gt_example(make_record, make_dets)
    # npos = 4. cum tp 1,1,2,2,3; cum fp 0,1,1,2,2.
    # recall    .25, .25, .5,  .5, .75
    # precision 1,   .5,  2/3, .5, .6
    res07 = evaluate_voc(detections, records, ["c"], metric="voc07")
    np.testing.assert_allclose(res07.curves["c"][0], [0.25, 0.25, 0.5, 0.5, 0.75])
    np.testing.assert_allclose(res07.curves["c"][1], [1, 0.5, 2 / 3, 0.5, 0.6])
    # 11-point: t = 0, .1, .2 -> 1 (3 points); t = .3, .4, .5 -> max(2/3, .5, .6) = 2/3 (3 points);
    # t = .6, .7 -> .6 (2 points); t = .8, .9, 1 -> none -> 0. AP = (3 + 2 + 1.2) / 11 = 6.2 / 11.
    assert res07.ap["c"] == pytest.approx(6.2 / 11)
    assert res07.map == pytest.approx(6.2 / 11)
    # VOCap: envelope 1 on (0, .25], 2/3 on (.25, .5], .6 on (.5, .75], 0 on (.75, 1]
    # -> .25 * (1 + 2/3 + .6) = 0.5666...
    res10 = evaluate_voc(detections, records, ["c"], metric="voc10")
    assert res10.ap["c"] == pytest.approx(0.25 * (1 + 2 / 3 + 0.6))


def test_matlab_colon_matches_documented_matlab_values():
    # MATLAB (MathWorks answer "Floating Point Accuracy and COLON"): (0:0.1:0.3) - (0:0.1:0.4)(1:4)
    # = 1e-16 * [0 0 -0.2776 -0.5551]: the second half is counted down from the end point.
    x, y = matlab_colon(0, 0.1, 0.3), matlab_colon(0, 0.1, 0.4)
    np.testing.assert_allclose((x - y[:4]) * 1e16, [0, 0, -0.2776, -0.5551], atol=1e-4)
    assert len(VOC07_THRESHOLDS) == 11 and VOC07_THRESHOLDS[-1] == 1.0
    assert VOC07_THRESHOLDS[3] > 0.3 and VOC07_THRESHOLDS[6] == 0.6 and VOC07_THRESHOLDS[7] == 0.7


def test_voc07_recall_exactly_point_three_misses_t_point_three():
    # npos 10: TP TP TP (recall .3, precision 1), FP, TP (recall .4, precision .8).
    # MATLAB's t(4) = 0.30000000000000004 > 0.3, so t = .3 takes .8:
    # AP = (3 * 1 + 2 * .8) / 11 (t = 0, .1, .2 -> 1; t = .3, .4 -> .8; rest 0).
    recall = np.array([1, 2, 3, 3, 4]) / 10
    precision = np.array([1, 1, 1, 3 / 4, 4 / 5])
    assert voc07_ap(recall, precision) == pytest.approx((3 + 1.6) / 11)


def test_ap_functions_empty_inputs():
    assert voc07_ap(np.zeros(0), np.zeros(0)) == 0.0
    assert voc10_ap(np.zeros(0), np.zeros(0)) == 0.0


def test_score_ties_keep_split_order(make_record, make_dets):
    # Same score in two images: image "a" holds an FP, image "b" a TP; npos = 1.
    rec_a = make_record("a", [[0, 0, 10, 10]], [1])  # a GT of another class only
    rec_b = make_record("b", [[0, 0, 10, 10]], [0])
    detections = {"a": make_dets([[0, 0, 10, 10]], [0.5], [0]), "b": make_dets([[0, 0, 10, 10]], [0.5], [0])}
    # split order a, b: FP first -> precision [0, .5] at recall [0, 1] -> every t gets .5.
    res = evaluate_voc(detections, [rec_a, rec_b], ["c", "d"])
    np.testing.assert_allclose(res.curves["c"][1], [0, 0.5])
    assert res.ap["c"] == pytest.approx(0.5)
    # split order b, a: TP first -> precision [1, .5], recall [1, 1] -> AP 1.
    res = evaluate_voc(detections, [rec_b, rec_a], ["c", "d"])
    assert res.ap["c"] == pytest.approx(1.0)


def test_ties_within_an_image_keep_detection_order(make_record, make_dets):
    rec = make_record("a", [[0, 0, 10, 10]], [0])
    fp_first = make_dets([FAR, [0, 0, 10, 10]], [0.5, 0.5], [0, 0])
    tp_first = make_dets([[0, 0, 10, 10], FAR], [0.5, 0.5], [0, 0])
    assert evaluate_voc({"a": fp_first}, [rec], ["c"]).ap["c"] == pytest.approx(0.5)
    assert evaluate_voc({"a": tp_first}, [rec], ["c"]).ap["c"] == pytest.approx(1.0)


def test_class_without_detections_scores_zero(make_record, make_dets):
    rec = make_record("a", [[0, 0, 10, 10], [20, 20, 40, 40]], [0, 1])
    res = evaluate_voc({"a": make_dets([[0, 0, 10, 10]], [1.0], [0])}, [rec], ["c", "d"])
    assert res.ap == {"c": pytest.approx(1.0), "d": 0.0}
    assert res.map == pytest.approx(0.5)
    assert res.num_det["d"] == 0 and res.num_gt["d"] == 1


def test_class_without_gt_is_none_and_left_out(make_record, make_dets, caplog):
    # class "d" has only a difficult GT: npos = 0 -> None, and the mean is over "c" alone.
    rec = make_record("a", [[0, 0, 10, 10], [20, 20, 40, 40]], [0, 1], difficult=[False, True])
    det = make_dets([[0, 0, 10, 10], [20, 20, 40, 40]], [1.0, 1.0], [0, 1])
    with caplog.at_level(logging.WARNING):
        res = evaluate_voc({"a": det}, [rec], ["c", "d"])
    assert res.ap["d"] is None and res.map == pytest.approx(1.0)
    assert "'d'" in caplog.text
    assert res.to_json() == {"metric": "voc07", "map": pytest.approx(1.0), "ap": {"c": pytest.approx(1.0), "d": None}}


def test_no_class_with_gt_gives_nan_map(make_record):
    res = evaluate_voc({}, [make_record("a", np.zeros((0, 4)), [])], ["c"])
    assert res.ap["c"] is None and math.isnan(res.map) and res.to_json()["map"] is None


def test_bad_inputs_raise_input_error(make_record, make_dets):
    rec = make_record("a", [[0, 0, 10, 10]], [0])
    with pytest.raises(InputError, match="'zz'"):
        evaluate_voc({"zz": make_dets([[0, 0, 1, 1]], [1.0], [0])}, [rec], ["c"])
    with pytest.raises(InputError, match="class ids"):
        evaluate_voc({"a": make_dets([[0, 0, 1, 1]], [1.0], [3])}, [rec], ["c"])
    with pytest.raises(InputError, match="metric"):
        evaluate_voc({}, [rec], ["c"], metric="coco")
