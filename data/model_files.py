"""Loading a trained model file saved with ``torch.save``: reported by name, never replaced.

Unlike a cache entry, a trained model file (the fine-tuned head, the fine-tuning checkpoint) is
the product of a run that may have taken hours: one that cannot be read is a user's problem to
look at, so it raises :class:`InputError` naming the file, and is never deleted or overwritten by
the loaders (``data.linear_model`` does the same for the SVMs and box regressors).
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from data.errors import InputError


def load_torch_file(path: Path, what: str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The dict saved at ``path`` (tensors and plain values only: ``weights_only``).

    Raises:
        InputError: naming ``path`` and ``what`` it should hold, when it is missing, unreadable
            (truncated, garbage bytes) or not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{what} file is missing")
    try:
        state = torch.load(path, weights_only=True, map_location=map_location)
    except (RuntimeError, OSError, EOFError, ValueError, TypeError, KeyError, pickle.UnpicklingError,
            zipfile.BadZipFile) as err:
        problem = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise InputError(path, f"{what} file is unreadable ({type(err).__name__}: {problem[:200]})") from None
    if not isinstance(state, Mapping):
        raise InputError(path, f"{what} file holds a {type(state).__name__}, not a dict")
    return dict(state)


def load_module_state(module: torch.nn.Module, path: Path, what: str, map_location: str | torch.device = "cpu",
                      part: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
    """Load the state_dict at ``path`` (or the ``part`` of it that ``module`` holds) into ``module``,
    or raise InputError naming the file."""
    state = load_torch_file(path, what, map_location)
    if part is not None:
        state = part(state)
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as err:
        problem = str(err).strip().splitlines()[0]
        raise InputError(path, f"{what} file does not fit this network ({problem[:200]})") from None
