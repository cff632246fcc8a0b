"""A classifier's work dir: its layout, saving the trained network, and opening it again.

    config.yaml      the resolved ClassifierConfig (defaults + file + --set)
    meta.json        classes, the data it was trained on, the image side
    checkpoint.pt    after every epoch: model, optimiser, scheduler, RNG states, history (--resume)
    classifier.pt    the trained network's state_dict (trunk.*, head.fc6/fc7/fc8.*); a ZF-5 trained
                     with batch norm is saved with it folded into the convs (ZF-5 as released)
    history.json     per-epoch losses and held-out accuracy; curves.png draws them
    eval.json        held-out errors per view (what --json writes too)
    train.log        the log of every run
    cache/           the embedded set's images (--cache-dir puts them elsewhere)

:func:`load_classifier` is the one way to open it; the detector takes its trunk and fc6 / fc7
from here (``tools/train_det.py --pretrained CLS_WORK_DIR``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from data.cache import atomic_write, atomic_write_text
from data.errors import InputError
from data.model_files import load_module_state, load_torch_file
from detection.classification.config import ClassifierConfig
from detection.classification.network import SPPClassifier
from detection.runtime.config_io import load_dataclass


@dataclass(frozen=True)
class ClassifierWorkDir:
    """Paths of a classifier work dir (``cache_root`` defaults to ``root/cache``)."""

    root: Path
    cache_root: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "cache_root", Path(self.cache_root) if self.cache_root else self.root / "cache")

    config = property(lambda self: self.root / "config.yaml")
    meta = property(lambda self: self.root / "meta.json")
    checkpoint = property(lambda self: self.root / "checkpoint.pt")
    model = property(lambda self: self.root / "classifier.pt")
    history = property(lambda self: self.root / "history.json")
    curves = property(lambda self: self.root / "curves.png")
    eval = property(lambda self: self.root / "eval.json")
    log_file = property(lambda self: self.root / "train.log")

    def write_json(self, path: Path, data: dict | list) -> None:
        atomic_write_text(path, json.dumps(data, indent=2))

    def read_meta(self) -> dict:
        try:
            return json.loads(self.meta.read_text())
        except (OSError, json.JSONDecodeError):
            raise InputError(self.meta, "missing or corrupt; train again with tools/train_cls.py") from None

    def save_model(self, model: SPPClassifier) -> None:
        """classifier.pt: batch norm folded (:meth:`SPPClassifier.plain_state_dict`)."""
        atomic_write(self.model, lambda f: torch.save(model.plain_state_dict(), f))


def is_classifier_workdir(path: Path) -> bool:
    """True when ``path`` is a folder holding a trained classifier (config.yaml and classifier.pt)."""
    work = ClassifierWorkDir(path)
    return work.root.is_dir() and work.config.is_file() and work.model.is_file()


def trunk_part(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The trunk's entries of a classifier's state_dict (``trunk.*``, prefix dropped); a plain trunk
    state_dict (no ``trunk.`` keys) is returned unchanged."""
    if not any(k.startswith("trunk.") for k in state):
        return state
    return {k[len("trunk."):]: v for k, v in state.items() if k.startswith("trunk.")}


def load_fc67(head: torch.nn.Module, classifier_file: Path) -> None:
    """Copy a classifier's fc6 / fc7 into a detector's ``FcHead`` (fc8 keeps its own init).

    Raises:
        InputError: the shapes differ (the detector's head.fc6 / head.fc7 or pyramid must match).
    """
    state = load_torch_file(classifier_file, "classifier")
    for layer in ("fc6", "fc7"):
        mine, theirs = getattr(head, layer).weight, state[f"head.{layer}.weight"]
        if mine.shape != theirs.shape:
            raise InputError(classifier_file, f"the classifier's {layer} is {tuple(theirs.shape)} (out, in) but the "
                             f"detector's is {tuple(mine.shape)}: set head.fc6 / head.fc7 (and features.levels) "
                             "to the classifier's model.fc6 / model.fc7 (and model.levels)")
    with torch.no_grad():
        for layer in ("fc6", "fc7"):
            getattr(head, layer).weight.copy_(state[f"head.{layer}.weight"])
            getattr(head, layer).bias.copy_(state[f"head.{layer}.bias"])


def load_classifier(root: Path, device: torch.device | str = "cpu") -> tuple[SPPClassifier, ClassifierConfig, tuple[str, ...]]:
    """Open a trained classifier: (network in eval mode on ``device``, its config, its class names).

    Raises:
        InputError: not a classifier work dir, or an unreadable / mismatched classifier.pt.
    """
    work = ClassifierWorkDir(root)
    if not is_classifier_workdir(work.root):
        raise InputError(work.root, "not a trained classifier work dir (needs config.yaml and classifier.pt; "
                         "run tools/train_cls.py)")
    cfg = load_dataclass(ClassifierConfig(), work.config)
    classes = tuple(work.read_meta()["classes"])
    model = SPPClassifier(replace(cfg.model, batch_norm=False), len(classes), cfg.train.crop)  # BN folded
    load_module_state(model, work.model, "classifier")
    return model.to(device).eval(), cfg, classes
