"""The SPP-net classifier: any input size with SPP, one size with the fixed pool5, the detector's head."""

import pytest
import torch

from data.errors import InputError
from detection.classification.config import ClassifierConfig, ModelConfig, TrainConfig
from detection.classification.evaluate import summary, topk_errors
from detection.classification.network import FixedPool5, SPPClassifier, conv5_side
from detection.models.backbones import zf5_trunk
from detection.runtime.config_io import load_dataclass

SMALL = ModelConfig(fc6=16, fc7=16)


def test_spp_takes_any_size_and_aspect():
    torch.manual_seed(0)
    model = SPPClassifier(SMALL, 5, 64).eval()
    for h, w in [(64, 64), (52, 52), (64, 100), (90, 48)]:
        assert model(torch.randn(2, 3, h, w)).shape == (2, 5)


def test_fixed_pool5_is_zf5s_pool5_at_224_and_refuses_other_sizes():
    assert conv5_side(zf5_trunk(), 224) == 13  # the paper's 13 x 13 conv5
    pool = FixedPool5(13, 6)
    assert (pool.pool.kernel_size, pool.pool.stride) == (3, 2)  # ZF-5's pool5: 3x3, stride 2
    assert pool(torch.randn(1, 4, 13, 13)).shape == (1, 4 * 36)
    model = SPPClassifier(ModelConfig(pool="fixed", fixed_bins=3, fc6=16, fc7=16), 3, 64).eval()  # conv5 3x3
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3)
    with pytest.raises(ValueError, match="training size only"):
        model(torch.randn(1, 3, 112, 112))


def test_head_is_the_detectors_fc_head_with_k_outputs():
    model = SPPClassifier(SMALL, 13, 64)
    keys = model.state_dict().keys()
    assert {"head.fc6.weight", "head.fc7.weight", "head.fc8.weight", "trunk.0.weight"} <= set(keys)
    assert model.head.fc8.out_features == 13


def test_mobilenet_trunk_with_and_without_spp():
    for pool in ("spp", "fixed"):
        model = SPPClassifier(ModelConfig(backbone="mobilenet_v2", pool=pool, fixed_bins=3, fc6=8, fc7=8,
                                        imagenet=False), 4, 64)
        assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 4)


def test_topk_errors_by_hand():
    logits = torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.2, 0.7], [0.5, 0.4, 0.1]])
    labels = torch.tensor([0, 1, 1])
    errors = topk_errors(logits, labels, ks=(1, 2, 5))
    assert errors["top1"] == pytest.approx(2 / 3)  # only the first is right
    assert errors["top2"] == pytest.approx(0.0)  # the 2nd and 3rd rank their label second
    assert errors["top5"] == 0.0  # k capped at K = 3


def test_summary_prefers_the_full_image_view():
    res = {"views": {"center_crop": {"top1": 0.3, "top5": 0.1}, "full_image": {"top1": 0.2, "top5": 0.05}},
           "majority": 0.1, "images": 10}
    out = summary(res)
    assert (out["view"], out["top1"], out["accuracy"]) == ("full_image", 0.2, pytest.approx(0.8))
    res["views"]["full_image"] = None
    assert summary(res)["view"] == "center_crop"


def test_config_checks():
    with pytest.raises(InputError, match="multi-size training needs model.pool=spp"):
        ClassifierConfig(model=ModelConfig(pool="fixed"), train=TrainConfig(sizes=(112, 90)))
    with pytest.raises(InputError, match="first size is the crop size"):
        ClassifierConfig(train=TrainConfig(sizes=(90, 112)))
    with pytest.raises(InputError, match="did you mean 'train.epochs'"):
        load_dataclass(ClassifierConfig(), None, ["train.epoch=3"])
    cfg = load_dataclass(ClassifierConfig(), None, ["train.sizes=[224,180]"])
    assert (cfg.train.crop, cfg.train.image_side) == (224, 256)
    assert TrainConfig(sizes=(112, 90)).image_side == 128


def test_classifier_pt_holds_zf5_as_released():
    """Trained with BN, saved folded: a network built without BN loads it and gives the same logits."""
    torch.manual_seed(0)
    trained = SPPClassifier(ModelConfig(fc6=16, fc7=16, batch_norm=True), 13, 64)
    trained.train()(torch.randn(8, 3, 64, 64))  # one batch moves BN's running statistics
    torch.nn.init.normal_(trained.head.fc8.weight)  # fc8 starts at zero: the logits would be too
    plain = SPPClassifier(ModelConfig(fc6=16, fc7=16, batch_norm=False), 13, 64)
    state = trained.plain_state_dict()
    plain.load_state_dict(state)
    assert not any("running" in k for k in state)
    image = torch.randn(2, 3, 70, 90)
    with torch.no_grad():
        assert torch.allclose(plain.eval()(image), trained.eval()(image), atol=1e-4)
