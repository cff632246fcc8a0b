"""COCO results json, and the same VOC mAP through the VOC reader and the COCO reader.

The tiny synthetic VOC set is converted to COCO json; fixed detections (the ground truths jittered,
with scores, plus some false positives) are scored on both readings of it.
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from data.coco import load_coco
from data.datasets import open_dataset
from data.errors import InputError
from data.records import Detections
from eval.coco_ap import coco_ap
from eval.coco_results import coco_results, results_path, write_coco_results
from eval.voc_ap import evaluate_voc


def fixed_detections(records, seed: int = 0) -> list[Detections]:
    """Per record: every ground truth jittered by up to 20% of its size, a random score, its label;
    then 3 random false positives. Deterministic."""
    rng = np.random.default_rng(seed)
    out = []
    for rec in records:
        boxes = rec.boxes.astype(np.float64)
        wh = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
        jittered = boxes + rng.uniform(-0.2, 0.2, boxes.shape) * wh
        h, w = rec.size
        x1y1 = rng.uniform(0, [w * 0.7, h * 0.7], (3, 2))
        fp = np.concatenate([x1y1, x1y1 + rng.uniform(10, 100, (3, 2))], axis=1)
        all_boxes = np.concatenate([jittered, fp]).astype(np.float32)
        labels = np.concatenate([rec.labels, rng.integers(0, 5, 3)]).astype(np.int64)
        scores = rng.uniform(0, 1, len(labels)).astype(np.float32)
        out.append(Detections(all_boxes, scores, labels))
    return out


@pytest.fixture(scope="module")
def both(tiny_voc, tiny_coco):
    voc = open_dataset(data_root=tiny_voc, split="test")
    coco = open_dataset(ann_file=tiny_coco["test"], image_dir=tiny_coco["image_dir"])
    dets = fixed_detections(voc.records)
    return voc, coco, dets


def test_voc_reader_and_coco_reader_give_the_same_records(both):
    voc, coco, _ = both
    assert coco.classes == voc.classes and coco.split == "test" and coco.coco is not None
    assert [r.image_id for r in coco.records] == [str(n) for n in range(1, len(voc.records) + 1)]
    for a, b in zip(voc.records, coco.records):
        assert a.path == b.path and a.size == b.size
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.difficult, b.difficult)  # difficult -> iscrowd -> difficult


@pytest.mark.parametrize("metric", ["voc07", "voc10"])
def test_same_voc_map_through_both_readers(both, metric):
    voc, coco, dets = both
    r_voc = evaluate_voc({r.image_id: d for r, d in zip(voc.records, dets)}, voc.records, voc.classes, metric)
    r_coco = evaluate_voc({r.image_id: d for r, d in zip(coco.records, dets)}, coco.records, coco.classes, metric)
    assert 0.05 < r_voc.map < 0.95  # neither trivial nor perfect
    assert r_coco.map == r_voc.map and r_coco.ap == r_voc.ap


def test_results_json_round_trips_through_pycocotools(both, tmp_path):
    voc, coco, dets = both
    by_id = {r.image_id: d for r, d in zip(coco.records, dets)}
    path = write_coco_results(results_path(tmp_path, coco.split), by_id, coco)
    assert path.name == "detections_test_results.json"
    entries = json.loads(path.read_text())
    assert len(entries) == sum(len(d) for d in dets)
    assert set(entries[0]) == {"image_id", "category_id", "bbox", "score"}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(coco.coco.ann_file))
        ev = COCOeval(gt, gt.loadRes(str(path)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # pycocotools on the files == our in-memory COCO AP, through either reader
    ours = coco_ap(by_id, coco.records, coco.classes)
    assert ours == coco_ap({r.image_id: d for r, d in zip(voc.records, dets)}, voc.records, voc.classes)
    assert ours == {"AP": float(ev.stats[0]), "AP50": float(ev.stats[1])}
    assert 0 < ours["AP"] < ours["AP50"] < 1


def test_results_use_the_jsons_own_ids(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.jpg").write_bytes(b"x")
    ann = tmp_path / "mini.json"
    ann.write_text(json.dumps({
        "images": [{"id": 42, "file_name": "a.jpg", "height": 50, "width": 80}],
        "annotations": [{"id": 1, "image_id": 42, "category_id": 18, "bbox": [1, 2, 30, 40]}],
        "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}],
    }))  # fmt: skip
    ds = load_coco(ann, tmp_path / "img")
    assert ds.classes == ("car", "dog")
    det = Detections(np.array([[1, 2, 31, 42], [0, 0, 10, 10]], np.float32), np.array([0.9, 0.25], np.float32),
                     np.array([1, 0], np.int64))  # fmt: skip
    assert coco_results({"42": det}, ds) == [
        {"image_id": 42, "category_id": 18, "bbox": [1.0, 2.0, 30.0, 40.0], "score": pytest.approx(0.9)},
        {"image_id": 42, "category_id": 3, "bbox": [0.0, 0.0, 10.0, 10.0], "score": 0.25},
    ]
    with pytest.raises(InputError, match="image id '7'"):
        coco_results({"7": det}, ds)


def test_results_need_a_coco_dataset(both):
    voc, _, dets = both
    with pytest.raises(InputError, match="--ann-file"):
        coco_results({voc.records[0].image_id: dets[0]}, voc)
