"""Classify whole images with SPP features and linear SVMs, without fine-tuning (SPP-net sec. 3.2-3.3).

Each image, at its own size and aspect, is resized to shorter side --side, the frozen trunk runs on
it once and the pyramid (--levels) pools its whole conv5 map into one vector, or fc6 / fc7 of a
classifier's head on top (--layer); vectors are cached per image under
CACHE_DIR/image_vectors/. Linear SVMs, one per class against the rest, are trained on the
l2-normalised vectors (the paper's normalisation) and scored as the paper does:

  --data-root VOC   VOC 2007's classification task: SVMs trained on --train-split, scored on
                    --test-split; an image is positive for a class when it holds a non-difficult
                    object of it (difficult-only: ignored); per-class 11-point AP, mAP over classes.
  --folder DIR      an image folder in Caltech101's layout (DIR/<class>/<image>): --splits random
                    splits of --train-per-class training and up to --test-per-class test images per
                    class; mean per-class accuracy, mean +- std over the splits.
  --embedded N      the embedded classification set (12 shapes + background), N images per class,
                    written once as such a folder under CACHE_DIR/cls_folder/ and read as --folder.

The paper's ablations are flags: --levels 6,3,2,1 against --levels 6 (one level: the no-SPP pool5);
--view full against --view center; --side 224 / 392; --layer pool5 against fc6 / fc7 (these need
--pretrained CLASSIFIER_WORK_DIR, whose head has them; ImageNet's MobileNetV2 has none).

Examples:
  python tools/image_svm.py --data-root runs/synthetic_voc                       # MobileNetV2, ImageNet
  python tools/image_svm.py --data-root runs/synthetic_voc --levels 6 --view center
  python tools/image_svm.py --embedded 60 --json runs/image_svm/embedded.json
  python tools/image_svm.py --folder 101_ObjectCategories --backbone zf5 --pretrained runs/cls_zf5 --layer fc7
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from data.cache import atomic_write_text, params_key
from data.errors import InputError
from data.synthetic.classify import OBJECT_SHARE
from data.synthetic.classify_folder import write_class_folder
from data.voc import load_voc
from detection.classification.config import EmbeddedSetConfig
from detection.classification.dataset import class_files
from detection.classification.workdir import load_classifier
from detection.config import check_trunk_source, load_train_config, trunk_source
from detection.features.image_vectors import LAYERS, VIEWS, ImageVectorCache, ImageVectorConfig
from detection.models.backbones import BACKBONES
from detection.models.head import FcHead
from detection.runtime.config_io import config_to_dict
from detection.workdir import build_network, trunk_weights_file
from eval.image_classification import (
    CALTECH_SPLITS,
    CALTECH_TEST_PER_CLASS,
    CALTECH_TRAIN_PER_CLASS,
    image_labels,
    mean_class_accuracy,
    per_class_accuracy,
    random_split,
    voc_classification,
)
from svm.image_svm import ImageSVMConfig, fit_one_vs_rest, one_hot_targets
from tools._cli import add_no_progress, run_cli, setup_logging

log = logging.getLogger("image_svm")
EMBEDDED_SIDE = 256  # the embedded images' shorter side: ImageNet's 256 for 224 crops
# Seed of the embedded images: not tools/train_cls.py's (data.seed = 0), so a ZF-5 trained there never saw them.
EMBEDDED_SEED = 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--data-root", type=Path, help="VOC-layout folder: VOC 2007's classification task")
    data.add_argument("--folder", type=Path, help="image folder, one sub-folder per class (Caltech101's layout)")
    data.add_argument("--embedded", type=int, metavar="N", help="the embedded classification set, N images per class")
    p.add_argument("--train-split", default="trainval", help="VOC: split the SVMs train on (default trainval)")
    p.add_argument("--test-split", default="test", help="VOC: split they are scored on (default test)")
    p.add_argument(
        "--splits", type=int, default=CALTECH_SPLITS, help=f"folder: random splits (default {CALTECH_SPLITS})"
    )
    p.add_argument(
        "--train-per-class",
        type=int,
        default=CALTECH_TRAIN_PER_CLASS,
        help=f"folder: training images per class (default {CALTECH_TRAIN_PER_CLASS})",
    )
    p.add_argument(
        "--test-per-class",
        type=int,
        default=CALTECH_TEST_PER_CLASS,
        help=f"folder: at most this many test images per class (default {CALTECH_TEST_PER_CLASS})",
    )
    p.add_argument("--typicality", type=float, default=EmbeddedSetConfig().typicality,
                   help="--embedded: share of typical looks (default: the classification set's, %(default)s)")
    p.add_argument("--backbone", choices=BACKBONES, default="mobilenet_v2", help="frozen trunk (default mobilenet_v2)")
    p.add_argument(
        "--pretrained",
        default="imagenet",
        help="imagenet (default; not for zf5) | none | a classifier WORK_DIR of tools/train_cls.py | "
        "PATH to a trunk state_dict",
    )
    d = ImageVectorConfig()
    p.add_argument("--side", type=int, default=d.side, help=f"shorter side of the resized image (default {d.side})")
    p.add_argument("--view", choices=VIEWS, default=d.view, help="full image or its side x side centre crop")
    p.add_argument(
        "--levels",
        default=",".join(map(str, d.levels)),
        help="pyramid levels, comma-separated (default 6,3,2,1; 6: one level, the no-SPP pool5)",
    )
    p.add_argument(
        "--layer", choices=LAYERS, default=d.layer, help="pool5 (default), or fc6 / fc7 of a classifier work dir's head"
    )
    p.add_argument("--C", type=float, default=ImageSVMConfig().C, help="SVM regularisation (default 1)")
    p.add_argument("--seed", type=int, default=0, help="first split's seed (split i: seed + i) and liblinear's")
    p.add_argument("--cache-dir", type=Path, default=Path("runs/cache"), help="vector cache (default runs/cache)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--json", type=Path, help="also write the result here (JSON)")
    add_no_progress(p)
    return p.parse_args(argv)


def parse_levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise InputError("--levels", f"expected comma-separated integers such as 6,3,2,1, got {text!r}") from None
    return levels


def vector_config(args: argparse.Namespace) -> ImageVectorConfig:
    return ImageVectorConfig(args.side, args.view, parse_levels(args.levels), args.layer)


def settings(args: argparse.Namespace) -> dict:
    """Everything besides the images that decides the figure, as plain data: the trunk, how an image
    becomes a vector, the SVMs and the protocol (the --json carries them; tools/reproduce.py keys its
    records on them, so it builds them from the flags without running)."""
    out = {"backbone": args.backbone, "pretrained": args.pretrained, **config_to_dict(vector_config(args)),
           **config_to_dict(ImageSVMConfig(C=args.C)), "seed": args.seed}
    if args.data_root is not None:
        return out | {"train_split": args.train_split, "test_split": args.test_split}
    out |= {"splits": args.splits, "train_per_class": args.train_per_class, "test_per_class": args.test_per_class}
    if args.embedded is not None:  # what draws the folder's images
        out |= {"embedded": args.embedded, "embedded_side": EMBEDDED_SIDE, "embedded_seed": EMBEDDED_SEED,
                "typicality": args.typicality, "object_share": list(OBJECT_SHARE)}
    return out


def open_network(
    args: argparse.Namespace, vcfg: ImageVectorConfig, device: torch.device
) -> tuple[torch.nn.Module, FcHead | None]:
    """The frozen trunk --backbone / --pretrained name, and the classifier's head for fc6 / fc7."""
    source = trunk_source(args.pretrained)
    if vcfg.layer != "pool5" and source.kind != "classifier":
        raise InputError(
            "--layer",
            f"{vcfg.layer} needs --pretrained CLASSIFIER_WORK_DIR (tools/train_cls.py), "
            f"whose head has fc6 / fc7; {args.pretrained!r} has none",
        )
    cfg = load_train_config(None, [f"features.backbone={args.backbone}", f"features.pretrained={args.pretrained}"])
    check_trunk_source(cfg)
    trunk, _ = build_network(cfg, device, trunk_weights_file(cfg))
    if vcfg.layer == "pool5":
        return trunk, None
    model, ccfg, _ = load_classifier(source.path, device)
    if ccfg.model.pool != "spp":  # the no-SPP baseline: its fc6 takes one input size's pool5 only
        raise InputError(source.path, f"its fc6 takes a {ccfg.model.pool} pool5 (one input size, no pyramid), "
                                      "which whole-image vectors cannot feed; use --layer pool5")
    if tuple(ccfg.model.levels) != vcfg.levels:
        raise InputError(
            source.path,
            f"its fc6 takes a pyramid of levels {tuple(ccfg.model.levels)}; "
            f"pass --levels {','.join(map(str, ccfg.model.levels))} (or --layer pool5)",
        )
    return trunk, model.head


def voc_task(args: argparse.Namespace, cache: ImageVectorCache, svm_cfg: ImageSVMConfig) -> dict:
    """VOC 2007's classification task: {"scores": [mAP], "per_class": {class: AP}, ...}."""
    train, test = load_voc(args.data_root, args.train_split), load_voc(args.data_root, args.test_split)
    k = len(train.classes)
    targets, truth = image_labels(train.records, k), image_labels(test.records, k)
    for c in range(k):
        if not ((targets[:, c] > 0).any() and (targets[:, c] < 0).any()):
            raise InputError(
                args.data_root,
                f"split {args.train_split!r} has no positive or no negative image of "
                f"class {train.classes[c]!r}: its SVM cannot be trained",
            )
    progress = not args.no_progress
    start = time.perf_counter()
    x_train = cache.vectors([r.path for r in train.records], progress, f"{args.train_split} vectors")
    x_test = cache.vectors([r.path for r in test.records], progress, f"{args.test_split} vectors")
    extract_s, start = time.perf_counter() - start, time.perf_counter()
    svms = fit_one_vs_rest(x_train, targets, svm_cfg, args.seed)
    aps = voc_classification(svms.scores(x_test), truth, train.classes)
    return {
        "task": "voc07",
        "metric": "mAP",
        "scores": [float(np.mean(list(aps.values())))],
        "per_class": aps,
        "train_images": len(train.records),
        "test_images": len(test.records),
        "dim": int(x_train.shape[1]),
        "extract_s": extract_s,
        "svm_s": time.perf_counter() - start,
    }


def folder_images(root: Path, train_per_class: int) -> tuple[list[Path], np.ndarray, tuple[str, ...]]:
    """(image files, (N,) labels, classes) of a class-per-folder tree; a class too small to split is
    an error naming its folder."""
    files = class_files(root)
    for name, paths in files.items():
        if len(paths) <= train_per_class:
            raise InputError(
                root / name,
                f"class {name!r} has {len(paths)} image(s); --train-per-class "
                f"{train_per_class} needs at least {train_per_class + 1}",
            )
    classes = tuple(files)
    paths = [p for name in classes for p in files[name]]
    labels = np.array([k for k, name in enumerate(classes) for _ in files[name]], np.int64)
    return paths, labels, classes


def folder_task(args: argparse.Namespace, root: Path, cache: ImageVectorCache, svm_cfg: ImageSVMConfig) -> dict:
    """Caltech101's protocol: {"scores": [mean class accuracy per split], "per_class": {...}, ...}."""
    paths, labels, classes = folder_images(root, args.train_per_class)
    start = time.perf_counter()
    x = cache.vectors(paths, not args.no_progress)
    extract_s, start = time.perf_counter() - start, time.perf_counter()
    scores, per_class = [], []
    for s in range(args.splits):
        train, test = random_split(labels, args.train_per_class, args.test_per_class, args.seed + s)
        svms = fit_one_vs_rest(x[train], one_hot_targets(labels[train], len(classes)), svm_cfg, args.seed)
        predicted = svms.scores(x[test]).argmax(1)
        scores.append(mean_class_accuracy(predicted, labels[test], len(classes)))
        per_class.append(per_class_accuracy(predicted, labels[test], len(classes)))
    return {
        "task": "caltech101",
        "metric": "mean class accuracy",
        "scores": scores,
        "per_class": dict(zip(classes, np.mean(per_class, 0).tolist())),
        "images": len(paths),
        "train_per_class": args.train_per_class,
        "test_per_class": args.test_per_class,
        "dim": int(x.shape[1]),
        "extract_s": extract_s,
        "svm_s": time.perf_counter() - start,
    }


def embedded_folder(args: argparse.Namespace) -> Path:
    """The embedded classification set as an image folder under CACHE_DIR/cls_folder/<key>/."""
    if args.embedded < 2:
        raise InputError("--embedded", f"needs at least 2 images per class, got {args.embedded}")
    params = {"per_class": args.embedded, "side": EMBEDDED_SIDE, "seed": EMBEDDED_SEED, "typicality": args.typicality}
    return write_class_folder(
        args.cache_dir / "cls_folder" / params_key(params), args.embedded, EMBEDDED_SIDE, EMBEDDED_SEED, args.typicality
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    vcfg = vector_config(args)
    svm_cfg = ImageSVMConfig(C=args.C)
    if min(args.splits, args.train_per_class, args.test_per_class) < 1:
        raise InputError("--splits", "--splits, --train-per-class and --test-per-class must be >= 1")
    device = torch.device(args.device)
    trunk, head = open_network(args, vcfg, device)
    cache = ImageVectorCache(args.cache_dir / "image_vectors", trunk, vcfg, device, head)
    if args.data_root is not None:
        result = voc_task(args, cache, svm_cfg)
        data = str(args.data_root)
    else:
        root = args.folder if args.folder is not None else embedded_folder(args)
        result = folder_task(args, root, cache, svm_cfg)
        data = str(args.folder) if args.folder is not None else f"embedded:{args.embedded}"
    scores = np.array(result["scores"])
    result |= {
        "data": data,
        **settings(args),
        "computed_images": cache.computed,  # the others' vectors came from the cache
        "mean": float(scores.mean()),
        "std": float(scores.std()),
    }
    spread = f" ± {100 * result['std']:.1f} over {len(scores)} splits" if len(scores) > 1 else ""
    print(
        f"{result['metric']} {100 * result['mean']:.1f}{spread}: {args.backbone} ({args.pretrained}), "
        f"{vcfg.view} image at shorter side {vcfg.side}, levels {vcfg.levels}, {vcfg.layer} ({result['dim']}-d), "
        f"linear SVMs C {svm_cfg.C:g}, on {data}"
    )
    print("  " + ", ".join(f"{c} {100 * v:.1f}" for c, v in result["per_class"].items()))
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
