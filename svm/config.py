"""The SVM training recipe of R-CNN (rcnn_train.m), which SPP-net reuses (SPP-net, section 4.1)."""

from __future__ import annotations

from dataclasses import dataclass

from data.errors import InputError


@dataclass(frozen=True)
class SVMConfig:
    """Per-class linear SVMs with one pass of hard-negative mining.

    Defaults are the paper's recipe unless marked "ours".
    """

    C: float = 0.001  # R-CNN rcnn_train.m 'svm_C'; liblinear -c
    pos_weight: float = 2.0  # R-CNN 'pos_loss_weight'; liblinear -w1 2
    bias_multiplier: float = 10.0  # R-CNN 'bias_mult'; liblinear -B 10 (sklearn intercept_scaling)
    neg_overlap: float = 0.3  # R-CNN / SPP-net: negatives have IoU < 0.3 with every GT of the class
    neg_dedupe_iou: float = 0.7  # SPP-net 4.1: drop a negative overlapping another negative by > 70%
    hard_threshold: float = -1.0001  # R-CNN caches.hard_thresh: a negative is hard if score > this
    evict_threshold: float = -1.2  # R-CNN caches.evict_thresh: drop cached negatives scoring below
    retrain_every: int = 2000  # R-CNN caches.retrain_limit: new hard negatives between retrains
    target_norm: float = 20.0  # R-CNN 'feat_norm_mean': features scaled to this mean L2 norm
    max_negatives_per_class: int = 6000  # ours: memory guard, keeps the hardest (see svm/train.py)
    tol: float = 0.1  # liblinear's default eps for -s 3, which R-CNN used (sklearn's default: 1e-4)
    max_iter: int = 1000  # sklearn LinearSVC default; liblinear's own default is 1000 too
    seed: int = 0  # ours: LinearSVC random_state (liblinear's dual CD shuffles), for determinism

    def __post_init__(self) -> None:
        positive = {"C": self.C, "pos_weight": self.pos_weight, "bias_multiplier": self.bias_multiplier,
                    "target_norm": self.target_norm, "tol": self.tol}
        for name, value in positive.items():
            if not value > 0:
                raise InputError("SVMConfig", f"{name} must be > 0, got {value}")
        for name in ("retrain_every", "max_negatives_per_class", "max_iter"):
            if getattr(self, name) < 1:
                raise InputError("SVMConfig", f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.neg_overlap <= 1 or not 0 < self.neg_dedupe_iou <= 1:
            raise InputError("SVMConfig", "neg_overlap and neg_dedupe_iou must lie in (0, 1]")
        if self.evict_threshold > self.hard_threshold:
            raise InputError("SVMConfig", "evict_threshold must be <= hard_threshold, or a newly "
                             "added hard negative could be evicted at once")
