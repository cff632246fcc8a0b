"""ZF-5 crop pre-training: its pieces against plain references, and its cache."""

import logging
import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from data.boxes import as_tensor, box_iou
from data.errors import InputError
from data.synthetic import generate
from data.voc import load_voc
from detection.models.backbones import zf5_trunk
from detection.training.pretrain import (
    CropClassifier,
    PretrainConfig,
    cut_crops,
    ensure_pretrained_zf5,
    make_crops,
    pretrained_trunk_path,
    sample_windows,
)

TINY = PretrainConfig(crop_size=32, hidden=8, epochs=1, batch_size=8, max_crops_per_epoch=16)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    generate(root, 8, 2, seed=0)
    return load_voc(root, "trainval")


def test_windows_and_crops(tiny_set):
    record = next(r for r in tiny_set.records if r.num_objects and not r.difficult.any())
    cfg = PretrainConfig(jitter=0.0, bg_per_object=1.0)
    boxes, labels, flips = sample_windows(record, cfg, np.random.default_rng(0), augment=False)
    g = record.num_objects
    np.testing.assert_allclose(boxes[:g], record.boxes)  # no jitter: the ground truths themselves
    assert labels[:g].tolist() == (record.labels + 1).tolist()  # object k -> k + 1
    assert (labels[g:] == 0).all() and len(labels) > g and not flips.any()
    assert box_iou(as_tensor(boxes[g:]), as_tensor(record.boxes)).max() < 0.3  # background windows

    image = np.zeros((10, 20, 3), np.uint8)
    image[:, 10:] = 200  # right half bright
    crops = cut_crops(image, np.array([[10.0, 0, 20, 10], [0, 0, 20, 10]], np.float32), np.array([False, True]), 8)
    assert crops.shape == (2, 3, 8, 8) and crops.dtype == np.uint8
    assert (crops[0] == 200).all()  # the right half only
    assert crops[1][:, :, 0].mean() > 150 and crops[1][:, :, -1].mean() < 50  # flipped: bright on the left


def test_pretrain_writes_reuses_and_keys_by_seed(tiny_set, tmp_path, caplog):
    with pytest.raises(InputError, match="no pre-trained ZF-5"):
        pretrained_trunk_path(tmp_path)
    path = ensure_pretrained_zf5(tiny_set, tmp_path, 0, CPU, progress=False, cfg=TINY)
    assert pretrained_trunk_path(tmp_path) == path
    state = torch.load(path, weights_only=True)
    trunk = zf5_trunk()
    trunk.load_state_dict(state)  # strict: exactly the trunk's keys and shapes
    assert not torch.equal(state["0.weight"], zf5_trunk().state_dict()["0.weight"])
    mtime = path.stat().st_mtime_ns

    with caplog.at_level(logging.INFO, logger="detection.training.pretrain"):
        again = ensure_pretrained_zf5(tiny_set, tmp_path, 0, CPU, progress=False, cfg=TINY)
    assert again == path and path.stat().st_mtime_ns == mtime
    assert "reusing" in caplog.text

    other = ensure_pretrained_zf5(tiny_set, tmp_path, 1, CPU, progress=False, cfg=TINY)
    assert other != path and other.is_file()
    assert pretrained_trunk_path(tmp_path) == other  # the pointer follows the last call


def test_pretrain_is_deterministic_and_rebuilds_a_corrupt_cache(tiny_set, tmp_path):
    a = ensure_pretrained_zf5(tiny_set, tmp_path / "a", 3, CPU, progress=False, cfg=TINY)
    b = ensure_pretrained_zf5(tiny_set, tmp_path / "b", 3, CPU, progress=False, cfg=TINY)
    sa, sb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)

    a.write_bytes(b"not a checkpoint")
    again = ensure_pretrained_zf5(tiny_set, tmp_path / "a", 3, CPU, progress=False, cfg=TINY)
    assert again == a
    assert all(torch.equal(v, sb[k]) for k, v in torch.load(a, weights_only=True).items())


def test_classifier_learns_a_handful_of_crops(tiny_set):
    """The from-scratch ZF-5 classifier must be trainable: it fits 12 real crops in a few steps.

    (The first version, torch's default init with Adam 1e-3, stayed at the majority class.)
    """
    cfg = PretrainConfig(crop_size=32, hidden=32, dropout=0.0, lr=1e-3)
    crops, labels = make_crops(list(tiny_set.records[:4]), cfg, np.random.default_rng(0), False, False, "")
    crops, labels = crops[:12], labels[:12]
    majority = torch.bincount(labels).max().item() / len(labels)
    assert len(torch.unique(labels)) >= 3 and majority < 0.5  # a real multi-class problem
    torch.manual_seed(0)
    model = CropClassifier(tiny_set.num_classes, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: on a busy shared CPU, 2 threads are ~5x slower than 1
    try:
        for _ in range(40):
            loss = nn.functional.cross_entropy(model(crops), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    with torch.no_grad():
        assert (model(crops).argmax(1) == labels).float().mean().item() == 1.0


@pytest.mark.parametrize("corrupt", [
    lambda p: p.write_bytes(p.read_bytes()[:1000]),  # truncated
    lambda p: torch.save({"0.weight": torch.zeros(2, 2)}, p),  # another network's shapes
])
def test_a_corrupt_trunk_is_reported_once_and_retrained_to_the_same_weights(tiny_set, tmp_path, caplog, corrupt):
    path = ensure_pretrained_zf5(tiny_set, tmp_path, 3, CPU, progress=False, cfg=TINY)
    want = torch.load(path, weights_only=True)
    corrupt(path)
    caplog.clear()  # only the second call's lines (an earlier in-process tool may have left root at INFO)
    with caplog.at_level(logging.INFO):
        ensure_pretrained_zf5(tiny_set, tmp_path, 3, CPU, progress=False, cfg=TINY)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and f"{path.name} is corrupt" in warnings[0]
    assert caplog.text.count("pre-training ZF-5 on object crops") == 1
    assert all(torch.equal(v, want[k]) for k, v in torch.load(path, weights_only=True).items())


def test_two_runs_at_once_pretrain_once(tiny_set, tmp_path, monkeypatch):
    import detection.training.pretrain as pretrain

    real, calls = pretrain.train_crop_classifier, []

    def slow_train(*args, **kwargs):
        calls.append(1)
        time.sleep(0.5)  # the other run arrives while this one trains
        return real(*args, **kwargs)

    monkeypatch.setattr(pretrain, "train_crop_classifier", slow_train)
    paths = []
    threads = [threading.Thread(target=lambda: paths.append(
        ensure_pretrained_zf5(tiny_set, tmp_path, 0, CPU, progress=False, cfg=TINY))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(paths) == 2 and paths[0] == paths[1]
