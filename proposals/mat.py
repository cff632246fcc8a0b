"""Reading the proposals that the original R-CNN / SPP-net releases distributed.

The files ``selective_search_data/<dataset>_<split>.mat`` (R-CNN's ``rcnn_cache_ss`` output)
hold two variables:

* ``images``: cell array (or char matrix) of N image ids, e.g. '000001';
* ``boxes``: cell array of N matrices, each (R, 4) in MATLAB's 1-based, inclusive pixel
  coordinates, column order (y1, x1, y2, x2).

Conversion to our convention (continuous 0-based coordinates, width = x2 - x1): the inclusive
1-based pixel range [c1, c2] covers the continuous interval [c1 - 1, c2], so

    x1 = col1 - 1,   y1 = row1 - 1,   x2 = col2,   y2 = row2

where (row1, col1, row2, col2) are the file's four columns. A box of one pixel, (1, 1, 1, 1) in
the file, becomes (0, 0, 1, 1). The VOC reader converts ground truth the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.io

from data.errors import InputError


def _as_ids(images: np.ndarray, path: Path) -> list[str]:
    """MATLAB ids (cell array of strings, or a char matrix) -> list of str."""
    arr = np.asarray(images)
    if arr.dtype.kind == "U":  # char matrix, one id per row (or a single string)
        return [str(s).strip() for s in arr.reshape(-1)]
    if arr.dtype == object:
        ids = []
        for cell in arr.reshape(-1):
            value = np.asarray(cell).reshape(-1)
            if value.size != 1:
                raise InputError(path, f"'images' holds a non-string entry {cell!r}")
            ids.append(str(value[0]).strip())
        return ids
    # Numeric ids (some datasets store integers): keep their decimal text.
    return [str(int(v)) for v in arr.reshape(-1)]


def _convert(cell: np.ndarray, path: Path, image_id: str) -> np.ndarray:
    """One (R, 4) 1-based (y1, x1, y2, x2) matrix -> (R, 4) float32 0-based (x1, y1, x2, y2)."""
    m = np.asarray(cell, dtype=np.float64)
    if m.size == 0:
        return np.zeros((0, 4), np.float32)
    if m.ndim != 2 or m.shape[1] != 4:
        raise InputError(path, f"boxes of image {image_id} have shape {m.shape}, expected (R, 4)")
    row1, col1, row2, col2 = m[:, 0], m[:, 1], m[:, 2], m[:, 3]
    return np.stack([col1 - 1, row1 - 1, col2, row2], axis=1).astype(np.float32)


def read_mat_proposals(path: Path, image_ids: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Read a released selective_search_data .mat file.

    Args:
        path: the .mat file.
        image_ids: ids to return (those absent from the file are simply absent from the result);
            None returns every image of the file.
    Returns:
        image id -> (R, 4) float32 boxes, 0-based continuous (x1, y1, x2, y2), in the file's order.
    Raises:
        InputError: the file is missing, not a MATLAB file, or lacks 'images' / 'boxes'.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "proposal .mat file not found")
    try:
        mat = scipy.io.loadmat(path, variable_names=["images", "boxes"])
    except (ValueError, OSError, TypeError, NotImplementedError) as err:
        # NotImplementedError: MATLAB v7.3 (HDF5) files, which scipy cannot read.
        raise InputError(path, f"cannot read as a MATLAB .mat file ({err})") from err
    for name in ("images", "boxes"):
        if name not in mat:
            raise InputError(path, f"no variable '{name}' (expected R-CNN selective_search_data format)")
    ids = _as_ids(mat["images"], path)
    cells = np.asarray(mat["boxes"], dtype=object).reshape(-1)
    if len(cells) != len(ids):
        raise InputError(path, f"{len(ids)} images but {len(cells)} box arrays")
    wanted = None if image_ids is None else set(image_ids)
    return {i: _convert(c, path, i) for i, c in zip(ids, cells) if wanted is None or i in wanted}
