"""tools/image_svm.py end to end on hand-made VOC and folder sets, the embedded set written as a
folder, fc7 from a classifier work dir, and one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from data.synthetic.classify import CLASSES
from data.synthetic.classify_folder import write_class_folder
from data.voc_write import write_annotation, write_classes, write_split
from detection.classification.dataset import class_files
from tools import image_svm
from tools._cli import run_cli

ZF5 = ["--backbone", "zf5", "--pretrained", "none", "--side", "64", "--no-progress"]
COLOURS = ((230, 30, 30), (30, 30, 230), (30, 200, 30))


def _picture(label: int, i: int) -> np.ndarray:
    image = np.full((48, 64 + 4 * i, 3), 120, np.uint8)
    image[8:40, 10:50] = COLOURS[label]
    return image


@pytest.fixture(scope="module")
def voc(tmp_path_factory) -> Path:
    """2 classes, one coloured box per image; each split has one image whose box is difficult."""
    root = tmp_path_factory.mktemp("voc")
    classes = ["red", "blue"]
    write_classes(root, classes)
    (root / "JPEGImages").mkdir()
    for split, n in (("trainval", 8), ("test", 6)):
        ids = [f"{split}_{i}" for i in range(n)]
        for i, image_id in enumerate(ids):
            image = _picture(i % 2, i)
            cv2.imwrite(str(root / "JPEGImages" / f"{image_id}.jpg"), image[:, :, ::-1])
            write_annotation(
                root / "Annotations" / f"{image_id}.xml",
                image_id,
                image.shape[:2],
                np.array([[10, 8, 50, 40]]),
                np.array([i % 2]),
                np.array([i == 2]),
                np.array([False]),
                classes,
            )
        write_split(root, split, ids)
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("folder")
    for label, name in enumerate(("red", "blue", "green")):
        (root / name).mkdir()
        for i in range(4):
            cv2.imwrite(str(root / name / f"{i}.png"), _picture(label, i)[:, :, ::-1])
    return root


@pytest.mark.slow
def test_voc_task_writes_map_and_per_class_ap(voc, tmp_path, capsys):
    out = tmp_path / "voc.json"
    assert image_svm.main(["--data-root", str(voc), *ZF5, "--cache-dir", str(tmp_path), "--json", str(out)]) == 0
    assert capsys.readouterr().out.startswith("mAP ")
    result = json.loads(out.read_text())
    assert result["task"] == "voc07" and set(result["per_class"]) == {"red", "blue"}
    assert result["mean"] == pytest.approx(np.mean(list(result["per_class"].values())))
    assert result["dim"] == 256 * 50 and result["levels"] == [6, 3, 2, 1] and result["std"] == 0.0
    assert (
        image_svm.main(
            [
                "--data-root",
                str(voc),
                *ZF5,
                "--cache-dir",
                str(tmp_path),
                "--levels",
                "6",
                "--view",
                "center",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads(out.read_text())["dim"] == 256 * 36


@pytest.mark.slow
def test_folder_task_averages_over_splits(folder, tmp_path):
    out = tmp_path / "folder.json"
    argv = [
        "--folder",
        str(folder),
        *ZF5,
        "--train-per-class",
        "2",
        "--test-per-class",
        "2",
        "--splits",
        "3",
        "--cache-dir",
        str(tmp_path),
        "--json",
        str(out),
    ]
    assert image_svm.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["task"] == "caltech101" and len(result["scores"]) == 3 and result["images"] == 12
    assert result["mean"] == pytest.approx(np.mean(result["scores"])) and set(result["per_class"]) == {
        "red",
        "blue",
        "green",
    }


def test_the_embedded_set_is_written_once_as_a_class_folder(tmp_path):
    root = write_class_folder(tmp_path / "emb", per_class=2, side=48, seed=0)
    files = class_files(root)
    assert sorted(files) == sorted(CLASSES) and all(len(p) == 2 for p in files.values())
    stamp = {p: p.stat().st_mtime_ns for paths in files.values() for p in paths}
    write_class_folder(root, per_class=2, side=48, seed=0)
    assert stamp == {p: p.stat().st_mtime_ns for p in stamp}  # complete: not written again


def test_fc7_comes_from_a_classifier_work_dir(folder, classifier_dir, tmp_path, capsys):
    out = tmp_path / "fc7.json"
    argv = [
        "--folder",
        str(folder),
        "--backbone",
        "zf5",
        "--pretrained",
        str(classifier_dir.root),
        "--layer",
        "fc7",
        "--side",
        "64",
        "--train-per-class",
        "2",
        "--splits",
        "1",
        "--cache-dir",
        str(tmp_path),
        "--no-progress",
    ]
    assert image_svm.main([*argv, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["dim"] == 16
    capsys.readouterr()
    assert run_cli(image_svm.main, [*argv, "--levels", "6"]) == 2  # its fc6 takes the 4-level pyramid
    err = capsys.readouterr().err
    assert "--levels 6,3,2,1" in err and len(err.strip().splitlines()) == 1


def test_fc7_of_a_no_spp_classifier_is_a_one_line_error_that_says_what_applies(folder, tmp_path, capsys):
    import torch

    from detection.classification.config import ClassifierConfig, ModelConfig, TrainConfig
    from detection.classification.network import SPPClassifier
    from detection.classification.workdir import ClassifierWorkDir
    from detection.runtime.config_io import save_config

    work = ClassifierWorkDir(tmp_path / "no_spp")  # Table 2's baseline: a fixed pool5, one input size
    cfg = ClassifierConfig(model=ModelConfig(fc6=16, fc7=16, pool="fixed"), train=TrainConfig(sizes=(112,)))
    save_config(cfg, work.config)
    work.write_json(work.meta, {"classes": ["a", "b", "c"]})
    torch.manual_seed(1)
    work.save_model(SPPClassifier(cfg.model, 3, cfg.train.crop))
    argv = ["--folder", str(folder), "--backbone", "zf5", "--pretrained", str(work.root), "--side", "64",
            "--train-per-class", "2", "--splits", "1", "--cache-dir", str(tmp_path), "--no-progress"]
    for levels in ([], ["--levels", "6"]):  # no --levels makes a fixed pool5 feed fc6
        assert run_cli(image_svm.main, [*argv, "--layer", "fc7", *levels]) == 2
        err = capsys.readouterr().err
        assert "fixed pool5" in err and "--layer pool5" in err and len(err.strip().splitlines()) == 1
        assert "--levels" not in err  # no pyramid makes its fc6 take a whole image: no --levels advice


@pytest.mark.parametrize("case", ["missing folder", "one image", "bad levels", "zero level", "fc7 of imagenet"])
def test_bad_input_is_one_line_naming_the_file(case, folder, tmp_path, capsys):
    small = tmp_path / "small"
    for name, count in (("a", 3), ("b", 1)):
        (small / name).mkdir(parents=True)
        for i in range(count):
            cv2.imwrite(str(small / name / f"{i}.png"), _picture(0, i))
    argv, named = {
        "missing folder": (["--folder", str(tmp_path / "nowhere")], str(tmp_path / "nowhere")),
        "one image": (["--folder", str(small), "--train-per-class", "1"], str(small / "b")),
        "bad levels": (["--folder", str(folder), "--levels", "6,x"], "--levels"),
        "zero level": (["--folder", str(folder), "--levels", "6,0"], "--levels"),
        "fc7 of imagenet": (
            ["--folder", str(folder), "--layer", "fc7", "--backbone", "mobilenet_v2", "--pretrained", "imagenet"],
            "--layer",
        ),
    }[case]
    assert run_cli(image_svm.main, [*argv, "--cache-dir", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
