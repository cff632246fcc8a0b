"""The box-regression samples the SVM stage keeps: pool5 rows of proposals near a ground truth
(R-CNN appendix C), written to disk as they come, so that memory does not grow with the data.

VOC 2007 keeps ~160k rows of pool5's 12,800-16,000 float16 values (~5 GB): held in memory until the
stage ends, they outgrew a machine's budget next to the SVMs' stores. Here each image's rows are
appended to ``bbox_samples_x.npy`` at once; the small per-row arrays (boxes, ground truths, labels,
IoUs; bytes per row) stay in memory and go to ``bbox_samples.npz``, written last: its presence
means both files are complete. Box regression reads the rows back a class at a time
(:class:`RowFile`), mapping the file only while it copies them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from data.cache import ArraySpec, load_arrays, save_arrays

SAMPLES_LAYOUT = {"boxes": ArraySpec(("R", 4), "f"), "gt": ArraySpec(("R", 4), "f"),
                  "labels": ArraySpec(("R",), "iu"), "ious": ArraySpec(("R",), "f"),
                  "pool_scale": ArraySpec((), "f"), "dim": ArraySpec((), "iu")}
_HEADER = 128  # bytes kept for the .npy header, written when the row count is known


def npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """A ``.npy`` (format 1.0) header of exactly 128 bytes for a C-ordered array of ``shape``."""
    text = f"{{'descr': '{np.dtype(dtype).str}', 'fortran_order': False, 'shape': {tuple(shape)!r}, }}"
    text = text.ljust(_HEADER - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")


class SampleWriter:
    """Appends (M, D) float16 rows to an .npy file and keeps each row's small arrays in memory;
    :meth:`finish` completes both files atomically (a killed run leaves neither half-written)."""

    def __init__(self, npz: Path, rows: Path) -> None:
        self.npz, self.rows = Path(npz), Path(rows)
        self.rows.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(dir=self.rows.parent, prefix=f".{self.rows.name}.", suffix=".tmp")
        self._file = os.fdopen(fd, "wb")
        self._file.write(b"\0" * _HEADER)
        self.count, self.dim = 0, 0
        self.small: dict[str, list[np.ndarray]] = {"boxes": [], "gt": [], "labels": [], "ious": []}

    def add(self, x: np.ndarray, boxes: np.ndarray, gt: np.ndarray, labels: np.ndarray, ious: np.ndarray) -> None:
        """One image's rows: x (M, D) pool5 (stored float16), boxes and gt (M, 4), labels and ious (M,)."""
        if len(x):
            self.dim = x.shape[1]
            self._file.write(np.ascontiguousarray(x, np.float16).tobytes())
            self.count += len(x)
        for key, value in (("boxes", boxes), ("gt", gt), ("labels", labels), ("ious", ious)):
            self.small[key].append(np.asarray(value))

    def finish(self, pool_scale: float) -> None:
        """Write the row file's header, rename it into place, then write the npz (the marker)."""
        try:
            self._file.seek(0)
            self._file.write(npy_header((self.count, self.dim), np.float16))
            self._file.close()
            os.replace(self._tmp, self.rows)
        except BaseException:
            self.abort()
            raise
        empty = {"boxes": np.zeros((0, 4), np.float32), "gt": np.zeros((0, 4), np.float32),
                 "labels": np.zeros(0, np.int64), "ious": np.zeros(0, np.float32)}
        small = {k: np.concatenate(v) if v else empty[k] for k, v in self.small.items()}
        save_arrays(self.npz, pool_scale=np.array(pool_scale), dim=np.array(self.dim), **small)

    def abort(self) -> None:
        """Drop the partial row file (a stage that failed)."""
        if not self._file.closed:
            self._file.close()
        Path(self._tmp).unlink(missing_ok=True)


class RowFile:
    """The (N, D) rows of an ``.npy`` file, read on demand: ``rows[idx]`` maps the file, copies the rows
    asked for and unmaps it, so that the pages read do not stay in this process's resident memory.
    A memory map held for the whole box-regression stage had every page of the file resident by its
    end (VOC 2007's 5,011 images: 4.3 GiB of rows; the stage's peak RSS 10.8 GiB)."""

    def __init__(self, path: Path) -> None:
        x = np.load(path, mmap_mode="r")  # the header: shape and dtype
        self.path, self.shape, self.dtype, self.ndim = Path(path), x.shape, x.dtype, x.ndim

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: object) -> np.ndarray:
        """A copy of ``np.load(path)[index]``; the map closes when this returns."""
        return np.array(np.load(self.path, mmap_mode="r")[index])

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        """Every row, in memory (``np.asarray(rows)``)."""
        return np.asarray(self[:], dtype=dtype)


def load_samples(npz: Path, rows: Path) -> dict[str, np.ndarray | RowFile] | None:
    """The samples written by :class:`SampleWriter`: ``x`` (N, D) float16 rows read on demand
    (:class:`RowFile`), and the small arrays; None when missing, corrupt or the two files do not
    belong together."""
    small = load_arrays(npz, SAMPLES_LAYOUT)
    if small is None or not Path(rows).is_file():
        return None
    try:
        x = RowFile(rows)
    except (OSError, ValueError):
        return None
    if x.dtype != np.float16 or x.shape[0] != len(small["labels"]) or (len(x) and x.shape[1] != int(small["dim"])):
        return None
    return {**small, "x": x}
