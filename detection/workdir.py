"""A work dir: its layout, building the network and extractor its config describes, and opening it.

A work dir holds one trained detector::

    config.yaml        the resolved config (defaults + file + --set)
    meta.json          classes, data root, cache dir, the trunk file trained from (path, SHA-1), stages done
    head.pt            fc6/fc7/fc8 weights (fine-tuned, or the random init when not fine-tuned)
    trunk.pt           the conv trunk's weights after end-to-end fine-tuning (finetune.mode=e2e only)
    finetune_ckpt.pt   fine-tuning checkpoint (resume)
    svms.npz           per-class SVMs
    bbox_samples.npz   proposals near a ground truth, their boxes and matches (bbox-regression data)
    bbox_samples_x.npy their pool5 rows, float16 (written as the svm stage goes; read back on demand)
    bbox.npz           per-class box regressors
    train.log          the log of every run
    cache/             per-image caches (proposals, conv5 maps, pre-trained ZF-5 ...); --cache-dir
                       puts them elsewhere, e.g. one folder shared by several work dirs
    detections/        per-image test detections (cached per image, keyed by model and config)
    results/           devkit result files and scores of tools/test_det.py

:func:`open_detector` is the one way to open a trained work dir (test_det, demo, speed_report).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from data.cache import atomic_write_text, file_digest
from data.errors import InputError
from data.model_files import load_module_state
from detection.classification.workdir import ClassifierWorkDir, load_fc67, trunk_part
from detection.config import DetectorConfig, check_test_time_overrides, load_config, trunk_source
from detection.features.conv5 import Conv5Cache
from detection.features.rcnn_cache import CachedRCNNSource
from detection.features.rcnn_source import RCNNSource
from detection.features.spp_source import Pool5Source, SPPSource
from detection.inference.detect import TrainedModel
from detection.models.backbones import TrunkInfo, build_trunk
from detection.models.bbox_regression import BBoxRegressors
from detection.models.head import FcHead, apply_test_levers
from detection.models.spp import pooled_length
from svm.model import LinearSVMs

log = logging.getLogger(__name__)

# Bump when the code changes what training produces from the same data and config; meta.json
# records it. A work dir of another version is trained again by train_det --resume (caches keyed by
# content, like proposals and conv5 maps, are reused) and refused by open_detector.
# 2: windows project onto the conv5 cells whose receptive-field centres lie inside them.
TRAINING_VERSION = 2


@dataclass(frozen=True)
class WorkDir:
    """Paths of a work dir. ``cache_root`` (default ``root/cache``) may be shared by work dirs:
    every cache under it is keyed by what produced it."""

    root: Path
    cache_root: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "cache_root", Path(self.cache_root) if self.cache_root else self.root / "cache")

    config = property(lambda self: self.root / "config.yaml")
    meta = property(lambda self: self.root / "meta.json")
    head = property(lambda self: self.root / "head.pt")
    trunk = property(lambda self: self.root / "trunk.pt")
    finetune_ckpt = property(lambda self: self.root / "finetune_ckpt.pt")
    svms = property(lambda self: self.root / "svms.npz")
    bbox_samples = property(lambda self: self.root / "bbox_samples.npz")
    bbox_samples_x = property(lambda self: self.root / "bbox_samples_x.npy")  # their pool5 rows
    bbox = property(lambda self: self.root / "bbox.npz")
    log_file = property(lambda self: self.root / "train.log")
    stages = property(lambda self: self.root / "stages.json")  # each train_det run's stage table, appended
    cache = property(lambda self: self.cache_root)

    @classmethod
    def open(cls, root: Path, cache_dir: Path | None = None) -> WorkDir:
        """An existing work dir, with the cache folder it was trained with (``meta.json``) unless
        ``cache_dir`` names another."""
        return cls(root, cache_dir or cls(root).read_meta().get("cache_dir"))

    def read_meta(self) -> dict:
        if not self.meta.is_file():
            return {}
        try:
            return json.loads(self.meta.read_text())
        except json.JSONDecodeError:
            raise InputError(self.meta, "corrupt meta.json; delete the work dir and train again") from None

    def write_meta(self, meta: dict) -> None:
        atomic_write_text(self.meta, json.dumps(meta, indent=2))

    def load_config(self, overrides: list[str] | None = None) -> DetectorConfig:
        """The config the work dir was trained with, with optional ``key=value`` overrides."""
        if not self.config.is_file():
            raise InputError(self.root, "not a trained work dir (no config.yaml); run tools/train_det.py first")
        return load_config(self.config, overrides)

    def classes(self) -> tuple[str, ...]:
        """The class names the detector was trained on (ids 0..K-1)."""
        classes = tuple(self.read_meta().get("classes", ()))
        if not classes:
            raise InputError(self.meta, "no class names; finish training with tools/train_det.py --resume")
        return classes

    def untrained_classes(self) -> tuple[str, ...]:
        """The classes trained without any object (``missing_classes=skip``): never detected, no AP."""
        return tuple(self.read_meta().get("untrained_classes", ()))


def trunk_weights_file(cfg: DetectorConfig, recorded: dict | None = None) -> Path | None:
    """The file the trunk's weights come from; None for torchvision's ImageNet weights or a random init.

    ``features.pretrained``: "imagenet", "none", a classifier work dir of tools/train_cls.py (its
    ``classifier.pt``: the trunk here, fc6 / fc7 through :func:`classifier_file`) or a path to a
    checkpoint of the trunk's state_dict. A trained work dir records the file it used and its SHA-1
    in meta.json (``recorded``): a file whose bytes changed since is refused.

    Raises:
        InputError: the file is missing, or is not the one the work dir was trained with.
    """
    source = trunk_source(cfg.features.pretrained)
    if source.kind in ("imagenet", "none"):
        return None
    path = ClassifierWorkDir(source.path).model if source.kind == "classifier" else source.path
    if not path.is_file():
        raise InputError(path, "trunk checkpoint not found (features.pretrained)")
    if recorded and file_digest(path) != recorded["sha1"]:
        raise InputError(path, f"not the trunk this work dir was trained with (SHA-1 {recorded['sha1']}); "
                               "restore that file or train again")
    return path


def build_network(cfg: DetectorConfig, device: torch.device,
                  weights: Path | None = None) -> tuple[torch.nn.Module, TrunkInfo]:
    """The trunk the config asks for, with its weights, in eval mode on ``device``.

    Args:
        weights: the trunk's state_dict file (:func:`trunk_weights_file`); None: torchvision's
            ImageNet weights when ``features.pretrained`` is "imagenet", else a random init.
    """
    fc = cfg.features
    trunk, info = build_trunk(fc.backbone, pretrained=trunk_source(fc.pretrained).kind == "imagenet")
    if weights is not None:
        load_module_state(trunk, weights, f"{fc.backbone} trunk state_dict (features.pretrained)", part=trunk_part)
    trunk = trunk.to(device).to(memory_format=torch.channels_last).eval()
    for p in trunk.parameters():
        p.requires_grad_(False)
    return trunk, info


def trains_trunk(cfg: DetectorConfig) -> bool:
    """Whether fine-tuning changes the trunk (``finetune.mode=e2e``): its weights are then ``trunk.pt``."""
    return cfg.finetune.enabled and cfg.finetune.mode == "e2e"


def load_finetuned_trunk(cfg: DetectorConfig, work: WorkDir, trunk: torch.nn.Module, device: torch.device) -> None:
    """Put the end-to-end fine-tuned weights (``trunk.pt``) into ``trunk`` when the config trained it."""
    if trains_trunk(cfg):
        load_module_state(trunk, work.trunk, "end-to-end fine-tuned trunk", device)


def make_source(cfg: DetectorConfig, trunk: torch.nn.Module, info: TrunkInfo, work: WorkDir,
                device: torch.device, cache_conv5: bool) -> Pool5Source:
    """SPP-net's or R-CNN's pool5 extractor for ``cfg.method``."""
    fc = cfg.features
    if cfg.method == "rcnn":
        rcnn = RCNNSource(trunk, info, fc.levels, fc.context_padding, fc.rcnn_batch_size, device)
        return CachedRCNNSource(rcnn, work.cache / "rcnn_pool5", fc.cache_dtype) if fc.rcnn_cache else rcnn
    cache = Conv5Cache(work.cache / "conv5", trunk, fc.scales, device, fc.cache_dtype) if cache_conv5 else None
    return SPPSource(trunk, info, fc.scales, fc.levels, device, cache, fc.share_identical_windows)


def classifier_file(cfg: DetectorConfig, weights: Path | None) -> Path | None:
    """``weights`` when they are a classifier's (``features.pretrained`` names a classifier work
    dir), whose fc6 / fc7 then start the detector's head; else None."""
    return weights if weights is not None and trunk_source(cfg.features.pretrained).kind == "classifier" else None


def new_head(cfg: DetectorConfig, info: TrunkInfo, num_classes: int, pretrained_fc: Path | None = None) -> FcHead:
    """A seeded new head; fc6 / fc7 come from the classifier file ``pretrained_fc`` when given
    (SPP-net's fc layers are pre-trained with the network, sec. 4.1), fc8 is always new."""
    torch.manual_seed(cfg.seed)
    d = pooled_length(info.channels, cfg.features.levels)
    head = FcHead(d, cfg.head.fc6, cfg.head.fc7, num_classes, cfg.head.dropout, cfg.finetune.e2e.joint_bbox)
    if pretrained_fc is not None:
        load_fc67(head, pretrained_fc)
    return head


def load_model(cfg: DetectorConfig, work: WorkDir, info: TrunkInfo, classes: Sequence[str],
               device: torch.device) -> TrainedModel:
    """The trained head (with the config's test-time levers), SVMs and box regressors of a work dir."""
    for path in (work.head, work.svms):
        if not path.is_file():
            raise InputError(path, "missing; finish training with tools/train_det.py --resume")
    head = new_head(cfg, info, len(classes))
    load_module_state(head, work.head, "fine-tuned head")
    head = apply_test_levers(head, cfg.head.svd_fc6, cfg.head.svd_fc7, cfg.head.int8, device)
    if cfg.test.bbox == "joint" and not cfg.finetune.e2e.joint_bbox:
        raise InputError("test.bbox=joint", "this detector was trained without finetune.e2e.joint_bbox; use test.bbox=ridge")
    bbox = BBoxRegressors.load(work.bbox) if cfg.test.bbox_reg and work.bbox.is_file() else None
    untrained = work.untrained_classes()
    ids = tuple(classes.index(c) for c in untrained if c in classes)
    return TrainedModel(head, cfg.svm_layer, LinearSVMs.load(work.svms), bbox, ids)


@dataclass(frozen=True)
class Detector:
    """A trained work dir, opened for test time: its config, classes, network and trained model."""

    work: WorkDir
    cfg: DetectorConfig  # as trained, with any test-time overrides applied
    classes: tuple[str, ...]
    trunk: torch.nn.Module  # eval mode, no gradients
    info: TrunkInfo
    source: Pool5Source  # the method's extractor; conv5 is computed, not cached, at test time
    model: TrainedModel


def open_detector(root: Path, device: torch.device, overrides: list[str] | None = None,
                  cache_dir: Path | None = None) -> Detector:
    """Open the work dir at ``root``: meta -> cache dir -> config -> trunk -> model -> extractor.

    Args:
        root: a work dir trained by tools/train_det.py.
        device: where the network runs.
        overrides: ``key=value`` test-time settings (``detection.config.TEST_TIME_KEYS``).
        cache_dir: the per-image caches, when not the one the work dir was trained with.
    Raises:
        InputError: not a trained work dir, a missing or unreadable model file, or an override of
            a setting that decides the trained model.
    """
    check_test_time_overrides(list(overrides or ()))
    work = WorkDir.open(root, cache_dir)
    cfg = work.load_config(overrides)
    meta = work.read_meta()
    version = meta.get("training_version", 1)
    if version != TRAINING_VERSION:
        raise InputError(work.meta, f"trained by version {version} of the training code, this is version "
                                    f"{TRAINING_VERSION}; train it again: tools/train_det.py ... --resume")
    classes = work.classes()
    weights = trunk_weights_file(cfg, meta.get("trunk_file"))
    trunk, info = build_network(cfg, device, weights)
    load_finetuned_trunk(cfg, work, trunk, device)
    model = load_model(cfg, work, info, classes, device)
    source = make_source(cfg, trunk, info, work, device, cache_conv5=False)
    return Detector(work, cfg, classes, trunk, info, source, model)
