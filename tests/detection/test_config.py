"""Config: paper defaults, YAML file, --set overrides, saved config reloads identically, errors."""

import logging
from pathlib import Path

import pytest

from data.errors import InputError
from detection.config import (
    FAST_PRESET,
    DetectorConfig,
    check_test_time_overrides,
    fast_overrides,
    load_config,
    load_train_config,
)
from detection.runtime.config_io import config_to_dict, parse_overrides, save_config

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_papers():
    cfg = DetectorConfig()
    assert cfg.features.levels == (6, 3, 2, 1)
    assert cfg.features.scales == (688,)
    assert cfg.finetune.batch_size == 128 and cfg.finetune.fg_fraction == 0.25
    assert cfg.svm.C == 0.001 and cfg.test.nms_iou == 0.3
    # beyond the paper, off by default: conv fixed, SVM scores, ridge box regression
    assert cfg.finetune.mode == "fc" and not cfg.finetune.e2e.joint_bbox
    assert cfg.test.scoring == "svm" and cfg.test.bbox == "ridge"
    # R-CNN's rcnn_detect.m segments at 500 px wide; a class without training objects stops the run
    assert cfg.proposals.resize_longer == 500 and cfg.missing_classes == "error"
    assert load_config(None, ["proposals.resize_longer=null"]).proposals.resize_longer is None
    with pytest.raises(InputError, match="missing_classes"):
        load_config(None, ["missing_classes=ignore"])


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
    (["finetune.iterashuns=3"], "unknown config key 'finetune.iterashuns' (did you mean 'finetune.iterations'?)"),
    (["finetune.iterations=many"], "finetune.iterations: expected int"),
    (["method=yolo"], "method must be one of"),
    (["nokey"], "expected KEY=VALUE"),
    (["features.backbone=resnet"], "features.backbone must be one of"),
    (["head.fc6=0"], "head.fc6 and head.fc7 must be >= 1"),  # each stage's config checks itself
    (["head.svd_fc6=5000"], "head.svd_fc6 must be in"),
    (["finetune.fg_fraction=1.5"], "finetune.fg_fraction must be in (0, 1)"),
    (["test.max_per_image=0"], "test.max_per_image must be >= 1"),
    (["bbox.min_iou=0"], "min_iou must lie in (0, 1]"),
    (["svm.C=0"], "C"),
    (["pretrain.epochs=2"], "unknown config key 'pretrain'"),  # removed: only an old file may hold it
    (["finetune.mode=all"], "finetune.mode must be one of"),
    (["finetune.e2e.joint_bbox=true"], "finetune.e2e.joint_bbox needs finetune.mode=e2e"),
    (["finetune.e2e.freeze_blocks=-1"], "finetune.e2e.freeze_blocks must be >= 0"),
    (["finetune.e2e.images_per_batch=200"], "finetune.e2e.images_per_batch must be <= batch_size"),
    (["test.scoring=vote"], "test.scoring must be one of"),
    (["test.bbox=both"], "test.bbox must be one of"),
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


def test_an_old_work_dirs_removed_section_is_dropped_with_a_warning(tmp_path, caplog):
    """config.yaml of a work dir trained before the crop pre-training was removed still loads."""
    cfg = load_config(None, ["seed=3"])
    save_config(cfg, tmp_path / "config.yaml")
    old = tmp_path / "config.yaml"
    old.write_text(old.read_text() + "pretrain:\n  epochs: 4\n  crop_size: 64\n")
    with caplog.at_level(logging.WARNING):
        assert load_config(old) == cfg
    assert "config.yaml: ignoring the section 'pretrain'" in caplog.text and "tools/train_cls.py" in caplog.text


def test_a_renamed_key_is_read_under_its_new_name_with_a_warning(tmp_path, caplog):
    """finetune.freeze_blocks etc. became finetune.e2e.*: an old config.yaml and --set still work."""
    old = tmp_path / "config.yaml"
    old.write_text("finetune:\n  mode: e2e\n  freeze_blocks: 14\n  joint_bbox: true\n")
    with caplog.at_level(logging.WARNING):
        cfg = load_config(old, ["finetune.conv_lr_mult=0.1"])
    assert (cfg.finetune.e2e.freeze_blocks, cfg.finetune.e2e.joint_bbox, cfg.finetune.e2e.conv_lr_mult) == (14, True, 0.1)
    assert "'finetune.freeze_blocks' is now 'finetune.e2e.freeze_blocks'" in caplog.text
    assert "--set: 'finetune.conv_lr_mult' is now 'finetune.e2e.conv_lr_mult'" in caplog.text
    both = load_config(None, ["finetune.e2e.freeze_blocks=3", "finetune.freeze_blocks=5"])
    assert both.finetune.e2e.freeze_blocks == 3  # the new name wins


def test_the_removed_crop_pretraining_is_a_one_line_error():
    with pytest.raises(InputError, match="features.pretrained: .*removed.*tools/train_cls.py"):
        load_train_config(None, ["features.backbone=zf5", "features.pretrained=crops"])


def test_zf5_without_weights_to_start_from_is_a_one_line_error():
    """No ImageNet ZF-5 exists offline: training one needs tools/train_cls.py, and the error says so."""
    with pytest.raises(InputError, match="tools/train_cls.py"):
        load_train_config(None, ["features.backbone=zf5"])
    assert load_train_config(None, ["features.backbone=zf5", "features.pretrained=none"]).features.pretrained == "none"
    assert load_train_config(None, []).features.pretrained == "imagenet"  # MobileNetV2 keeps torchvision's
    assert load_config(None, ["features.backbone=zf5"]).features.backbone == "zf5"  # a saved config still loads


def test_fc_layers_from_scratch_get_the_recipe_that_learns(tmp_path):
    """Without pre-trained fc6 / fc7 train_det fine-tunes with FROM_SCRATCH_FC, not the paper's 300k steps;
    a config file or --set still wins, and tools/configs/paper.yaml gives back the paper's recipe."""
    cfg = load_train_config(None, [])
    assert (cfg.head.fc6, cfg.head.dropout, cfg.finetune.iterations, cfg.finetune.lr) == (512, 0.0, 1500, 0.01)
    assert load_train_config(None, ["finetune.iterations=20"]).finetune.iterations == 20
    paper = load_train_config(ROOT / "tools/configs/paper.yaml", [])
    assert config_to_dict(paper) == config_to_dict(DetectorConfig())
    classifier = tmp_path / "cls"  # a classifier work dir brings fc6 / fc7: the paper's recipe is theirs
    classifier.mkdir()
    (classifier / "classifier.pt").write_bytes(b"")
    (classifier / "config.yaml").write_text("{}\n")  # what makes a folder a classifier work dir (both files)
    with_fc = load_train_config(None, ["features.backbone=zf5", f"features.pretrained={classifier}"])
    assert (with_fc.head.fc6, with_fc.finetune.iterations) == (4096, 300_000)


@pytest.mark.parametrize("pairs, ok", [
    (["test.nms_iou=0.4", "head.int8=true", "head.svd_fc6=64"], True),
    (["proposals.resize_longer=500", "proposals.resize_longer=null"], True),  # a phone photo, any work dir
    (["proposals.max_proposals=100"], False),
    (["head.fc6=64"], False),
    (["features.scales=[480]"], False),
])
def test_only_test_time_keys_may_change_after_training(pairs, ok):
    if ok:
        check_test_time_overrides(pairs)
    else:
        with pytest.raises(InputError, match="only test-time settings"):
            check_test_time_overrides(pairs)


def test_fast_preset_is_test_time_levers_and_leaves_int8_out_on_a_gpu():
    check_test_time_overrides(list(FAST_PRESET))  # --fast can be applied to any trained work dir
    assert load_config(None, fast_overrides("cpu")) != DetectorConfig()  # it changes something
    assert fast_overrides("cpu") == list(FAST_PRESET)
    gpu = fast_overrides("cuda")
    assert all(not pair.startswith("head.int8") for pair in gpu)
    assert set(gpu) <= set(FAST_PRESET)


@pytest.mark.parametrize("text, problem", [
    # a typo: say which key, suggest the closest one at that level
    ("finetune:\n  iterashuns: 3\n", "unknown config key 'finetune.iterashuns' (did you mean 'finetune.iterations'?)"),
    ("featurs:\n  scales: [480]\n", "unknown config key 'featurs' (did you mean 'features'?)"),
    # nothing close: list what is valid there
    ("finetune:\n  zzz: 1\n", "unknown config key 'finetune.zzz' (valid keys under 'finetune': batch_size,"),
])
def test_unknown_key_in_a_file_says_which_and_suggests(tmp_path, text, problem):
    f = tmp_path / "typo.yaml"
    f.write_text(text)
    with pytest.raises(InputError) as err:
        load_config(f)
    assert str(err.value).startswith(f"{f}: ") and problem in str(err.value)


def test_config_file_with_bom_and_crlf_reads(tmp_path):
    f = tmp_path / "windows.yaml"
    f.write_bytes(b"\xef\xbb\xbffinetune:\r\n  iterations: 7\r\n")
    assert load_config(f).finetune.iterations == 7
    f.write_bytes(b"finetune:\n  iterations: \xff\n")  # Latin-1, not UTF-8
    with pytest.raises(InputError, match="windows.yaml: not UTF-8 text"):
        load_config(f)
