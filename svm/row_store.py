"""Feature rows kept in memory up to a byte budget, the rest in files on disk (the SVM stage's store,
and fine-tuning's pool of windows).

What grows in hard-negative mining is rows of D float32: the positives (with the images) and the
shared negative cache (up to K x the per-class cap, ``svm.train``'s memory bound). A ``RowStore``
holds them as entries, each one (rows, D) array under a key; an entry that would take the memory
used past ``budget_bytes`` goes to a file instead, and stays there. A row read back from its file
has the bytes it was written with, so what the solver is given, and so the SVMs, do not depend on
the budget: a run that spills gives the weights of one that does not, bit for bit
(tests/svm/test_svm_row_store.py).

Files are read with plain reads, not memory maps: pages of a map stay in the process's resident
set until it is unmapped, which is what the budget is there to bound. They are scratch files: read
only by this process, deleted by :meth:`RowStore.close`; a killed run's folder is deleted by the
next mining pass (``svm.train.train_svms``), which starts from its beginning anyway, so they are
not written atomically.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Hashable
from pathlib import Path

import numpy as np

# Of the memory the kernel says is available (MemAvailable: free memory plus what it can reclaim,
# after every other process's use, so jobs next to this one count) when mining starts, the share
# the store may hold. The rest is for what the budget does not cover: the fits' transient copies
# (svm.solver.fit_class: ~28 bytes per entry, in each of ``workers`` processes), the network and
# the page cache that keeps reading conv5 maps fast. Ours: a 5-scale pool5 training grew
# to 9.9 GB next to other jobs and was killed by the OOM killer; half leaves room for both.
AVAILABLE_MEMORY_SHARE = 0.5


def available_memory_bytes() -> int | None:
    """MemAvailable of /proc/meminfo in bytes (Linux), None where there is none."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the kernel writes kB (KiB)
    except OSError:
        return None
    return None


def memory_budget_bytes(gigabytes: float | None) -> int | None:
    """The store's budget: ``gigabytes`` GiB when given, else AVAILABLE_MEMORY_SHARE of what is
    available now; None (no bound) where the machine does not say."""
    if gigabytes is not None:
        return int(gigabytes * 2**30)
    available = available_memory_bytes()
    return None if available is None else int(available * AVAILABLE_MEMORY_SHARE)


class RowStore:
    """Entries of (rows, D) arrays of one dtype, in memory while ``budget_bytes`` allows, else on disk.

    Args:
        dim: D. budget_bytes: memory the entries may take (None: no bound, nothing is spilled).
        folder: where spilled entries go (created on the first spill; None with a budget: a folder
            of the system's temporary directory).
        dtype: of the rows.
    """

    def __init__(self, dim: int, budget_bytes: int | None = None, folder: Path | None = None,
                 dtype: np.dtype | type = np.float32) -> None:
        self.dim, self.budget, self.dtype = int(dim), budget_bytes, np.dtype(dtype)
        self._folder, self._made_folder = folder, False
        self._ram: dict[Hashable, list[np.ndarray]] = {}  # key -> chunks, in row order
        self._disk: dict[Hashable, tuple[Path, int]] = {}  # key -> (file, rows)
        self._next_file = 0
        self.ram_bytes = 0
        self.disk_bytes = 0
        self.spills = 0  # entries written to disk so far

    def __contains__(self, key: Hashable) -> bool:
        return key in self._ram or key in self._disk

    def rows(self, key: Hashable) -> int:
        """Rows of entry ``key`` (0 when there is none)."""
        if key in self._disk:
            return self._disk[key][1]
        return sum(int(c.shape[0]) for c in self._ram.get(key, ()))

    def put(self, key: Hashable, rows: np.ndarray) -> None:
        """Store (R, D) ``rows`` as entry ``key``, replacing what it held."""
        self.drop(key)
        self.append(key, rows)

    def append(self, key: Hashable, rows: np.ndarray) -> None:
        """Add (R, D) ``rows`` at the end of entry ``key`` (a new entry when there is none)."""
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.ndim != 2 or rows.shape[1] != self.dim:
            raise ValueError(f"rows must be (R, {self.dim}), got shape {rows.shape}")
        if key not in self._disk and (self.budget is None or self.ram_bytes + rows.nbytes <= self.budget):
            self._ram.setdefault(key, []).append(rows)
            self.ram_bytes += rows.nbytes
            return
        if key in self._ram:  # the entry no longer fits: all of it moves to disk
            held = self._ram.pop(key)
            self.ram_bytes -= sum(c.nbytes for c in held)
            self._write(key, np.concatenate([*held, rows]))
        else:
            self._write(key, rows)

    def get(self, key: Hashable) -> np.ndarray:
        """(R, D) rows of entry ``key``: the in-memory array, or a copy read from its file."""
        if key in self._disk:
            path, n = self._disk[key]
            return np.fromfile(path, dtype=self.dtype, count=n * self.dim).reshape(n, self.dim)
        chunks = self._ram.get(key)
        if not chunks:
            return np.zeros((0, self.dim), self.dtype)
        if len(chunks) > 1:  # consolidated once, so a growing entry is not concatenated again and again
            chunks[:] = [np.concatenate(chunks)]
        return chunks[0]

    def take(self, key: Hashable, index: np.ndarray) -> np.ndarray:
        """(len(index), D) rows ``index`` of entry ``key``: from memory, or only those rows read from
        its file (a batch drawn across many entries reads a few rows of each, not every entry whole)."""
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        if key not in self._disk:
            return self.get(key)[index]
        path, n = self._disk[key]
        if len(index) and (index.min() < 0 or index.max() >= n):
            raise IndexError(f"rows {index.min()}..{index.max()} of an entry of {n} rows")
        size = self.dim * self.dtype.itemsize
        out = np.empty((len(index), self.dim), self.dtype)
        with open(path, "rb") as f:
            for j, r in enumerate(index):
                f.seek(int(r) * size)
                out[j] = np.frombuffer(f.read(size), self.dtype)
        return out

    def drop(self, key: Hashable) -> None:
        """Forget entry ``key`` (and delete its file)."""
        if key in self._ram:
            self.ram_bytes -= sum(c.nbytes for c in self._ram.pop(key))
        if key in self._disk:
            path, n = self._disk.pop(key)
            self.disk_bytes -= n * self.dim * self.dtype.itemsize
            path.unlink(missing_ok=True)

    def close(self) -> None:
        """Forget every entry and delete the spilled files (and the folder, if this store made it)."""
        for key in list(self._disk):
            self.drop(key)
        self._ram.clear()
        self.ram_bytes = 0
        if self._made_folder and self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

    def _write(self, key: Hashable, rows: np.ndarray) -> None:
        """Append ``rows`` to the file of ``key`` (a new file for a new entry)."""
        if key not in self._disk:
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="svm_rows_"))
                self._made_folder = True
            elif not self._folder.is_dir():
                self._folder.mkdir(parents=True, exist_ok=True)
                self._made_folder = True
            self._disk[key] = (self._folder / f"{self._next_file}.rows", 0)
            self._next_file += 1
            self.spills += 1
        path, n = self._disk[key]
        with open(path, "ab") as f:
            rows.tofile(f)
        self._disk[key] = (path, n + rows.shape[0])
        self.disk_bytes += rows.nbytes
