"""Detecting a split: per-image entries keyed by the model, the config and the image's content."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from data.errors import InputError
from data.synthetic import BASE_CLASSES, generate
from data.voc import load_voc
from detection.config import load_config
from detection.pipeline.split import detect_split
from detection.workdir import open_detector
from tests.detection.conftest import write_work_dir

CPU = torch.device("cpu")
TINY = ["head.fc6=8", "head.fc7=8", "features.scales=[96]", "features.backbone=zf5", "features.pretrained=none",
        "proposals.max_proposals=50", "test.score_threshold=-100"]


@pytest.fixture(scope="module")
def tiny_test_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("split") / "voc"
    generate(root, num_trainval=2, num_test=2, seed=5)
    return root


def _same(a, b) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("boxes", "scores", "labels"))


def test_an_image_replaced_under_the_same_id_is_detected_again(tiny_test_set, tmp_path):
    """A regenerated test set keeps its ids: its detections must not come from the old images."""
    work = write_work_dir(tmp_path / "w", load_config(None, TINY), classes=BASE_CLASSES)
    dataset = load_voc(tiny_test_set, "test")
    det = open_detector(work.root, CPU)
    first = detect_split(det, dataset, workers=1, progress=False)
    again = detect_split(det, dataset, workers=1, progress=False)  # every entry reused
    assert all(_same(first[i], again[i]) for i in first)
    path, ida, idb = dataset.records[0].path, dataset.records[0].image_id, dataset.records[1].image_id
    assert cv2.imwrite(str(path), cv2.imread(str(path))[:, ::-1])  # same id and size, mirrored content
    changed = detect_split(det, dataset, workers=1, progress=False)
    assert not _same(changed[ida], first[ida]) and _same(changed[idb], first[idb])
    fresh_work = write_work_dir(tmp_path / "fresh", load_config(None, TINY), classes=BASE_CLASSES)
    fresh = detect_split(open_detector(fresh_work.root, CPU), dataset, workers=1, progress=False)
    assert _same(changed[ida], fresh[ida])


def test_a_dataset_with_other_classes_is_refused(tiny_test_set, tmp_path):
    work = write_work_dir(tmp_path / "w", load_config(None, TINY), classes=("a", "b"))
    with pytest.raises(InputError, match="differ from the 2"):
        detect_split(open_detector(work.root, CPU), load_voc(tiny_test_set, "test"), workers=1, progress=False)


def test_detection_with_proposal_workers_equals_serial(tmp_path):
    """Selective search in 2 workers gives the serial detections."""
    root = tmp_path / "voc"
    generate(root, num_trainval=2, num_test=4, seed=7)
    dataset = load_voc(root, "test")
    runs = {}
    for workers in (1, 2):  # separate work dirs and caches: everything computed afresh
        work = write_work_dir(tmp_path / f"w{workers}", load_config(None, TINY), classes=BASE_CLASSES)
        runs[workers] = detect_split(open_detector(work.root, CPU), dataset, workers=workers, progress=False)
    assert list(runs[1]) == list(runs[2]) == [r.image_id for r in dataset.records]
    assert all(_same(runs[1][i], runs[2][i]) for i in runs[1])
