"""The SVM training recipe of R-CNN (rcnn_train.m), which SPP-net reuses (SPP-net, section 4.1)."""

from __future__ import annotations

from dataclasses import dataclass

from data.errors import check_config


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
        positive = ("C", "pos_weight", "bias_multiplier", "target_norm", "tol")
        at_least_one = ("retrain_every", "max_negatives_per_class", "max_iter")
        check_config([
            *((getattr(self, n) > 0, f"svm.{n} must be > 0, got {getattr(self, n)}") for n in positive),
            *((getattr(self, n) >= 1, f"svm.{n} must be >= 1, got {getattr(self, n)}") for n in at_least_one),
            (0 < self.neg_overlap <= 1 and 0 < self.neg_dedupe_iou <= 1,
             "svm.neg_overlap and svm.neg_dedupe_iou must lie in (0, 1]"),
            (self.evict_threshold <= self.hard_threshold, "svm.evict_threshold must be <= svm.hard_threshold, or a "
                                                         "newly added hard negative could be evicted at once"),
        ])
