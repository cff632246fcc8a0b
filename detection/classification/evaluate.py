"""Top-1 / top-5 error of a classifier on held-out images, per view (SPP-net tables 2 and 3).

Views: ``center_crop``, the center crop x crop window (the paper's 1-crop view), and
``full_image``, the whole image at its stored size, any aspect (the paper's full-image view, shorter
side 256 there): only a network with pyramid pooling takes it, so a no-SPP network reports None.
"""

from __future__ import annotations

from collections import defaultdict

import torch
import torch.nn.functional as F

from data.progress import track
from detection.classification.dataset import ImageSet, center_crops, full_image
from detection.classification.network import FixedPool5, SPPClassifier
from detection.models.backbones import normalise

VIEWS = ("center_crop", "full_image")


def topk_errors(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """(N, K) logits, (N,) labels -> {"top1": error, "top5": error}; k is capped at K."""
    out = {}
    for k in ks:
        top = logits.topk(min(k, logits.shape[1]), dim=1).indices  # (N, k)
        hit = (top == labels.unsqueeze(1)).any(1)
        out[f"top{k}"] = float(1.0 - hit.float().mean()) if len(labels) else float("nan")
    return out


@torch.no_grad()
def _logits_center(model: SPPClassifier, images: ImageSet, crop: int, device: torch.device,
                   batch_size: int, progress: bool) -> torch.Tensor:
    chunks = []
    for s in track(range(0, len(images), batch_size), desc="center-crop view", show=progress, leave=False):
        batch = center_crops(list(images.images[s:s + batch_size]), crop)
        chunks.append(model(normalise(batch.to(device))).float().cpu())
    return torch.cat(chunks)


@torch.no_grad()
def _logits_full(model: SPPClassifier, images: ImageSet, device: torch.device, batch_size: int,
                 progress: bool) -> torch.Tensor:
    """Whole images, batched by identical size (no padding, so every number is the image's own)."""
    by_shape: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, im in enumerate(images.images):
        by_shape[im.shape[:2]].append(i)
    out = torch.empty((len(images), model.head.fc8.out_features))
    bar = track(total=len(images), desc="full-image view", show=progress, leave=False)
    for idx in by_shape.values():
        for s in range(0, len(idx), batch_size):
            part = idx[s:s + batch_size]
            batch = torch.cat([full_image(images.images[i]) for i in part])
            out[part] = model(normalise(batch.to(device))).float().cpu()
            bar.update(len(part))
    bar.close()
    return out


def evaluate(model: SPPClassifier, images: ImageSet, crop: int, device: torch.device,
             batch_size: int = 64, progress: bool = True, views: tuple[str, ...] = VIEWS) -> dict:
    """Errors per view, the held-out loss (center crop) and the majority-class rate.

    The center-crop view is always measured; ``views`` without "full_image" skips that one.

    Returns:
        {"views": {"center_crop": {"top1", "top5"}, "full_image": {...} or None}, "loss": float,
        "majority": float, "images": N}; errors are fractions in [0, 1].
    """
    model.eval()
    labels = torch.from_numpy(images.labels)
    logits = _logits_center(model, images, crop, device, batch_size, progress)
    errors: dict[str, dict | None] = {"center_crop": topk_errors(logits, labels)}
    if "full_image" in views:
        errors["full_image"] = None if isinstance(model.pool, FixedPool5) else topk_errors(  # fixed: one size only
            _logits_full(model, images, device, batch_size, progress), labels)
    return {"views": errors, "loss": float(F.cross_entropy(logits, labels)), "majority": images.majority_rate(),
            "images": len(images)}


def summary(result: dict) -> dict:
    """The tool's JSON: headline errors of the best view the network takes (full image if it can),
    plus every view, the majority-class rate and accuracy = 1 - top-1 error."""
    view = "full_image" if result["views"].get("full_image") else "center_crop"
    head = result["views"][view]
    return {"top1": head["top1"], "top5": head["top5"], "accuracy": 1.0 - head["top1"],
            "majority": result["majority"], "view": view, "views": result["views"],
            "held_out_images": result["images"], "errors_are": "fractions; top1/top5 are error rates"}

