"""A bounded cache of negative features shared by all classes.

Most hard negatives of one class are background windows that other classes also cache, so a
window's feature row is stored once, in a block per image, and each class keeps only keys
(image index, window index) into those blocks, the way R-CNN's caches key their rows. A block row is
freed as soon as no class references it any more. The blocks live in a ``svm.row_store.RowStore``,
which keeps them in memory up to its budget and in files beyond it, with the same rows either way.
"""

from __future__ import annotations

import numpy as np

from svm.row_store import RowStore

_EMPTY_KEYS = np.zeros((0, 2), dtype=np.int64)


class NegativeCache:
    """Negative feature rows of every image, shared between K classes.

    Size: ``num_rows * D * 4`` bytes, where ``num_rows`` is the number of distinct windows any
    class still caches (at most the sum of the per-class counts), in memory or, past the store's
    budget, on disk.

    Args:
        num_classes: K. dim: D.
        store: holds the blocks under the keys ("neg", image) (None: a store of its own, unbounded).
    """

    def __init__(self, num_classes: int, dim: int, store: RowStore | None = None) -> None:
        self.dim = dim
        self.store = store if store is not None else RowStore(dim)  # ("neg", image) -> (B, D) float32 rows
        self._windows: dict[int, np.ndarray] = {}  # image -> (B,) ascending window ids of the rows
        self._keys = [_EMPTY_KEYS for _ in range(num_classes)]  # (M_k, 2) sorted (image, window)

    @property
    def num_rows(self) -> int:
        """Distinct feature rows stored, over all classes."""
        return sum(int(w.size) for w in self._windows.values())

    @property
    def nbytes(self) -> int:
        """Bytes of the stored rows, in memory and on disk."""
        return self.num_rows * self.dim * 4

    def count(self, k: int) -> int:
        """Number of negatives cached for class k."""
        return int(self._keys[k].shape[0])

    def keys(self, k: int) -> np.ndarray:
        """(M_k, 2) int64 (image, window) keys of class k, in the row order of :meth:`features`."""
        return self._keys[k]

    def add(self, image: int, features: np.ndarray, windows: list[np.ndarray]) -> list[int]:
        """Cache windows of one image for each class; already cached (class, window) pairs are skipped.

        Args:
            image: the image's index in the training order.
            features: (R, D) float32 scaled features of all the image's windows.
            windows: per class, the (M_k,) window indices to cache.
        Returns:
            per class, how many negatives were actually added.
        """
        added = []
        for k, win in enumerate(windows):
            old = self._keys[k]
            mine = old[old[:, 0] == image, 1]
            new = np.setdiff1d(np.asarray(win, dtype=np.int64), mine)
            if new.size:
                keys = np.concatenate([old, np.stack([np.full_like(new, image), new], 1)])
                self._keys[k] = keys[np.lexsort((keys[:, 1], keys[:, 0]))]
            added.append(int(new.size))
        if sum(added):
            wanted = np.union1d(self._windows.get(image, np.zeros(0, np.int64)),
                                np.concatenate([np.asarray(w, np.int64) for w in windows]))
            self._windows[image] = wanted
            self.store.put(("neg", image), features[wanted])
        return added

    def features(self, k: int) -> np.ndarray:
        """(M_k, D) float32 copy of the cached negatives of class k, in the order of :meth:`keys`."""
        keys = self._keys[k]
        out = np.empty((keys.shape[0], self.dim), dtype=np.float32)
        images, starts = np.unique(keys[:, 0], return_index=True)
        ends = np.append(starts[1:], keys.shape[0])
        for image, s, e in zip(images.tolist(), starts, ends):
            rows = np.searchsorted(self._windows[image], keys[s:e, 1])
            out[s:e] = self.store.get(("neg", image))[rows]
        return out

    def keep(self, k: int, index: np.ndarray) -> None:
        """Keep only the negatives ``index`` (into :meth:`keys` order) of class k; free unused rows."""
        old = self._keys[k]
        kept = np.zeros(old.shape[0], dtype=bool)
        kept[np.asarray(index, dtype=np.int64)] = True
        self._keys[k] = old[kept]
        touched = np.unique(old[~kept, 0])  # only images that lost a key can free rows
        for image in touched.tolist():
            used = np.unique(np.concatenate([self._image_windows(c, image) for c in range(len(self._keys))]))
            if used.size == 0:
                self.store.drop(("neg", image))
                del self._windows[image]
            elif used.size < self._windows[image].size:
                rows = np.searchsorted(self._windows[image], used)
                self.store.put(("neg", image), self.store.get(("neg", image))[rows])  # a copy: the old block goes
                self._windows[image] = used

    def _image_windows(self, k: int, image: int) -> np.ndarray:
        keys = self._keys[k]
        lo, hi = np.searchsorted(keys[:, 0], [image, image + 1])
        return keys[lo:hi, 1]
