"""Selective search in worker processes: the images in order, computed up to 2 x ``workers`` ahead.

Workers are forkserver processes that only run OpenCV (one thread each) and return rects, so no
worker ever touches torch. ``proposals.store`` caches a split's results; :func:`iter_proposals`
streams a few images' uncached (``tools/demo.py``).
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from data.errors import InputError
from data.records import ImageRecord
from proposals.config import ProposalConfig
from proposals.selective_search import RawProposals, compute_raw, filter_boxes, rects_to_boxes


def _init_worker() -> None:
    # Ctrl-C goes to the parent, which terminates the pool; workers must not die mid-way first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _work(task: tuple[str, str, ProposalConfig]) -> tuple[str, RawProposals | None, str]:
    """One worker task: (image id, path, config) -> (image id, raw proposals or None, error)."""
    image_id, path, cfg = task
    try:
        return image_id, compute_raw(Path(path), cfg), ""
    except InputError as err:
        return image_id, None, str(err)
    except cv2.error as err:  # OpenCV failing on an odd image must not stop the split
        return image_id, None, f"{path}: OpenCV error ({str(err).strip().splitlines()[-1]})"


def run_tasks(records: Iterable[ImageRecord], cfg: ProposalConfig,
               workers: int) -> Iterator[tuple[str, RawProposals | None, str]]:
    """Results of ``_work`` over ``records``, in order, serially or in a process pool.

    ``records`` is consumed lazily, at most 2 x ``workers`` ahead of the results, since taking a
    record claims its cache entry (``proposals.store``).
    """
    tasks = ((r.image_id, str(r.path), cfg) for r in records)
    first = next(tasks, None)
    if first is None:
        return
    if workers <= 1:
        yield _work(first)
        yield from map(_work, tasks)
        return
    # forkserver, not fork: a child forked from a process whose torch/OpenMP or OpenCV thread
    # pools have run can deadlock (seen when proposals follow training in one process). The
    # server is a fresh interpreter that only imports this module, and forks workers from it, so
    # no worker inherits the descriptor of a claim either.
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    with ctx.Pool(workers, initializer=_init_worker) as pool:
        pending = deque([pool.apply_async(_work, (first,))])
        for task in tasks:
            pending.append(pool.apply_async(_work, (task,)))
            if len(pending) >= 2 * workers:  # images take 0.5-3 s each: two per worker keeps all busy
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


@dataclass(frozen=True)
class ImageProposals:
    """One image's proposals as :func:`iter_proposals` yields them.

    Attributes:
        record: the image.
        boxes: (R, 4) float32 boxes of the original image, ranked.
        seconds: wall-clock seconds its worker spent reading and segmenting the image.
        segmented_size: (height, width) selective search ran at (``ProposalConfig.resize_longer``).
    """

    record: ImageRecord
    boxes: np.ndarray
    seconds: float
    segmented_size: tuple[int, int]


def iter_proposals(records: Sequence[ImageRecord], cfg: ProposalConfig, workers: int) -> Iterator[ImageProposals]:
    """Each record's proposals, in record order, uncached (``tools/demo.py``'s images).

    With ``workers`` > 1 worker processes compute up to 2 x ``workers`` images ahead, so what the
    caller does between two items (detection) overlaps selective search; the boxes are those of
    ``selective_search.propose`` on the decoded image, whatever ``workers`` is.

    Raises:
        InputError: an image cannot be read or segmented.
    """
    by_id = {r.image_id: r for r in records}
    if len(by_id) != len(records):
        raise InputError("iter_proposals", "image ids must be distinct")
    for image_id, raw, error in run_tasks(records, cfg, workers):
        if raw is None:
            raise InputError(by_id[image_id].path, error)
        boxes = filter_boxes(rects_to_boxes(raw.rects, raw.scale_xy), raw.size, cfg)
        segmented = (round(raw.size[0] * float(raw.scale_xy[1])), round(raw.size[1] * float(raw.scale_xy[0])))
        yield ImageProposals(by_id[image_id], boxes, raw.seconds, segmented)
