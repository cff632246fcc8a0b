"""The embedded classification set written as an image folder, Caltech101's layout.

Caltech101 is one folder per category, the images of any size inside, with no train / test
division (each experiment draws its own random splits). :func:`write_class_folder` writes the
embedded classification set (:mod:`data.synthetic.classify`: 12 shapes + background) the same way,
``ROOT/<class>/<class>_<i>.png``, so the tools that read a real Caltech101 read it unchanged. PNG
keeps the pixels exact. ``folder.json``, written last, records the parameters: a folder holding it
with the same parameters is complete and is not written again.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from data.cache import atomic_write_bytes, atomic_write_text
from data.synthetic import classify

MARKER = "folder.json"


def _params(per_class: int, side: int, seed: int, typicality: float) -> dict:
    # version 2: objects at varied scales and positions (data.synthetic.classify.OBJECT_SHARE)
    return {"per_class": per_class, "side": side, "seed": seed, "typicality": typicality, "version": 2}


def write_class_folder(root: Path, per_class: int, side: int, seed: int = 0, typicality: float = 0.0) -> Path:
    """Write ``per_class`` images of each class (shorter side ``side``) under ``root/<class>/``.

    The images are the embedded set's "train" stream, samples 0 .. per_class * K - 1 (sample i
    has class i mod K), so a larger ``per_class`` adds images and keeps the first ones.

    Returns:
        ``root``.
    """
    root = Path(root)
    params = _params(per_class, side, seed, typicality)
    marker = root / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == params:
        return root
    k = len(classify.CLASSES)
    for i in range(per_class * k):
        label = classify.sample_label(i)
        name = classify.CLASSES[label]
        path = root / name / f"{name}_{i // k:04d}.png"
        if path.is_file() and not marker.is_file():
            continue  # written by an interrupted run with these parameters' stream (resume)
        image = classify.draw_sample(label, side, classify.sample_rng("train", i, seed), typicality)
        ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError(f"could not encode {path}")
        atomic_write_bytes(path, np.asarray(buf).tobytes())
    atomic_write_text(marker, json.dumps(params, indent=2) + "\n")
    return root
