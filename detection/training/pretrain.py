"""Pre-training ZF-5 as a crop classifier, since no ImageNet ZF-5 exists offline.

SPP-net (sec. 3) trains its nets as image classifiers with the pyramid pooling layer on top of
conv5. We do the same on what the training split offers: object crops. The classifier is

    crop (3, S, S) -> ZF-5 trunk -> conv5 (256, S/16, S/16) -> pyramid pooling over the whole map
    -> fc (hidden) -> ReLU -> dropout -> fc (K + 1 logits: background first, see detection.models.head)

trained with AdamW for a few epochs on ground-truth crops (jittered, flipped) and background crops
(random windows with IoU < 0.3 to every ground truth, R-CNN's negative threshold). Only the trunk's
state_dict is kept; the detector's own head is trained later on pooled windows as usual.

Crops are warped to a fixed S x S (default 64 px, conv5 4 x 4) so they batch: on a 2-core CPU the
whole pre-training of the 200-image synthetic set must take a few minutes; 112 px costs ~2x. 10% of the images are held out and the crop accuracy on them is
logged, next to the majority-class rate, so a user sees that the trunk learned something.

Cache: CACHE_DIR/zf5_pretrain/<key>.pt (trunk state_dict) and <key>.json (accuracy, timing), the key
hashing the dataset (root, split, ids, annotations), the seed, the config and VERSION; ``latest.txt``
names the last one trained or reused, which :func:`pretrained_trunk_path` returns. All writes are
atomic; an unreadable checkpoint is reported once and retrained, never used. Runs sharing the cache
claim the checkpoint before training it (``data.claims``): a second run waits for the first one's
trunk instead of training the same one again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import pickle
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from data.boxes import as_tensor, box_iou, clip_boxes
from data.cache import atomic_write, atomic_write_text, params_key, report_corrupt
from data.claims import claim
from data.errors import InputError, check_config
from data.images import read_image
from data.records import Dataset, ImageRecord
from detection.models.backbones import normalise, zf5_trunk
from detection.models.head import BACKGROUND
from detection.models.spp import SPP_LEVELS, pooled_length, pyramid_pool_whole

log = logging.getLogger(__name__)

VERSION = 3  # bump when the pre-training code changes what it produces (2: Kaiming init, AdamW,
# cosine; 3: ZF-5 as in the released SPP_net prototxt, within-channel LRN)
FOLDER = "zf5_pretrain"
POINTER = "latest.txt"


@dataclass(frozen=True)
class PretrainConfig:
    """How ZF-5 is pre-trained on crops (our substitute for SPP-net's ImageNet training, sec. 3)."""

    crop_size: int = 64  # warped crop side S; conv5 is S/16 = 4 cells (CPU budget, see module doc)
    levels: tuple[int, ...] = SPP_LEVELS  # SPP-net sec. 3.1: the 4-level {6, 3, 2, 1} pyramid, 50 bins
    hidden: int = 256  # one small fc layer instead of fc6/fc7's 4096 (few crops, CPU)
    dropout: float = 0.5  # as ZF-5's fc layers
    epochs: int = 4  # a few passes; held-out crop accuracy is logged after each
    batch_size: int = 32  # small batches: more steps for the same CPU time
    lr: float = 3e-4  # AdamW start, cosine-decayed per epoch (a usual value for a from-scratch net without BN)
    weight_decay: float = 5e-4  # ZF-5 / Caffe's weight decay (decoupled, AdamW)
    bg_per_object: float = 0.5  # background crops per ground-truth crop (at least one per image)
    bg_max_iou: float = 0.3  # R-CNN / SPP-net negatives: IoU < 0.3 with every ground truth
    jitter: float = 0.1  # shift / log-scale jitter of a crop, in units of its width / height
    flip: bool = True  # random horizontal flips (SPP-net sec. 3.1 augmentation)
    held_out_fraction: float = 0.1  # images kept out of training to measure crop accuracy
    max_crops_per_epoch: int | None = None  # cap (tests); None = every crop

    def __post_init__(self) -> None:
        checks = [
            (self.crop_size >= 16, "pretrain.crop_size must be >= 16 (one conv5 cell)"),
            (self.hidden >= 1 and self.epochs >= 1 and self.batch_size >= 1,
             "pretrain.hidden, pretrain.epochs and pretrain.batch_size must be >= 1"),
            (0.0 <= self.dropout < 1.0, "pretrain.dropout must be in [0, 1)"),
            (self.lr > 0, "pretrain.lr must be > 0"),
            (0.0 <= self.held_out_fraction < 1.0, "pretrain.held_out_fraction must be in [0, 1)"),
        ]
        check_config(checks)


# ----------------------------------------------------------------------------- crops


def _jitter(boxes: np.ndarray, size: tuple[int, int], amount: float, rng: np.random.Generator) -> np.ndarray:
    """(G, 4) boxes shifted by up to ``amount`` of their size and rescaled by up to exp(+-amount)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    u = rng.uniform(-amount, amount, size=(len(boxes), 4))
    cx, cy = boxes[:, 0] + w / 2 + u[:, 0] * w, boxes[:, 1] + h / 2 + u[:, 1] * h
    w, h = w * np.exp(u[:, 2]), h * np.exp(u[:, 3])
    out = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    return clip_boxes(as_tensor(out), size).numpy()


def _background(record: ImageRecord, n: int, max_iou: float, rng: np.random.Generator) -> np.ndarray:
    """Up to ``n`` random (n', 4) windows whose IoU with every ground truth is below ``max_iou``."""
    h, w = record.size
    cand = 20 * n  # most random windows of an image are background; 20x is plenty
    bw = rng.uniform(0.1, 0.6, cand) * w
    bh = rng.uniform(0.1, 0.6, cand) * h
    x1, y1 = rng.uniform(0, 1, cand) * (w - bw), rng.uniform(0, 1, cand) * (h - bh)
    boxes = np.stack([x1, y1, x1 + bw, y1 + bh], 1).astype(np.float32)
    if record.num_objects:
        ok = box_iou(as_tensor(boxes), as_tensor(record.boxes)).amax(1).numpy() < max_iou
        boxes = boxes[ok]
    return boxes[:n]


def sample_windows(record: ImageRecord, cfg: PretrainConfig, rng: np.random.Generator,
                   augment: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop windows of one image.

    Returns:
        boxes (M, 4) float32, labels (M,) int64 (object k -> k + 1, background 0), flips (M,) bool.
        Difficult objects are not used as positives (they still block background windows).
    """
    keep = ~record.difficult
    gt, labels = record.boxes[keep].astype(np.float32), record.labels[keep] + 1
    if augment and cfg.jitter > 0 and len(gt):
        gt = _jitter(gt, record.size, cfg.jitter, rng)
    bg = _background(record, max(1, int(round(cfg.bg_per_object * len(gt)))), cfg.bg_max_iou, rng)
    boxes = np.concatenate([gt, bg]).astype(np.float32)
    labels = np.concatenate([labels, np.full(len(bg), BACKGROUND)]).astype(np.int64)
    flips = rng.random(len(boxes)) < 0.5 if augment and cfg.flip else np.zeros(len(boxes), bool)
    return boxes, labels, flips


def cut_crops(image: np.ndarray, boxes: np.ndarray, flips: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 image, (M, 4) boxes -> (M, 3, size, size) uint8 warped crops."""
    h, w = image.shape[:2]
    out = np.empty((len(boxes), 3, size, size), np.uint8)
    for i, (box, flip) in enumerate(zip(boxes, flips)):
        x1, y1 = min(int(np.floor(box[0])), w - 1), min(int(np.floor(box[1])), h - 1)
        x2, y2 = max(int(np.ceil(box[2])), x1 + 1), max(int(np.ceil(box[3])), y1 + 1)
        crop = cv2.resize(image[y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_LINEAR)
        out[i] = (crop[:, ::-1] if flip else crop).transpose(2, 0, 1)
    return out


def make_crops(records: list[ImageRecord], cfg: PretrainConfig, rng: np.random.Generator, augment: bool,
               progress: bool, desc: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops of ``records``: (M, 3, S, S) uint8 and (M,) int64 labels, in record order."""
    crops, labels = [], []
    for record in tqdm(records, desc=desc, disable=not progress, leave=False):
        boxes, lab, flips = sample_windows(record, cfg, rng, augment)
        crops.append(cut_crops(read_image(record.path), boxes, flips, cfg.crop_size))
        labels.append(lab)
    return torch.from_numpy(np.concatenate(crops)), torch.from_numpy(np.concatenate(labels))


# ----------------------------------------------------------------------------- network


class CropClassifier(nn.Module):
    """ZF-5 trunk + whole-map pyramid pooling + fc -> (N, K + 1) logits."""

    def __init__(self, num_classes: int, cfg: PretrainConfig) -> None:
        super().__init__()
        self.trunk = zf5_trunk()  # Kaiming-initialised: see detection.models.backbones.init_zf5_
        self.levels = tuple(cfg.levels)
        self.fc = nn.Linear(pooled_length(256, self.levels), cfg.hidden)
        self.out = nn.Linear(cfg.hidden, num_classes + 1)
        self.drop = nn.Dropout(cfg.dropout)
        # The hidden fc keeps the pooled features' scale (Kaiming, as the trunk); the logits start
        # near zero (std 0.01, Caffe's classifier init) so the first steps see a uniform softmax.
        nn.init.kaiming_normal_(self.fc.weight, nonlinearity="relu")
        nn.init.normal_(self.out.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)
        nn.init.zeros_(self.out.bias)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) uint8 RGB crops -> (N, K + 1) logits."""
        x = pyramid_pool_whole(self.trunk(normalise(crops)), self.levels)
        return self.out(self.drop(torch.relu(self.fc(x))))


@torch.no_grad()
def accuracy(model: CropClassifier, crops: torch.Tensor, labels: torch.Tensor, device: torch.device,
             batch_size: int = 128) -> float:
    """Fraction of (M, 3, S, S) crops whose arg-max class is the label (model left in eval mode)."""
    model.eval()
    pred = torch.cat([model(crops[i : i + batch_size].to(device)).argmax(1).cpu()
                      for i in range(0, len(crops), batch_size)])
    return float((pred == labels).float().mean()) if len(labels) else float("nan")


# ----------------------------------------------------------------------------- training


def _split(records: tuple[ImageRecord, ...], fraction: float, seed: int) -> tuple[list, list]:
    """Deterministic (train, held-out) split of the images; held-out has at least one if possible."""
    order = np.random.default_rng(seed).permutation(len(records))
    n = len(records)
    n_held = min(n - 1, max(1, int(round(fraction * n)))) if fraction > 0 and n > 1 else 0
    held = set(order[:n_held].tolist())
    return ([r for i, r in enumerate(records) if i not in held], [r for i, r in enumerate(records) if i in held])


def train_crop_classifier(dataset: Dataset, seed: int, device: torch.device, cfg: PretrainConfig,
                          progress: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
    """Train the crop classifier; returns the trunk's CPU state_dict and a summary (accuracy, time)."""
    start = time.time()
    rng = np.random.default_rng(seed)
    train, held = _split(dataset.records, cfg.held_out_fraction, seed)
    held_crops, held_labels = make_crops(held, cfg, np.random.default_rng(seed + 1), False, progress, "held-out crops")
    with torch.random.fork_rng(devices=[]):  # init and dropout seeded without touching the caller's RNG
        torch.manual_seed(seed)
        model = CropClassifier(dataset.num_classes, cfg).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        shuffle = torch.Generator().manual_seed(seed)
        acc = float("nan")
        for epoch in range(cfg.epochs):
            for group in opt.param_groups:  # cosine decay, one value per epoch
                group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * epoch / cfg.epochs))
            crops, labels = make_crops(train, cfg, rng, True, progress, f"crops epoch {epoch + 1}")
            order = torch.randperm(len(labels), generator=shuffle)[: cfg.max_crops_per_epoch]
            model.train()
            total = 0.0
            bar = tqdm(range(0, len(order), cfg.batch_size), desc=f"pre-train zf5 {epoch + 1}/{cfg.epochs}",
                       disable=not progress, leave=False)
            for i in bar:
                idx = order[i : i + cfg.batch_size]
                loss = F.cross_entropy(model(crops[idx].to(device)), labels[idx].to(device))
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
                bar.set_postfix(loss=f"{loss.item():.3f}")
            acc = accuracy(model, held_crops, held_labels, device)
            log.info("zf5 pre-training epoch %d/%d: %d crops, mean training loss %.3f, held-out crop accuracy %.1f%%",
                     epoch + 1, cfg.epochs, len(order), total / max(1, len(order)), 100 * acc)
    majority = float(torch.bincount(held_labels).max() / len(held_labels)) if len(held_labels) else float("nan")
    summary = {"held_out_accuracy": acc, "held_out_majority": majority, "held_out_crops": len(held_labels),
               "train_images": len(train), "seconds": round(time.time() - start, 1)}
    log.info("zf5 pre-trained in %.0f s: held-out crop accuracy %.1f%% on %d crops (majority class %.1f%%)",
             summary["seconds"], 100 * acc, len(held_labels), 100 * majority)
    return {k: v.detach().cpu().clone() for k, v in model.trunk.state_dict().items()}, summary


# ----------------------------------------------------------------------------- cache


def pretrain_key(dataset: Dataset, seed: int, cfg: PretrainConfig) -> str:
    """Hash of everything that decides the pre-trained trunk."""
    ann = hashlib.sha1()
    for r in dataset.records:
        for arr in (r.boxes.astype(np.float32), r.labels.astype(np.int64), r.difficult.astype(bool)):
            ann.update(np.ascontiguousarray(arr).tobytes())
    return params_key({"root": str(Path(dataset.root).resolve()), "split": dataset.split,
                       "ids": [r.image_id for r in dataset.records], "annotations": ann.hexdigest(),
                       "classes": list(dataset.classes), "seed": seed, "config": asdict(cfg), "version": VERSION})


def load_trunk_state(path: Path) -> dict[str, torch.Tensor] | None:
    """The trunk state_dict at ``path`` if it loads into ``zf5_trunk()``, else None."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
        zf5_trunk().load_state_dict(state)
        return state
    except (RuntimeError, KeyError, OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError) as err:
        report_corrupt(path, f"not a ZF-5 trunk state_dict: {type(err).__name__}: {str(err).splitlines()[0]}")
        return None


def ensure_pretrained_zf5(dataset: Dataset, cache_dir: Path, seed: int, device: torch.device,
                          progress: bool = True, cfg: PretrainConfig = PretrainConfig()) -> Path:
    """Pre-train ZF-5 on ``dataset``'s crops unless a valid cached trunk exists; return its path.

    Also points ``cache_dir/zf5_pretrain/latest.txt`` at it, for :func:`pretrained_trunk_path`.
    """
    folder = Path(cache_dir) / FOLDER
    key = pretrain_key(dataset, seed, cfg)
    path = folder / f"{key}.pt"
    if load_trunk_state(path) is not None:
        log.info("reusing pre-trained ZF-5 %s", path)
    else:
        with claim(path, "pre-trained ZF-5"):
            _train_claimed(dataset, path, key, seed, device, progress, cfg)
    atomic_write_text(folder / POINTER, path.name)
    return path


def _train_claimed(dataset: Dataset, path: Path, key: str, seed: int, device: torch.device, progress: bool,
                   cfg: PretrainConfig) -> None:
    """With ``path`` claimed: train and store the trunk, unless another run has just stored it."""
    if load_trunk_state(path) is not None:
        log.info("reusing pre-trained ZF-5 %s (trained by another run meanwhile)", path)
    else:
        log.info("pre-training ZF-5 on object crops of %s/%s (%d images); cached as %s",
                 dataset.root, dataset.split, len(dataset.records), path)
        state, summary = train_crop_classifier(dataset, seed, device, cfg, progress)
        atomic_write(path, lambda f: torch.save(state, f))
        info = {**summary, "config": asdict(cfg), "seed": seed}
        atomic_write_text(path.with_name(f"{key}.json"), json.dumps(info, indent=2))


def pretrained_trunk_path(cache_dir: Path, name: str | None = None) -> Path:
    """The pre-trained ZF-5 trunk file ``name`` (what a work dir's meta.json records), or when None
    the one last written or reused by :func:`ensure_pretrained_zf5` (``latest.txt``: with several
    runs sharing the cache, that may be another run's)."""
    folder = Path(cache_dir) / FOLDER
    pointer = folder / POINTER
    if name is None and pointer.is_file():
        name = pointer.read_text().strip()
    path = folder / name if name else None
    if path is None or not path.is_file():
        raise InputError(folder, "no pre-trained ZF-5 here; train with tools/train_det.py --backbone zf5 "
                         "--pretrained crops (it pre-trains ZF-5 first)")
    return path
