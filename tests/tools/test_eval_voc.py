"""tools/eval_voc.py end to end on a tiny VOC-layout set written here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data.records import Detections
from data.voc_write import write_annotation, write_classes, write_split
from eval.result_files import result_path, write_result_files
from tools._cli import run_cli
from tools.eval_voc import main

CLASSES = ("cat", "dog", "bird")
# image id -> (boxes 0-based, labels, difficult); integer boxes so the VOC XML keeps them exactly
OBJECTS = {
    "000001": ([[10, 20, 60, 80], [100, 30, 150, 90]], [0, 1], [False, False]),
    "000002": ([[0, 0, 40, 40], [50, 50, 120, 110], [5, 60, 45, 100]], [2, 0, 1], [False, False, True]),
    "000003": ([[30, 30, 90, 70]], [2], [False]),
}


@pytest.fixture
def voc_root(tmp_path):
    root = tmp_path / "VOC"
    (root / "JPEGImages").mkdir(parents=True)
    for image_id, (boxes, labels, difficult) in OBJECTS.items():
        write_annotation(root / "Annotations" / f"{image_id}.xml", image_id, (120, 160), np.array(boxes, float),
                         np.array(labels), np.array(difficult), np.zeros(len(labels), bool), CLASSES)  # fmt: skip
        (root / "JPEGImages" / f"{image_id}.jpg").write_bytes(b"")  # the loader only checks existence
    write_split(root, "test", list(OBJECTS))
    write_classes(root, CLASSES)
    return root


def _perfect_detections() -> dict[str, Detections]:
    """Every GT (difficult ones too) given back with score 1."""
    return {
        i: Detections(np.array(b, np.float32), np.ones(len(lab), np.float32), np.array(lab, np.int64))
        for i, (b, lab, _) in OBJECTS.items()
    }


@pytest.mark.slow
def test_perfect_detections_score_one(voc_root, tmp_path, capsys):
    det_dir = tmp_path / "results"
    write_result_files(det_dir, _perfect_detections(), CLASSES, "test")
    out_json, plots = tmp_path / "map.json", tmp_path / "pr"
    argv = ["--data-root", str(voc_root), "--split", "test", "--det-dir", str(det_dir),
            "--json", str(out_json), "--coco", "--plot", str(plots)]  # fmt: skip
    assert main(argv) == 0
    written = json.loads(out_json.read_text())
    assert written["metric"] == "voc07" and written["map"] == 1.0
    assert written["ap"] == {"cat": 1.0, "dog": 1.0, "bird": 1.0}
    assert written["coco"]["AP"] == pytest.approx(1.0) and written["coco"]["AP50"] == pytest.approx(1.0)
    table = capsys.readouterr().out
    assert "mAP" in table and "100.0" in table and "bird" in table
    assert sorted(p.name for p in plots.iterdir()) == ["pr_bird.png", "pr_cat.png", "pr_dog.png"]


def test_missing_class_file_and_voc10(voc_root, tmp_path):
    det_dir = tmp_path / "results"
    write_result_files(det_dir, _perfect_detections(), CLASSES, "test")
    result_path(det_dir, "test", "dog").unlink()  # no dog detections -> AP 0
    out_json = tmp_path / "map.json"
    argv = ["--data-root", str(voc_root), "--det-dir", str(det_dir), "--metric", "voc10", "--json", str(out_json)]
    assert main(argv) == 0
    written = json.loads(out_json.read_text())
    assert written["metric"] == "voc10"
    assert written["ap"] == {"cat": 1.0, "dog": 0.0, "bird": 1.0}
    assert written["map"] == pytest.approx(2 / 3)


def test_bad_result_line_is_one_line_error(voc_root, tmp_path, capsys):
    det_dir = tmp_path / "results"
    det_dir.mkdir()
    result_path(det_dir, "test", "cat").write_text("000001 0.5 1 1 10 10\n000009 0.5 1 1 10 10\n")
    assert run_cli(main, ["--data-root", str(voc_root), "--det-dir", str(det_dir)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("error: ")  # one line, no traceback
    assert "comp4_det_test_cat.txt, line 2" in errors[0] and "'000009'" in errors[0]


def test_tied_scores_follow_the_files_line_order(voc_root, tmp_path):
    # cat GTs: one in 000001, one in 000002 (npos 2). The file lists 000002 before 000001, both
    # at 0.5: TP (000002), FP (000001, no overlap), then TP (000001) at 0.4. The devkit's stable
    # sort keeps that order: precision 1, .5, 2/3 at recall .5, .5, 1 -> 11-point AP
    # (6 * 1 + 5 * 2/3) / 11 = 28/33. Split order (000001 first) would rank the FP first: 2/3.
    det_dir = tmp_path / "results"
    det_dir.mkdir()
    result_path(det_dir, "test", "cat").write_text(
        "000002 0.5 51 51 120 110\n000001 0.5 101 1 110 10\n000001 0.4 11 21 60 80\n"
    )
    out_json = tmp_path / "map.json"
    assert main(["--data-root", str(voc_root), "--det-dir", str(det_dir), "--json", str(out_json)]) == 0
    assert json.loads(out_json.read_text())["ap"]["cat"] == pytest.approx(28 / 33)


def test_threshold_prints_precision_and_recall_of_what_is_drawn(voc_root, tmp_path, capsys):
    det_dir = tmp_path / "results"
    write_result_files(det_dir, _perfect_detections(), CLASSES, "test")  # every score is 1
    argv = ["--data-root", str(voc_root), "--split", "test", "--det-dir", str(det_dir), "--threshold", "0", "2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "score > 0: precision 100.0 %, recall 100.0 %" in out
    assert "false positives: 0 localisation, 0 other class, 0 background" in out
    assert "score > 2: precision 100.0 %, recall 0.0 %" in out


def test_threshold_names_the_confused_classes(voc_root, tmp_path, capsys):
    detections = _perfect_detections()
    detections["000001"] = Detections(detections["000001"].boxes, detections["000001"].scores,
                                      np.array([1, 1], np.int64))  # the cat drawn as a dog
    det_dir = tmp_path / "results"
    write_result_files(det_dir, detections, CLASSES, "test")
    argv = ["--data-root", str(voc_root), "--split", "test", "--det-dir", str(det_dir), "--threshold", "0"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "precision 80.0 %, recall 80.0 % (4 TP, 1 FP, 5 objects); false positives: 0 localisation, " \
           "1 other class, 0 background" in out
    assert "1 box on an object of another class (drawn as -> is): dog -> cat 1; each given its object's " \
           "class: precision 100.0 %, recall 100.0 %" in out
