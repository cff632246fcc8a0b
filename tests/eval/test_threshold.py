"""Precision / recall above a score threshold, against counts worked out by hand."""

from pathlib import Path

import numpy as np

from data.records import Detections, ImageRecord
from eval.threshold import precision_recall_above, relabel_confusions


def rec(image_id, boxes, labels, difficult):
    n = len(boxes)
    return ImageRecord(image_id, Path(f"{image_id}.jpg"), (100, 100), np.array(boxes, np.float32).reshape(-1, 4),
                       np.array(labels, np.int64), np.array(difficult, bool), np.zeros(n, bool))


def dets(boxes, scores, labels):
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32),
                      np.array(labels, np.int64))


def test_counts_by_hand():
    records = [rec("a", [[0, 0, 50, 50], [60, 60, 90, 90]], [0, 1], [False, False]),
               rec("b", [[10, 10, 40, 40], [50, 0, 80, 30]], [0, 0], [False, True])]
    detections = {
        "a": dets([[0, 0, 50, 50], [1, 1, 50, 50], [60, 60, 90, 90]], [0.9, 0.8, -0.5], [0, 0, 1]),
        # b: a hit, a hit on a difficult object (neither), a miss placed nowhere, all of class 0
        "b": dets([[10, 10, 40, 40], [50, 0, 80, 30], [0, 60, 20, 80]], [0.7, 0.6, 0.1], [0, 0, 0]),
    }
    # above 0: class 0 -> TP (a), duplicate FP (a), TP (b), difficult (neither), FP (b); class 1 dropped
    pr = precision_recall_above(detections, records, 2, threshold=0.0)
    assert (pr.tp, pr.fp, pr.num_gt) == (2, 2, 3)
    assert pr.precision == 0.5 and pr.recall == 2 / 3
    low = precision_recall_above(detections, records, 2, threshold=-1.0)
    assert (low.tp, low.fp) == (3, 2)
    none = precision_recall_above(detections, records, 2, threshold=5.0)
    assert (none.tp, none.fp, none.precision, none.recall) == (0, 0, 1.0, 0.0)


def test_error_types_by_hand():
    records = [rec("a", [[0, 0, 50, 50], [60, 60, 90, 90]], [0, 1], [False, False]),
               rec("b", [[10, 10, 40, 40]], [0], [True])]
    detections = {
        "a": dets([[0, 0, 50, 50],     # TP
                   [1, 1, 50, 50],     # duplicate of the class-0 object: localisation
                   [0, 0, 50, 20],     # IoU 0.4 with it: localisation
                   [60, 60, 90, 90],   # on the class-1 object: other class
                   [40, 40, 88, 88],   # IoU 0.02 with its own object, 0.32 with the class-1 one: other class
                   [0, 70, 20, 95]],   # on nothing: background
                  [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [0, 0, 0, 0, 0, 0]),
        # on the difficult object: neither TP nor FP; IoU 0.4 with it: localisation (difficult objects count)
        "b": dets([[10, 10, 40, 40], [10, 10, 22, 40]], [0.9, 0.8], [0, 0]),
    }
    pr = precision_recall_above(detections, records, 2, threshold=0.0)
    assert (pr.tp, pr.fp, pr.num_gt) == (1, 6, 2)
    assert (pr.fp_localisation, pr.fp_other_class, pr.fp_background) == (3, 2, 1)
    assert pr.confusions == ((0, 1, 1),)  # only the box right on the class-1 object (IoU 0.32 is not enough)
    # a classifier that got the found objects right: that box becomes class 1's hit
    fixed = precision_recall_above(relabel_confusions(detections, records), records, 2, threshold=0.0)
    assert (fixed.tp, fixed.fp, fixed.confusions) == (2, 5, ())


def _iou(a, b):
    """The devkit's overlap, one pair at a time (inclusive 1-based pixels), 0 when apart."""
    iw = min(a[2], b[2]) - max(a[0] + 1, b[0] + 1) + 1
    ih = min(a[3], b[3]) - max(a[1] + 1, b[1] + 1) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
    return iw * ih / (area_a + area_b - iw * ih)


def test_error_types_match_a_slow_reference():
    """Random boxes: the counts equal a loop over every false positive and every object."""
    rng = np.random.default_rng(0)

    def boxes(n):
        xy = rng.uniform(0, 70, (n, 2))
        return np.concatenate([xy, xy + rng.uniform(5, 30, (n, 2))], 1).round(1)

    records, detections = [], {}
    for i in range(6):
        g = int(rng.integers(1, 5))
        gt = boxes(g)
        records.append(rec(f"i{i}", gt, rng.integers(0, 3, g), rng.random(g) < 0.2))
        near = gt[rng.integers(0, g, 6)] + rng.normal(0, 3, (6, 4)).round(1)  # hits, duplicates, near misses
        d = 12
        detections[f"i{i}"] = dets(np.concatenate([boxes(d - 6), near]), rng.uniform(-1, 1, d), rng.integers(0, 3, d))
    for threshold in (-1.0, 0.0, 0.5):
        pr = precision_recall_above(detections, records, 3, threshold)
        expected = np.zeros(3, int)
        for k in range(3):
            # the false positives of class k, as match_class labels them (tested on its own)
            order = sorted(((float(s), i, j) for i, r in enumerate(records)
                            for j, (s, lab) in enumerate(zip(detections[r.image_id].scores, detections[r.image_id].labels))
                            if lab == k and s > threshold), key=lambda x: -x[0])
            claimed = set()
            for _, i, j in order:
                r, box = records[i], detections[records[i].image_id].boxes[j]
                own = [(_iou(box, g), n) for n, (g, lab) in enumerate(zip(r.boxes, r.labels)) if lab == k]
                best = max(own, default=(0.0, -1))
                if best[0] >= 0.5 and r.difficult[best[1]]:
                    continue
                if best[0] >= 0.5 and best[1] not in claimed and (i, best[1]) not in claimed:
                    claimed.add((i, best[1]))
                    continue
                other = max((_iou(box, g) for g, lab in zip(r.boxes, r.labels) if lab != k), default=0.0)
                expected[0 if best[0] >= 0.1 else 1 if other >= 0.1 else 2] += 1
        got = (pr.fp_localisation, pr.fp_other_class, pr.fp_background)
        assert got == tuple(expected) and sum(got) == pr.fp
        pairs = {}
        for r in records:
            d = detections[r.image_id]
            for box, lab, score in zip(d.boxes, d.labels, d.scores):
                own = max((_iou(box, g) for g, gl in zip(r.boxes, r.labels) if gl == lab), default=0.0)
                others = [(_iou(box, g), int(gl)) for g, gl in zip(r.boxes, r.labels) if gl != lab]
                best = max(others, key=lambda x: x[0], default=(0.0, -1))  # first of equal overlaps
                if score > threshold and own < 0.1 and best[0] >= 0.5:
                    pairs[(int(lab), best[1])] = pairs.get((int(lab), best[1]), 0) + 1
        assert sorted(pr.confusions) == sorted((a, b, n) for (a, b), n in pairs.items())
        assert pr.confusions == tuple(sorted(pr.confusions, key=lambda c: (-c[2], c[:2])))
