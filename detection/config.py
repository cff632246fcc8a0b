"""The detector's configuration: one frozen dataclass composing the configs of its stages.

Each stage's config lives beside the stage it configures and checks its own values; their
defaults are the papers' (each cites its source, or says why ours differs: mostly no ImageNet
ZF-5 offline, and a CPU). :class:`DetectorConfig` composes them, checks what spans stages, and
holds the policy that ties values together, so tools only build it (defaults, then a YAML file,
then ``--set key=value``, see ``detection.runtime.config_io``), save it in the work dir and pass plain
values down. Library code never reads a global config. :func:`load_config` reads one,
:func:`load_train_config` the one tools/train_det.py trains with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from data.errors import InputError, check_config
from detection.classification.workdir import is_classifier_workdir
from detection.features.config import FeatureConfig
from detection.inference.detect import DetectConfig
from detection.models.bbox_regression import BBoxRegConfig
from detection.models.head import HeadConfig
from detection.runtime.config_io import load_dataclass, merge
from detection.training.config import FinetuneConfig
from proposals.config import ProposalConfig
from svm.config import SVMConfig

METHODS = ("spp", "rcnn")
SVM_LAYERS = ("pool5", "fc6", "fc7")
MISSING_CLASS_POLICIES = ("error", "skip")  # data.class_counts.check_trainable
# What may change between training and testing (tools/test_det.py --set): the head's speed levers,
# the size selective search sees (a work dir trained at full size can test a phone photo at 500 px)
# and the read-out. Everything else decides the trained model.
TEST_TIME_KEYS = ("head.svd_fc6", "head.svd_fc7", "head.int8", "proposals.resize_longer", "test.")
# `--fast` (tools/test_det.py, demo.py, speed_report.py): every test-time speed lever that cost at
# most 0.5 mAP on the trained ZF-5 of the paper's shapes (fc6 = fc7 = 4096; CHANGELOG, history;
# voc07 default, 2026-11-26): int8 fc6 / fc7 cost 0.004 mAP (29.92 -> 29.91); Fast R-CNN's SVD at
# ranks 1024 / 256 cost 3.89, so it is not in. The default stays the paper's exact method.
FAST_PRESET = ("head.int8=true",)
CPU_ONLY_KEYS = ("head.int8",)  # dynamic int8 quantisation has no GPU kernels

# The fine-tuning recipe for fc6 / fc7 that start from random weights, which is every trunk but a
# classifier of tools/train_cls.py (MobileNetV2 brings ImageNet conv layers only; a trunk file or
# `none` no fc layers either). The papers' defaults (head.*, finetune.*) fine-tune PRE-TRAINED
# 4096-wide layers for 300k steps at lr 1e-4 with dropout 0.5; on layers that start from scratch
# they stay at the class prior for hundreds of steps and, with dropout 0.5, fit not even their
# training windows (embedded voc07 set, seed 0: mAP 1.3 after 1,500 steps, 17.3 after 5,000;
# without dropout, 512 wide, lr 0.01 for 1,500 steps: 22.6; CHANGELOG, 2026-11-26). train_det applies
# this recipe under the --config file and the --set pairs, so either still wins;
# tools/configs/paper.yaml restores the papers' recipe.
FROM_SCRATCH_FC = {"head": {"fc6": 512, "fc7": 512, "dropout": 0.0},
                   "finetune": {"iterations": 1500, "lr": 0.01, "lr_step": 1100}}
NAMED_SOURCES = ("imagenet", "none")  # features.pretrained values that are not paths
# Sections a work dir's config.yaml of an older version may still hold: dropped with a warning.
REMOVED_SECTIONS = {"pretrain": "ZF-5's pre-training on object crops was removed (2026-12-07): ZF-5 comes "
                                "from tools/train_cls.py"}
# Keys an older version wrote under another name: moved with a warning (a work dir's config.yaml,
# --set) and read under the new name from older run records (tools/reproduce.py).
RENAMED_KEYS = {f"finetune.{k}": f"finetune.e2e.{k}"  # grouped as FinetuneConfig.e2e, 2026-12-07
                for k in ("freeze_blocks", "images_per_batch", "conv_lr_mult", "joint_bbox", "bbox_loss_weight")}
# Keys added since run records were first written, with the value that behaves as before (none yet).
ADDED_KEYS: dict[str, object] = {}
CROPS_GONE = ("ZF-5's pre-training on object crops was removed (2026-12-07): train ZF-5 with tools/train_cls.py "
              "and pass --pretrained CLS_WORK_DIR")


@dataclass(frozen=True)
class TrunkSource:
    """``features.pretrained``, interpreted (:func:`trunk_source`): where the trunk starts from.

    ``kind``: "imagenet" (torchvision's weights), "none" (random), "classifier" (a work dir of
    tools/train_cls.py: its trunk AND its fc6 / fc7) or "file" (a trunk state_dict); ``path`` is the
    work dir or file for the last two.
    """

    kind: str
    path: Path | None = None

    @property
    def brings_fc_layers(self) -> bool:
        """Whether fc6 / fc7 start pre-trained (the papers' recipe) rather than from scratch."""
        return self.kind == "classifier"


def trunk_source(pretrained: str) -> TrunkSource:
    """The one place ``features.pretrained``'s string is read.

    Raises:
        InputError: ``crops``, the removed pre-training (a work dir trained with it, or the flag).
    """
    if pretrained == "crops":
        raise InputError("features.pretrained", CROPS_GONE)
    if pretrained in NAMED_SOURCES:
        return TrunkSource(pretrained)
    path = Path(pretrained)
    return TrunkSource("classifier" if is_classifier_workdir(path) else "file", path)


def check_trunk_source(cfg: DetectorConfig) -> None:
    """Refuse a trunk without weights to start from (ZF-5 has no ImageNet weights offline).

    Raises:
        InputError: naming tools/train_cls.py, which trains the ZF-5 the detector starts from.
    """
    if cfg.features.backbone == "zf5" and trunk_source(cfg.features.pretrained).kind == "imagenet":
        raise InputError("--pretrained", "ZF-5 has no ImageNet weights here: train one with tools/train_cls.py and "
                         "pass --pretrained CLS_WORK_DIR (or a trunk weights file, or none for random conv layers)")


def fast_overrides(device_type: str) -> list[str]:
    """The ``--fast`` preset as ``--set`` pairs for a ``device_type`` ("cpu", "cuda"): without the
    CPU-only levers on a GPU."""
    return [pair for pair in FAST_PRESET
            if device_type == "cpu" or pair.split("=", 1)[0] not in CPU_ONLY_KEYS]


@dataclass(frozen=True)
class DetectorConfig:
    """Everything that decides a trained detector and its detections."""

    method: str = "spp"  # "spp" or "rcnn": the only part they do not share is the extractor
    svm_layer: str = "fc7"  # SPP-net table 9 ablations: pool5, fc6, fc7 (ft or not)
    seed: int = 0  # every random draw of training (windows, mini-batches, dropout, fc init, SVM order)
    # A class with no training object: "error" stops the run before any work (the papers' data
    # has every class); "skip" trains the others and reports its AP as not available.
    missing_classes: str = "error"
    proposals: ProposalConfig = field(default_factory=ProposalConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    svm: SVMConfig = field(default_factory=SVMConfig)
    bbox: BBoxRegConfig = field(default_factory=BBoxRegConfig)
    test: DetectConfig = field(default_factory=DetectConfig)

    def __post_init__(self) -> None:
        check_config([
            (self.method in METHODS, f"method must be one of {METHODS}"),
            (self.svm_layer in SVM_LAYERS, f"svm_layer must be one of {SVM_LAYERS}"),
            (self.missing_classes in MISSING_CLASS_POLICIES, f"missing_classes must be one of {MISSING_CLASS_POLICIES}"),
        ])


def check_test_time_overrides(pairs: list[str]) -> None:
    """Refuse ``KEY=VALUE`` overrides of anything but :data:`TEST_TIME_KEYS` after training.

    Raises:
        InputError: naming the first override that would change the trained model.
    """
    for pair in pairs:
        key = pair.split("=", 1)[0].strip()
        if not any(key == k or (k.endswith(".") and key.startswith(k)) for k in TEST_TIME_KEYS):
            raise InputError(f"--set {pair}", "only test-time settings can change after training: "
                             + ", ".join(TEST_TIME_KEYS))


def load_config(path: Path | None = None, overrides: list[str] | None = None) -> DetectorConfig:
    """The papers' defaults, then the YAML file, then ``--set`` overrides (see ``detection.runtime.config_io``)."""
    return load_dataclass(DetectorConfig(), path, overrides, REMOVED_SECTIONS, RENAMED_KEYS)


def load_train_config(path: Path | None = None, overrides: list[str] | None = None) -> DetectorConfig:
    """The config tools/train_det.py trains with: the papers' defaults, then the fine-tuning recipe
    for what the trunk brings (:data:`FROM_SCRATCH_FC` unless fc6 / fc7 come pre-trained from a
    classifier), then the YAML file, then ``--set`` overrides.

    Raises:
        InputError: a bad file or override, or a trunk without weights to start from.
    """
    cfg = load_config(path, overrides)
    if not trunk_source(cfg.features.pretrained).brings_fc_layers:
        base = merge(DetectorConfig(), FROM_SCRATCH_FC, "detection.config.FROM_SCRATCH_FC")
        cfg = load_dataclass(base, path, overrides, REMOVED_SECTIONS, RENAMED_KEYS)
    check_trunk_source(cfg)
    return cfg
