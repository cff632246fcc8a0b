"""Per-item caches on disk: keyed by what produced them, written atomically, loaded without pickle.

Each stage that works image by image stores one ``.npz`` per image under a folder whose name holds
a hash of the stage's parameters (:func:`params_key`). A file is written to a temporary name and
renamed, so an interrupted run never leaves a half-written entry; an entry that fails to load or
lacks the expected arrays is reported as missing (and so recomputed), never silently used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

log = logging.getLogger(__name__)


def params_key(params: dict[str, Any], length: int = 12) -> str:
    """A short stable hash of JSON-serialisable parameters (key order does not matter)."""
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def file_digest(path: Path) -> str:
    """SHA-1 of a file's bytes, hex: identifies the exact file (an image, a trained model) an entry
    was computed from."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(file)`` on a temporary file in ``path``'s folder, then rename it to ``path``.

    The one way this project writes a file: a reader sees the old file or the whole new one, never
    a half-written one, and a failed write leaves no temporary file behind.

    Raises:
        OSError: the write failed (a full disk: ENOSPC, no permission: EACCES ...); its
            ``filename`` is ``path``, which ``write`` cannot know, so the error names the file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno is not None:
            raise OSError(err.errno, err.strerror or os.strerror(err.errno), str(path)) from err
        raise


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    atomic_write(path, lambda f: f.write(payload))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def save_arrays(path: Path, **arrays: np.ndarray) -> None:
    """Save named arrays to ``path`` (.npz, uncompressed) atomically."""
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_arrays(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """Load a cache entry written by :func:`save_arrays`.

    Returns:
        the arrays named by ``keys``, or None when the entry is missing, corrupt or incomplete
        (a corrupt entry is logged and deleted so that it is recomputed).
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in keys}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        log.warning("cache entry %s is unreadable (%s); recomputing it", path, err)
        path.unlink(missing_ok=True)
        return None
