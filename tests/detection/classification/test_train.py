"""Training: the loss falls on an easy set, and a resumed run ends with an uninterrupted run's weights."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from detection.classification.config import ModelConfig, TrainConfig
from detection.classification.dataset import ImageSet
from detection.classification.network import SPPClassifier
from detection.classification.train import epoch_size, fit, lr_factor

CPU = torch.device("cpu")
TINY = TrainConfig(sizes=(48, 40), epochs=3, batch_size=8, lr=1e-3)


def _easy_set(n: int, seed: int) -> ImageSet:
    """Dark images (label 0) and bright ones (label 1), of varying widths."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for i in range(n):
        label = i % 2
        base = 40 if label == 0 else 200
        images.append(np.clip(rng.normal(base, 20, (55, 55 + 3 * i % 20, 3)), 0, 255).astype(np.uint8))
        labels.append(label)
    return ImageSet(tuple(images), np.array(labels, np.int64), ("dark", "bright"))


def _model():
    torch.manual_seed(0)
    return SPPClassifier(ModelConfig(fc6=16, fc7=16), 2, TINY.crop)


@pytest.mark.parametrize("bf16", [False, True])
def test_resume_gives_the_uninterrupted_weights(tmp_path, bf16):
    train, held = _easy_set(16, 0), _easy_set(6, 1)
    cfg = replace(TINY, bf16=bf16)
    whole = _model()
    history = fit(whole, train, held, cfg, 0, CPU, tmp_path / "a.pt", progress=False)
    assert [h["size"] for h in history] == [48, 40, 48]  # multi-size: one epoch per size in turn
    part = _model()
    fit(part, train, held, cfg, 0, CPU, tmp_path / "b.pt", progress=False, stop_after=1)
    resumed = _model()  # a fresh process: new weights, RNGs elsewhere
    torch.manual_seed(123)
    history_b = fit(resumed, train, held, cfg, 0, CPU, tmp_path / "b.pt", resume=True, progress=False)
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert [h["train_loss"] for h in history] == [h["train_loss"] for h in history_b]


def test_learns_an_easy_set(tmp_path):
    train, held = _easy_set(24, 0), _easy_set(8, 1)
    cfg = TrainConfig(sizes=(48, 40), epochs=4, batch_size=4)  # the default recipe (BN, SGD, warmup + cosine)
    history = fit(_model(), train, held, cfg, 0, CPU, tmp_path / "c.pt", progress=False)
    assert history[-1]["held_accuracy"] == 1.0, history


def test_warmup_then_cosine_by_hand():
    assert [lr_factor(s, 10, 4) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, 10, 4) == 1.0 and abs(lr_factor(7, 10, 4) - 0.5) < 1e-12 and lr_factor(10, 10, 4) == 0.0
    assert lr_factor(0, 10, 0) == 1.0  # no warmup: cosine from the first step


def test_the_last_epoch_is_at_the_crop_size():
    assert [epoch_size(TrainConfig(sizes=(112, 90), epochs=4), e) for e in range(4)] == [90, 112, 90, 112]
    assert [epoch_size(TrainConfig(sizes=(112, 90), epochs=3), e) for e in range(3)] == [112, 90, 112]


def test_bf16_trains_in_bfloat16_and_still_learns(tmp_path):
    """train.bf16: the forward really runs in bfloat16 (the weights move otherwise than in float32),
    the weights stay float32, and the easy set is still learnt."""
    train, held = _easy_set(24, 0), _easy_set(8, 1)
    cfg = TrainConfig(sizes=(48, 40), epochs=4, batch_size=4)
    exact, bf16 = _model(), _model()
    fit(exact, train, held, cfg, 0, CPU, tmp_path / "f32.pt", progress=False)
    history = fit(bf16, train, held, replace(cfg, bf16=True), 0, CPU, tmp_path / "bf16.pt", progress=False)
    assert history[-1]["held_accuracy"] == 1.0, history
    assert all(p.dtype == torch.float32 for p in bf16.parameters())
    assert not torch.equal(exact.head.fc6.weight, bf16.head.fc6.weight)
