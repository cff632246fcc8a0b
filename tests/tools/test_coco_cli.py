"""The tools on a COCO json: --ann-file/--image-dir mean the same in every tool.

The tiny synthetic VOC set converted to COCO json (``tiny_coco``) is read by compute_proposals
and eval_voc; the flag mistakes are one line and exit status 2.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from data.datasets import open_dataset
from data.records import Detections
from eval.result_files import write_result_files
from tools import compute_proposals, demo, eval_voc, test_det, train_det
from tools._cli import run_cli


def _coco_flags(tiny_coco, split="test"):
    return ["--ann-file", str(tiny_coco[split]), "--image-dir", str(tiny_coco["image_dir"])]


@pytest.mark.parametrize("tool", [train_det, test_det, compute_proposals, eval_voc], ids=lambda t: t.__name__)
def test_help_documents_the_dataset_flags(tool, capsys):
    with pytest.raises(SystemExit):
        tool.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--data-root", "--split", "--ann-file", "--image-dir"):
        assert flag in text


def test_demo_takes_images_not_a_dataset(capsys):
    with pytest.raises(SystemExit):
        demo.main(["--help"])
    assert "--ann-file" not in capsys.readouterr().out  # classes come from the work dir, COCO-trained or not


def test_compute_proposals_on_a_coco_json(tiny_coco, tmp_path, capsys):
    js = tmp_path / "summary.json"
    argv = [*_coco_flags(tiny_coco), "--out", str(tmp_path / "props"), "--limit", "2", "--workers", "1",
            "--max-proposals", "100", "--json", str(js), "--no-progress"]  # fmt: skip
    assert run_cli(compute_proposals.main, argv) == 0
    summary = json.loads(js.read_text())
    assert summary["images"] == 2 and 0 < summary["mean_boxes"] <= 100 and summary["recall@0.5"] is not None
    (folder,) = (tmp_path / "props").iterdir()
    assert sorted(p.name for p in folder.glob("*.npz")) == ["1.npz", "2.npz"]  # the json's image ids


def _jittered(dataset, seed=0) -> dict[str, Detections]:
    rng = np.random.default_rng(seed)
    out = {}
    for rec in dataset.records:
        boxes = rec.boxes + rng.uniform(-8, 8, rec.boxes.shape).astype(np.float32)
        out[rec.image_id] = Detections(boxes, rng.uniform(0, 1, len(boxes)).astype(np.float32), rec.labels)
    return out


def test_eval_voc_same_map_on_voc_and_coco(tiny_voc, tiny_coco, tmp_path, capsys):
    """Devkit files of the same detections, written under each reading's ids, score the same."""
    voc = open_dataset(tiny_voc, "test")
    coco = open_dataset(ann_file=tiny_coco["test"], image_dir=tiny_coco["image_dir"])
    dets = list(_jittered(voc).values())
    write_result_files(tmp_path / "voc", dict(zip([r.image_id for r in voc.records], dets)), voc.classes, "test")
    write_result_files(tmp_path / "coco", dict(zip([r.image_id for r in coco.records], dets)), coco.classes, "test")
    a, b = tmp_path / "voc.json", tmp_path / "coco.json"
    assert eval_voc.main(["--data-root", str(tiny_voc), "--det-dir", str(tmp_path / "voc"), "--json", str(a)]) == 0
    capsys.readouterr()
    assert eval_voc.main([*_coco_flags(tiny_coco), "--det-dir", str(tmp_path / "coco"), "--json", str(b)]) == 0
    voc_result, coco_result = json.loads(a.read_text()), json.loads(b.read_text())
    assert 0 < coco_result["map"] < 1 and coco_result["map"] == voc_result["map"]
    assert set(coco_result["coco"]) == {"AP", "AP50"}  # COCO AP is always reported on a COCO json
    table = capsys.readouterr().out
    assert "COCO AP " in table and "COCO AP50" in table and "mAP" in table


@pytest.mark.parametrize("argv, message", [
    ([], "error: dataset: give --data-root DIR (VOC layout) or --ann-file FILE --image-dir DIR (COCO json)"),
    (["--data-root", "v", "--ann-file", "a.json", "--image-dir", "i"], "error: --data-root: give either"),
    (["--ann-file", "a.json"], "error: --ann-file: needs --image-dir DIR"),
    (["--data-root", "v"], "error: --split: needed with --data-root v"),
])  # fmt: skip
def test_flag_mistakes_exit_2_with_one_line(argv, message, tmp_path, capsys):
    assert run_cli(compute_proposals.main, [*argv, "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message)


def test_bad_json_through_a_tool_is_one_line(tiny_coco, tmp_path, capsys):
    data = json.loads(tiny_coco["test"].read_text())
    data["annotations"][2]["category_id"] = 99
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    argv = ["--ann-file", str(bad), "--image-dir", str(tiny_coco["image_dir"]), "--det-dir", str(tmp_path)]
    assert run_cli(eval_voc.main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {bad}: annotation id 3: category_id 99 is not in 'categories'"]
