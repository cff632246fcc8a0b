"""The detector starts from a classifier work dir: its trunk AND its fc6 / fc7."""

import json

import pytest
import torch

from data.errors import InputError
from detection.classification.workdir import load_classifier
from detection.config import load_config
from detection.workdir import build_network, classifier_file, new_head, trunk_weights_file


def _detector_cfg(path, fc=16):
    return load_config(None, ["features.backbone=zf5", f"features.pretrained={path}", f"head.fc6={fc}",
                              f"head.fc7={fc}"])


def test_trunk_and_fc67_come_from_the_classifier(classifier_dir, tmp_path):
    model, _, classes = load_classifier(classifier_dir.root)
    assert classes == ("a", "b", "c")
    cfg = _detector_cfg(classifier_dir.root)
    weights = trunk_weights_file(cfg)
    assert weights == classifier_dir.model
    trunk, info = build_network(cfg, torch.device("cpu"), weights)
    for (k, a), b in zip(trunk.state_dict().items(), model.trunk.state_dict().values()):
        assert torch.equal(a, b), k
    head = new_head(cfg, info, num_classes=5, pretrained_fc=classifier_file(cfg, weights))
    for layer in ("fc6", "fc7"):
        assert torch.equal(getattr(head, layer).weight, getattr(model.head, layer).weight)
        assert torch.equal(getattr(head, layer).bias, getattr(model.head, layer).bias)
    assert head.fc8.out_features == 6  # the detector's own K + 1


def test_head_size_mismatch_is_a_clear_error(classifier_dir, tmp_path):
    cfg = _detector_cfg(classifier_dir.root, fc=32)
    weights = trunk_weights_file(cfg)
    _, info = build_network(cfg, torch.device("cpu"), weights)
    with pytest.raises(InputError, match="set head.fc6 / head.fc7"):
        new_head(cfg, info, num_classes=5, pretrained_fc=classifier_file(cfg, weights))


def test_not_a_classifier_dir(tmp_path):
    with pytest.raises(InputError, match="not a trained classifier work dir"):
        load_classifier(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({}))
    cfg = _detector_cfg(tmp_path)
    with pytest.raises(InputError, match="trunk checkpoint not found"):
        trunk_weights_file(cfg)
