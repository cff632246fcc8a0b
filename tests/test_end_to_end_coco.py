"""The command lines end to end on a COCO json: train on the tiny set converted to COCO, test it
on the COCO test json and on the same images read as VOC, draw with the demo."""

import json

import pytest

from tests.conftest import TINY_TRAIN
from tools import demo, test_det, train_det

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def coco_workdir(tiny_coco, tmp_path_factory):
    work = tmp_path_factory.mktemp("coco_work") / "spp"
    argv = ["--ann-file", str(tiny_coco["trainval"]), "--image-dir", str(tiny_coco["image_dir"]),
            "--work-dir", str(work), *TINY_TRAIN]  # fmt: skip
    assert train_det.main(argv) == 0
    return work


def test_work_dir_remembers_the_json(coco_workdir, tiny_coco):
    meta = json.loads((coco_workdir / "meta.json").read_text())
    assert meta["ann_file"] == str(tiny_coco["trainval"]) and meta["image_dir"] == str(tiny_coco["image_dir"])
    assert meta["data_root"] is None and meta["train_split"] == "trainval"


def test_test_det_on_coco_matches_voc_and_writes_coco_results(coco_workdir, tiny_voc, tiny_coco, tmp_path, capsys):
    coco_out, voc_out = tmp_path / "coco", tmp_path / "voc"
    # --image-dir comes from the work dir
    assert test_det.main(["--work-dir", str(coco_workdir), "--ann-file", str(tiny_coco["test"]),
                          "--out", str(coco_out), "--no-progress"]) == 0  # fmt: skip
    table = capsys.readouterr().out
    assert "COCO AP " in table and "COCO AP50" in table
    scores = json.loads((coco_out / "map_test_voc07.json").read_text())
    assert set(scores["coco"]) == {"AP", "AP50"}
    results = json.loads((coco_out / "detections_test_results.json").read_text())
    assert results and {r["image_id"] for r in results} <= {1, 2, 3, 4}
    assert {r["category_id"] for r in results} <= set(range(1, len(scores["ap"]) + 1))
    # the same images read as a VOC split: the same mAP
    assert test_det.main(["--work-dir", str(coco_workdir), "--data-root", str(tiny_voc), "--split", "test",
                          "--out", str(voc_out), "--no-progress"]) == 0  # fmt: skip
    assert json.loads((voc_out / "map_test_voc07.json").read_text())["map"] == scores["map"]
    assert not (voc_out / "detections_test_results.json").exists()  # COCO results only for a COCO json


def test_demo_draws_with_the_coco_class_names(coco_workdir, tiny_voc, tmp_path):
    image = sorted((tiny_voc / "JPEGImages").glob("test_*.jpg"))[0]
    argv = ["--work-dir", str(coco_workdir), "--out", str(tmp_path), "--threshold", "-10", "--no-progress", str(image)]
    assert demo.main(argv) == 0
    assert (tmp_path / f"{image.stem}.png").is_file()
