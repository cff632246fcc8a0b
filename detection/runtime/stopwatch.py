"""A small stopwatch: seconds per stage per image, CUDA-synchronised when on a GPU."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import torch


class Stopwatch:
    """Accumulates seconds per named stage for the current image; ``next_image`` closes it.

    Usage::

        sw = Stopwatch(device)
        for image in images:
            with sw.stage("conv"):
                ...
            sw.next_image()
        sw.medians()  # {"conv": median seconds per image, ...}
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.cuda = torch.device(device).type == "cuda"
        self.current: dict[str, float] = defaultdict(float)
        self.images: list[dict[str, float]] = []

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.current[name] += time.perf_counter() - start

    def next_image(self) -> None:
        self.images.append(dict(self.current))
        self.current = defaultdict(float)

    def drop_image(self) -> None:
        """Forget the current image's seconds (an image whose work was read from a cache)."""
        self.current = defaultdict(float)

    def reset(self) -> None:
        self.current = defaultdict(float)
        self.images = []

    def stages(self) -> list[str]:
        names: dict[str, None] = {}
        for img in self.images:
            names.update(dict.fromkeys(img))
        return list(names)

    def medians(self) -> dict[str, float]:
        """Median seconds per image of each stage (0 for images where a stage did not run)."""
        return {s: statistics.median(img.get(s, 0.0) for img in self.images) for s in self.stages()}

    def median_total(self, stages: list[str] | None = None) -> float:
        """Median over images of the summed seconds of ``stages`` (all stages by default)."""
        names = stages if stages is not None else self.stages()
        return statistics.median(sum(img.get(s, 0.0) for s in names) for img in self.images) if self.images else 0.0


class NullStopwatch(Stopwatch):
    """A stopwatch that records nothing and never synchronises (training loops)."""

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        yield
