"""The one save/load of a trained linear model on scaled features (per-class SVMs, box regressors).

A model is ``weights``, ``bias`` and the ``feature_scale`` its inputs are multiplied by, stored as
an uncompressed ``.npz`` (no pickle), written atomically. Unlike a cache entry, a trained model
that cannot be read is reported by name and never deleted or silently replaced.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from data.cache import save_arrays
from data.errors import InputError


def save_linear_model(path: Path, weights: np.ndarray, bias: np.ndarray, feature_scale: float) -> None:
    """Write a linear model on scaled features to ``path`` (.npz, atomically)."""
    save_arrays(Path(path), weights=weights, bias=bias, feature_scale=np.array(feature_scale, dtype=np.float64))


def load_linear_model(path: Path, what: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(weights, bias, feature_scale) written by :func:`save_linear_model`, weights and bias float32.

    Raises:
        InputError: naming ``path`` and ``what`` it should hold, when it is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{what} file is missing")
    try:
        with np.load(path, allow_pickle=False) as z:
            weights, bias, scale = z["weights"], z["bias"], float(z["feature_scale"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise InputError(path, f"{what} file is unreadable ({type(err).__name__}: {err})") from None
    return weights.astype(np.float32), bias.astype(np.float32), scale
