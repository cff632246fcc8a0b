"""Per-item caches on disk: keyed by what produced them, written atomically, loaded without pickle.

Each stage that works image by image stores one ``.npz`` per image under a folder whose name holds
a hash of the stage's parameters (:func:`params_key`). A file is written to a temporary name and
renamed, so an interrupted run never leaves a half-written entry. An entry that fails to load,
lacks an expected array, has an array of the wrong shape or dtype (:class:`ArraySpec`) or was
written by another version of its producer is reported once (one warning per entry and process)
and read as missing, so it is recomputed and replaced, never silently used. Runs that share a
cache folder claim an entry before computing it (``data.claims``).

An entry may store its producer's version as the array ``cache_version``. The folder key already
hashes that version, so an entry without the field (written before entries carried it) counts as
of the folder's version; one whose field differs is of another version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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


VERSION_KEY = "cache_version"


@dataclass(frozen=True)
class ArraySpec:
    """What one array of a cache entry must look like.

    Attributes:
        shape: one item per dimension: an int (exactly that length), a name such as "R" (the same
            length wherever the name recurs in the entry), or None (any length).
        kinds: the numpy dtype kinds allowed ("f" float, "iu" integer, "U" text, "b" bool); "" any.
    """

    shape: tuple[int | str | None, ...]
    kinds: str = ""


def layout_problem(arrays: Mapping[str, np.ndarray], layout: Mapping[str, ArraySpec]) -> str | None:
    """What is wrong with ``arrays`` given ``layout`` (missing array, shape, dtype), or None."""
    named: dict[str, int] = {}
    for key, spec in layout.items():
        if key not in arrays:
            return f"no array {key!r}"
        a = arrays[key]
        if spec.kinds and a.dtype.kind not in spec.kinds:
            return f"{key} has dtype {a.dtype}, expected kind {spec.kinds!r}"
        if a.ndim != len(spec.shape):
            return f"{key} has shape {a.shape}, expected {len(spec.shape)} dimensions"
        for length, want in zip(a.shape, spec.shape):
            if isinstance(want, str):
                want = named.setdefault(want, length)
            if want is not None and length != want:
                return f"{key} has shape {a.shape}, expected {spec.shape} ({named})"
    return None


_reported: set[tuple[str, int, int]] = set()  # (path, size, mtime) of the corrupt entries warned about


def report_corrupt(path: Path, problem: str) -> None:
    """Warn that cache entry ``path`` is corrupt and will be recomputed, once per entry and process."""
    try:
        st = path.stat()
        ident = (str(path), st.st_size, st.st_mtime_ns)
    except OSError:
        ident = (str(path), -1, -1)
    if ident not in _reported:
        _reported.add(ident)
        log.warning("cache entry %s is corrupt (%s); recomputing it", path, problem)


def corrupt_entries_reported() -> int:
    """How many corrupt cache entries this process has reported (for a stage's summary)."""
    return len(_reported)


def save_arrays(path: Path, version: int | None = None, **arrays: np.ndarray) -> None:
    """Save named arrays to ``path`` (.npz, uncompressed) atomically, with ``version`` when given."""
    if version is not None:
        arrays[VERSION_KEY] = np.array(version, dtype=np.int64)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_arrays(path: Path, layout: Mapping[str, ArraySpec], version: int | None = None) -> dict[str, np.ndarray] | None:
    """Load a cache entry written by :func:`save_arrays`.

    Args:
        path: the entry.
        layout: the arrays to load and what each must look like.
        version: the producer's version the entry must have (see the module doc), None: unchecked.
    Returns:
        the arrays named by ``layout``, or None when the entry is missing or corrupt (unreadable,
        an array missing or of the wrong shape or dtype, another version); a corrupt entry is
        reported once and left in place, for the recomputation to replace atomically. (Deleting
        it could delete the valid entry another run has just renamed over it.)
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            stored = int(z[VERSION_KEY]) if VERSION_KEY in z.files else version
            arrays = {k: z[k] for k in layout if k in z.files}
    except (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile) as err:
        report_corrupt(path, f"unreadable: {type(err).__name__}: {err}")
        return None
    problem = layout_problem(arrays, layout)
    if stored != version:
        problem = f"written by version {stored} of its producer, this is version {version}"
    if problem is not None:
        report_corrupt(path, problem)
        return None
    return arrays
