"""Fixtures shared across packages: a tiny synthetic VOC set and a detector trained on it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

TINY_TRAIN = [
    "--set", "proposals.max_proposals=150",
    "--set", "features.scales=[320]",
    "--set", "head.fc6=64", "--set", "head.fc7=64",
    "--set", "finetune.iterations=20", "--set", "finetune.lr=0.001",
    "--set", "finetune.windows_per_image=32",
    "--no-progress", "--workers", "2",
]


@pytest.fixture(autouse=True)
def _no_log_file_left_open():
    """A tool run in-process (``tools.X.main``) logs to its work dir's file until another tool sets up
    logging: detach and close such file handlers after each test, so that a later test's log lines
    never land in an earlier test's train.log (the session's tiny work dir's included)."""
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logging.FileHandler)]:
        root.removeHandler(handler)
        handler.close()


@pytest.fixture(scope="session")
def tiny_voc(tmp_path_factory) -> Path:
    """8 trainval + 4 test synthetic images in the VOC layout."""
    from data.synthetic import generate

    root = tmp_path_factory.mktemp("tiny_voc") / "voc"
    generate(root, num_trainval=8, num_test=4, seed=3)
    return root


@pytest.fixture(scope="session")
def tiny_workdir(tiny_voc, tmp_path_factory) -> Path:
    """A work dir trained end to end by tools/train_det.py on ``tiny_voc`` (tiny settings)."""
    from tools import train_det

    work = tmp_path_factory.mktemp("tiny_work") / "spp"
    assert train_det.main(["--data-root", str(tiny_voc), "--work-dir", str(work), *TINY_TRAIN]) == 0
    return work


@pytest.fixture(scope="session")
def tiny_coco(tiny_voc) -> dict[str, Path]:
    """``tiny_voc``'s trainval and test splits converted to COCO json by ``data.coco.voc_to_coco``:
    {"trainval": json, "test": json, "image_dir": tiny_voc/JPEGImages}."""
    from data.coco import voc_to_coco

    trainval, test = voc_to_coco(tiny_voc, ["trainval", "test"], tiny_voc.parent / "coco")
    return {"trainval": trainval, "test": test, "image_dir": tiny_voc / "JPEGImages"}


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory):
    """A classifier work dir as tools/train_cls.py leaves it (ZF-5, random weights, fc6 = fc7 = 16)."""
    import torch

    from detection.classification.config import ClassifierConfig, ModelConfig
    from detection.classification.network import SPPClassifier
    from detection.classification.workdir import ClassifierWorkDir
    from detection.runtime.config_io import save_config

    work = ClassifierWorkDir(tmp_path_factory.mktemp("cls"))
    cfg = ClassifierConfig(model=ModelConfig(fc6=16, fc7=16))
    save_config(cfg, work.config)
    work.write_json(work.meta, {"classes": ["a", "b", "c"]})
    torch.manual_seed(1)
    work.save_model(SPPClassifier(cfg.model, 3, cfg.train.crop))
    return work
