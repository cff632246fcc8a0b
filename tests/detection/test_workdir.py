"""Opening a trained work dir: the one path from files on disk to a ready detector.

The work dirs here are written by hand (``write_work_dir``: config, meta, head, SVMs, box regressors
of a tiny ZF-5 detector), so each test sees exactly which file decides what.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from data.cache import file_digest
from data.errors import InputError
from detection.config import load_config
from detection.features.rcnn_cache import CachedRCNNSource
from detection.features.rcnn_source import RCNNSource
from detection.features.spp_source import SPPSource
from detection.models.backbones import zf5_trunk
from detection.models.head import FcHead
from detection.pipeline.split import model_key
from detection.workdir import TRAINING_VERSION, open_detector
from svm.model import LinearSVMs
from tests.detection.conftest import write_work_dir

CPU = torch.device("cpu")
TINY = ["head.fc6=8", "head.fc7=8", "features.scales=[64]", "features.backbone=zf5", "features.pretrained=none"]


def test_open_detector_gives_the_trained_pieces(tmp_path):
    cfg = load_config(None, TINY)
    work = write_work_dir(tmp_path / "w", cfg)
    det = open_detector(work.root, CPU)
    assert det.classes == ('circle', 'square') and det.cfg == cfg
    assert isinstance(det.source, SPPSource) and det.source.cache is None  # test time: conv5 not cached
    assert isinstance(det.model.head, FcHead) and det.model.layer == "fc7"
    assert np.array_equal(det.model.svms.weights, LinearSVMs.load(work.svms).weights)
    assert det.model.bbox is not None
    saved = torch.load(work.head, weights_only=True)
    assert all(torch.equal(v, det.model.head.state_dict()[k]) for k, v in saved.items())


def test_open_detector_builds_the_rcnn_extractor_for_rcnn(tmp_path):
    work = write_work_dir(tmp_path / "w", load_config(None, TINY + ["method=rcnn"]))
    assert isinstance(open_detector(work.root, CPU).source, RCNNSource)


def test_open_detector_caches_rcnn_pool5_in_the_cache_dir_when_asked(tmp_path):
    work = write_work_dir(tmp_path / "w", load_config(None, TINY + ["method=rcnn", "features.rcnn_cache=true"]))
    source = open_detector(work.root, CPU).source
    assert isinstance(source, CachedRCNNSource) and source.folder.parent == work.cache / "rcnn_pool5"


def test_open_detector_applies_test_time_overrides_and_refuses_others(tmp_path):
    work = write_work_dir(tmp_path / "w", load_config(None, TINY))
    det = open_detector(work.root, CPU, ["test.bbox_reg=false", "test.nms_iou=0.4"])
    assert det.model.bbox is None and det.cfg.test.nms_iou == 0.4
    with pytest.raises(InputError, match="only test-time settings"):
        open_detector(work.root, CPU, ["head.fc6=16"])


def test_open_detector_uses_the_cache_dir_and_trunk_file_it_was_trained_with(tmp_path):
    """The demo once looked in WORK_DIR/cache instead of the --cache-dir of training."""
    shared, trunk = tmp_path / "shared_cache", zf5_trunk()
    torch.save(trunk.state_dict(), tmp_path / "trunk.pt")
    cfg = load_config(None, TINY[:-1] + [f"features.pretrained={tmp_path / 'trunk.pt'}"])
    work = write_work_dir(tmp_path / "w", cfg, cache_dir=shared)
    det = open_detector(work.root, CPU)
    assert det.work.cache == shared
    assert torch.equal(det.trunk.state_dict()["0.weight"], trunk.state_dict()["0.weight"])


def test_opening_what_is_not_a_trained_work_dir_is_one_error(tmp_path):
    with pytest.raises(InputError, match="not a trained work dir"):
        open_detector(tmp_path / "nothing", CPU)
    work = write_work_dir(tmp_path / "w", load_config(None, TINY))
    work.svms.unlink()
    with pytest.raises(InputError, match="svms.npz"):
        open_detector(work.root, CPU)
    work.meta.write_text(json.dumps({"stages_done": [], "training_version": TRAINING_VERSION}))
    with pytest.raises(InputError, match="no class names"):
        open_detector(work.root, CPU)
    work.meta.write_text(json.dumps({"classes": ["circle", "square"]}))  # before training versions
    with pytest.raises(InputError, match="trained by version 1 of the training code"):
        open_detector(work.root, CPU)


def test_model_key_follows_the_trained_files_and_the_config(tmp_path):
    cfg = load_config(None, TINY)
    work = write_work_dir(tmp_path / "w", cfg)
    key = model_key(open_detector(work.root, CPU))
    assert model_key(open_detector(work.root, CPU)) == key  # stable
    assert model_key(open_detector(work.root, CPU, ["test.max_per_image=5"])) != key
    write_work_dir(tmp_path / "w", cfg, seed=1)  # retrained: other SVMs and regressors
    assert model_key(open_detector(work.root, CPU)) != key


def test_a_work_dir_runs_only_with_the_trunk_file_it_was_trained_from(tmp_path):
    """meta.json records the trunk file's SHA-1: a file whose bytes changed since is refused."""
    torch.manual_seed(0)
    trained = tmp_path / "trained.pt"
    torch.save(zf5_trunk().state_dict(), trained)
    cfg = load_config(None, TINY[:-1] + [f"features.pretrained={trained}"])
    work = write_work_dir(tmp_path / "w", cfg)
    work.write_meta({**work.read_meta(), "trunk_file": {"path": str(trained), "sha1": file_digest(trained)}})
    det = open_detector(work.root, CPU)
    want = torch.load(trained, weights_only=True)["0.weight"]
    assert torch.equal(det.trunk.state_dict()["0.weight"], want)
    torch.save(zf5_trunk().state_dict(), trained)  # the file changes under the work dir
    with pytest.raises(InputError, match="not the trunk this work dir was trained with"):
        open_detector(work.root, CPU)


@pytest.mark.parametrize("name, corrupt, problem", [
    ("head.pt", lambda p: p.write_bytes(b"not a checkpoint at all"), "fine-tuned head file is unreadable"),
    ("head.pt", lambda p: p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2]), "fine-tuned head file is unreadable"),
    ("head.pt", lambda p: torch.save({"fc6.weight": torch.zeros(3, 3)}, p), "fine-tuned head file does not fit"),
    ("head.pt", lambda p: torch.save(torch.zeros(3), p), "holds a Tensor, not a dict"),
    ("svms.npz", lambda p: p.write_bytes(p.read_bytes()[:50]), "SVM model file is unreadable"),
    ("bbox.npz", lambda p: p.write_bytes(b"garbage"), "box-regression file is unreadable"),
])
def test_a_corrupt_trained_model_file_is_reported_by_name_and_left_alone(tmp_path, name, corrupt, problem):
    work = write_work_dir(tmp_path / "w", load_config(None, TINY))
    path = work.root / name
    corrupt(path)
    before = path.read_bytes()
    with pytest.raises(InputError, match=problem) as err:
        open_detector(work.root, CPU)
    assert str(path) in str(err.value)
    assert path.read_bytes() == before  # never replaced or deleted
