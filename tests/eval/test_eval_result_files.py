"""Devkit result files: format, round trip, reader errors, scoring in the files' line order."""

from __future__ import annotations

import numpy as np
import pytest

from data.errors import InputError
from eval.result_files import read_result_files, result_path, write_result_files
from eval.voc_ap import evaluate_voc, voc07_ap, voc10_ap

CLASSES = ("cat", "dog")


def test_written_lines_use_voc_one_based_coords(tmp_path, make_dets):
    det = {"img1": make_dets([[0, 1, 10, 20.25]], [0.75], [1])}
    paths = write_result_files(tmp_path, det, CLASSES, "test")
    assert [p.name for p in paths] == ["comp4_det_test_cat.txt", "comp4_det_test_dog.txt"]
    assert paths[0].read_text() == ""  # every class gets a file, even an empty one
    # xmin = x1 + 1 = 1, ymin = y1 + 1 = 2, xmax = x2 = 10, ymax = y2 = 20.25 (every digit kept)
    assert paths[1].read_text() == "img1 0.75 1.0 2.0 10.0 20.25\n"


def test_round_trip(tmp_path, make_dets):
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, size=(7, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0, 50, size=(7, 2))], axis=1)
    scores = rng.normal(size=7).astype(np.float32)
    labels = np.array([0, 1, 0, 1, 1, 0, 0])
    original = {"a": make_dets(boxes[:4], scores[:4], labels[:4]), "b": make_dets(boxes[4:], scores[4:], labels[4:])}
    write_result_files(tmp_path, original, CLASSES, "val")
    back = read_result_files(tmp_path, CLASSES, "val", ["a", "b", "c"])
    assert list(back) == ["a", "b", "c"] and len(back["c"]) == 0
    for image_id, det in original.items():
        # back in class order, file order within a class (stable sort by label)
        order = np.argsort(det.labels, kind="stable")
        np.testing.assert_array_equal(back[image_id].labels, det.labels[order])
        np.testing.assert_array_equal(back[image_id].scores, det.scores[order])  # exact
        np.testing.assert_array_equal(back[image_id].boxes, det.boxes[order])  # exact too


def test_absent_class_file_means_no_detections(tmp_path):
    result_path(tmp_path, "test", "dog").write_text("a 0.5 1 1 10 10\n\n")  # blank lines are skipped
    back = read_result_files(tmp_path, CLASSES, "test", ["a"])
    np.testing.assert_array_equal(back["a"].labels, [1])
    np.testing.assert_array_equal(back["a"].boxes, [[0, 0, 10, 10]])


@pytest.mark.parametrize(
    "line, message",
    [
        ("a 0.5 1 1 10", "line 2.*expected"),
        ("a 0.5 1 1 10 x", "line 2.*numbers"),
        ("a nan 1 1 10 10", "line 2.*finite"),
        ("zz 0.5 1 1 10 10", "line 2.*'zz' is not in the split"),
        ("a 0.5 10 1 5 10", "line 2.*x2 < x1"),
        ("a 0.5 1 10 10 5", "line 2.*y2 < y1"),
    ],
)
def test_reader_errors_name_file_and_line(tmp_path, line, message):
    path = result_path(tmp_path, "test", "cat")
    path.write_text(f"a 0.9 1 1 10 10\n{line}\n")
    with pytest.raises(InputError, match=message) as err:
        read_result_files(tmp_path, CLASSES, "test", ["a"])
    assert err.value.where.startswith(str(path))


def test_one_pixel_box_is_valid(tmp_path):
    # VOC xmin == xmax is a 1-pixel-wide box: 0-based width 1, not an error.
    result_path(tmp_path, "test", "cat").write_text("a 0.5 5 5 5 5\n")
    back = read_result_files(tmp_path, CLASSES, "test", ["a"])
    np.testing.assert_array_equal(back["a"].boxes, [[4, 4, 5, 5]])


def test_missing_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_result_files(tmp_path / "nope", CLASSES, "test", ["a"])


# ---- ties: the devkit ranks each class file's lines with a stable sort, so line order breaks them


def _tied_split(rng, make_record, num_images=12):
    """Random GTs of classes 0 and 1; devkit result lines (1-decimal scores: many ties) per class.

    Returns records, gts (class -> id -> (1-based BBs, difficult) for the slow port) and, per
    class, lines "<id> <score> <xmin> <ymin> <xmax> <ymax>" in image order.
    """
    records, gts, lines = [], {0: {}, 1: {}}, {0: [], 1: []}
    for n in range(num_images):
        image_id = f"im{n:02d}"
        g = int(rng.integers(1, 5))
        xy = rng.integers(1, 60, size=(g, 2))
        gt0 = np.concatenate([xy, xy + rng.integers(6, 30, size=(g, 2))], axis=1).astype(float)
        labels, diff = rng.integers(0, 2, size=g), rng.random(g) < 0.2
        records.append(make_record(image_id, gt0, labels, diff))
        for k in (0, 1):
            gts[k][image_id] = ([[b[0] + 1, b[1] + 1, b[2], b[3]] for b in gt0[labels == k]], list(diff[labels == k]))
        for _ in range(int(rng.integers(0, 7))):
            box = gt0[rng.integers(0, g)] + rng.integers(-5, 6, size=4) + rng.integers(0, 10, size=4) / 10
            box[2:] = np.maximum(box[2:], box[:2] + 1)
            score = round(float(rng.random()), 1)
            lines[int(rng.integers(0, 2))].append(
                f"{image_id} {score:.1f} {box[0] + 1:.1f} {box[1] + 1:.1f} {box[2]:.1f} {box[3]:.1f}\n"
            )
    return records, gts, lines


def _port_on_lines(slow_vocevaldet, lines, gts):
    """The slow VOCevaldet port fed the lines in the order given (what textread returns)."""
    fields = [line.split() for line in lines]
    boxes = [[float(v) for v in f[2:]] for f in fields]
    return slow_vocevaldet([f[0] for f in fields], [float(f[1]) for f in fields], boxes, gts)


def _score_files(tmp_path, lines, records, metric="voc07"):
    for k, name in enumerate(CLASSES):
        result_path(tmp_path, "test", name).write_text("".join(lines[k]))
    detections = read_result_files(tmp_path, CLASSES, "test", [r.image_id for r in records])
    return evaluate_voc(detections, records, CLASSES, metric=metric), detections


@pytest.mark.parametrize("seed", range(6))
def test_shuffled_tied_files_score_exactly_as_the_devkit(seed, tmp_path, make_record, slow_vocevaldet):
    rng = np.random.default_rng(seed)
    records, gts, lines = _tied_split(rng, make_record)
    for class_lines in lines.values():
        rng.shuffle(class_lines)  # images interleaved, not in split order
    scores = [line.split()[1] for line in lines[0]]
    assert len(set(scores)) < len(scores)  # ties across images
    for metric, ap_fn in (("voc07", voc07_ap), ("voc10", voc10_ap)):
        result, _ = _score_files(tmp_path, lines, records, metric)
        for k, name in enumerate(CLASSES):
            rec, prec = _port_on_lines(slow_vocevaldet, lines[k], gts[k])
            np.testing.assert_allclose(result.curves[name][0], rec, rtol=0, atol=1e-12)
            np.testing.assert_allclose(result.curves[name][1], prec, rtol=0, atol=1e-12)
            assert abs(result.ap[name] - ap_fn(rec, prec)) <= 1e-12


def test_two_line_orders_two_aps_each_the_devkits(tmp_path, make_record, slow_vocevaldet):
    records, gts, lines = _tied_split(np.random.default_rng(0), make_record, num_images=20)
    aps = []
    for order_seed in (1, 2):
        shuffled = {k: list(v) for k, v in lines.items()}
        np.random.default_rng(order_seed).shuffle(shuffled[0])
        result, detections = _score_files(tmp_path, shuffled, records)
        assert abs(result.ap["cat"] - voc07_ap(*_port_on_lines(slow_vocevaldet, shuffled[0], gts[0]))) <= 1e-12
        aps.append(result.ap["cat"])
        # regrouped by image (what the reader used to return), ties follow split order instead
        per_image = evaluate_voc(dict(detections), records, CLASSES).ap["cat"]
    assert abs(aps[0] - aps[1]) > 1e-3  # same lines, same scores: only the tie order differs
    assert per_image not in aps


def test_tie_order_by_hand(tmp_path, make_record):
    # Split order a, b. Both images hold a "cat" at score 0.5: an FP in a, the TP in b (npos 1).
    records = [make_record("a", [[0, 0, 10, 10]], [1]), make_record("b", [[0, 0, 10, 10]], [0])]
    tp_first = {0: ["b 0.5 1 1 10 10\n", "a 0.5 1 1 10 10\n"], 1: []}
    fp_first = {0: ["a 0.5 1 1 10 10\n", "b 0.5 1 1 10 10\n"], 1: []}
    # TP first: precision [1, .5] at recall [1, 1] -> AP 1. FP first: precision [0, .5] -> AP .5.
    assert _score_files(tmp_path, tp_first, records)[0].ap["cat"] == 1.0
    assert _score_files(tmp_path, fp_first, records)[0].ap["cat"] == pytest.approx(0.5)


def test_scores_are_ranked_as_written_not_as_float32(tmp_path, make_record):
    # 0.50000001 and 0.50000002 are both 0.5 in float32 (spacing 6e-8 there) but differ as the
    # devkit's doubles: the TP in b ranks first although its line comes second.
    records = [make_record("a", [[0, 0, 10, 10]], [1]), make_record("b", [[0, 0, 10, 10]], [0])]
    lines = {0: ["a 0.50000001 1 1 10 10\n", "b 0.50000002 1 1 10 10\n"], 1: []}
    result, detections = _score_files(tmp_path, lines, records)
    assert result.ap["cat"] == 1.0
    assert detections["a"].scores[0] == detections["b"].scores[0]  # the per-image view is float32


def test_our_own_files_score_like_our_in_memory_detections(tmp_path, make_record, make_dets):
    # write_result_files lists split order then each image's order: the in-memory tie order.
    rng = np.random.default_rng(3)
    records, detections = [], {}
    for n in range(8):
        gt0 = rng.integers(0, 60, size=(3, 2))
        gt0 = np.concatenate([gt0, gt0 + 12], axis=1)
        records.append(make_record(f"im{n}", gt0, rng.integers(0, 2, size=3)))
        # fractional float32 boxes: their digits must survive the files (next test)
        boxes = gt0[rng.integers(0, 3, size=5)] + rng.uniform(-3.5, 3.5, size=(5, 4)).astype(np.float32)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        detections[f"im{n}"] = make_dets(boxes, rng.choice([0.25, 0.5, 0.75], size=5), rng.integers(0, 2, size=5))
    write_result_files(tmp_path, detections, CLASSES, "test")
    back = read_result_files(tmp_path, CLASSES, "test", [r.image_id for r in records])
    in_memory, from_files = evaluate_voc(detections, records, CLASSES), evaluate_voc(back, records, CLASSES)
    assert from_files.ap == in_memory.ap
    for name in CLASSES:
        np.testing.assert_array_equal(from_files.curves[name][1], in_memory.curves[name][1])


def test_a_detection_just_above_iou_half_stays_a_true_positive_through_the_files(tmp_path, make_record, make_dets):
    # IoU with the 10 x 10 ground truth = 7.15 x 7 / 100 = 0.5005. Written with 1 decimal (py-faster-rcnn's
    # format, ours until 2026-11-26) x1 = 0.06 -> 0.1 and x2 = 7.21 -> 7.2: IoU 0.497, a false positive.
    records = [make_record("a", [[0, 0, 10, 10]], [0])]
    detections = {"a": make_dets([[0.06, 0, 7.21, 7]], [0.9], [0])}
    write_result_files(tmp_path, detections, CLASSES, "test")
    back = read_result_files(tmp_path, CLASSES, "test", ["a"])
    assert evaluate_voc(detections, records, CLASSES).ap["cat"] == 1.0
    assert evaluate_voc(back, records, CLASSES).ap["cat"] == 1.0


def test_result_lines_for_other_classes_are_an_input_error(tmp_path, make_record):
    records = [make_record("a", [[0, 0, 10, 10]], [0])]
    detections = read_result_files(tmp_path, CLASSES, "test", ["a"])
    with pytest.raises(InputError, match="2 classes of result lines, expected 1"):
        evaluate_voc(detections, records, CLASSES[:1])
