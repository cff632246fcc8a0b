"""Config: paper defaults, YAML file, --set overrides, saved config reloads identically, errors."""

import pytest

from data.errors import InputError
from detection.config import DetectorConfig
from detection.config_io import config_to_dict, load_config, parse_overrides, save_config


def test_defaults_are_the_papers():
    cfg = DetectorConfig()
    assert cfg.features.levels == (6, 3, 2, 1)
    assert cfg.features.scales == (688,)
    assert cfg.finetune.batch_size == 128 and cfg.finetune.fg_fraction == 0.25
    assert cfg.svm.C == 0.001 and cfg.test.nms_iou == 0.3


def test_file_then_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("features:\n  scales: [480, 688]\nfinetune:\n  iterations: 10\n")
    cfg = load_config(f, ["finetune.iterations=20", "head.svd_fc6=256", "svm_layer=fc6"])
    assert cfg.features.scales == (480, 688)
    assert cfg.finetune.iterations == 20
    assert cfg.head.svd_fc6 == 256 and cfg.svm_layer == "fc6"
    assert cfg.finetune.lr == 1e-4  # untouched default


def test_save_and_reload_round_trip(tmp_path):
    cfg = load_config(None, ["features.scales=[480,576]", "test.bbox_reg=false", "finetune.lr=3e-4"])
    save_config(cfg, tmp_path / "config.yaml")
    assert config_to_dict(load_config(tmp_path / "config.yaml")) == config_to_dict(cfg)


@pytest.mark.parametrize("override, problem", [
    (["finetune.iterashuns=3"], "unknown config key 'finetune.iterashuns'"),
    (["finetune.iterations=many"], "finetune.iterations: expected int"),
    (["method=yolo"], "method must be one of"),
    (["nokey"], "expected KEY=VALUE"),
    (["features.backbone=resnet"], "features.backbone must be one of"),
])
def test_bad_overrides_name_the_key(override, problem):
    with pytest.raises(InputError, match="--set") as err:
        load_config(None, override)
    assert problem in str(err.value)


def test_bad_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("features: [unclosed\n")
    with pytest.raises(InputError, match="bad.yaml: not valid YAML"):
        load_config(f)
    with pytest.raises(InputError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_parse_overrides_nests():
    assert parse_overrides(["a.b=1", "a.c=[1, 2]", "d=x"]) == {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
