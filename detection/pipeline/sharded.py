"""Per-image stages split across the ranks of a torchrun job (see ``detection.runtime.distributed``).

Each rank computes its shard (image i -> rank i % world) into the stage's per-image cache, the
ranks meet at a gather, and then every rank reads every image's entry from the cache. A single
process (``Dist.active`` false) calls the stage's own function exactly as before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from data.records import ImageRecord
from detection.features.conv5 import Conv5Cache
from detection.runtime.distributed import Dist
from proposals.config import ProposalConfig
from proposals.store import ProposalRun, ensure_proposals


def sharded_proposals(records: Sequence[ImageRecord], cache_dir: Path, cfg: ProposalConfig, workers: int,
                      progress: bool, d: Dist) -> ProposalRun:
    """``proposals.store.ensure_proposals`` over ``records``, each rank computing its shard.

    ``workers`` are this rank's worker processes. The result is the one a single process gets:
    boxes of every image in record order, every rank's failures (in record order), and
    ``computed`` in record order; ``seconds_per_image`` is the mean over the images computed in
    this run (all ranks) and ``images_per_second`` the sum of the ranks' throughputs.
    """
    if not d.active:
        return ensure_proposals(records, cache_dir, cfg, workers, progress)
    unique = list({r.image_id: r for r in records}.values())
    mine = ensure_proposals(d.shard(unique), cache_dir, cfg, workers, progress and d.is_main)
    parts = d.all_gather((mine.failed, mine.computed, mine.seconds_per_image, mine.images_per_second))
    failed_any = {k: v for failed, *_ in parts for k, v in failed.items()}
    computed_any = {i for _, computed, *_ in parts for i in computed}
    # Every other image now has a valid entry on disk: this loads them (nothing left to compute).
    full = ensure_proposals([r for r in unique if r.image_id not in failed_any], cache_dir, cfg, 1, False)
    timed = [(len(c), s) for _, c, s, _ in parts if c and not math.isnan(s)]
    spi = sum(n * s for n, s in timed) / sum(n for n, _ in timed) if timed else full.seconds_per_image
    rates = [ips for *_, ips in parts if not math.isnan(ips)]
    return ProposalRun(
        boxes=full.boxes,
        failed={r.image_id: failed_any[r.image_id] for r in unique if r.image_id in failed_any},
        seconds_per_image=spi,
        computed=tuple(r.image_id for r in unique if r.image_id in computed_any),
        images_per_second=sum(rates) if rates else math.nan,
    )


def sharded_conv5(cache: Conv5Cache, records: Sequence[ImageRecord], progress: bool, d: Dist) -> None:
    """``Conv5Cache.ensure`` over ``records``, each rank computing its shard; returns when all are cached."""
    if not d.active:
        cache.ensure(records, progress)
        return
    cache.ensure(d.shard(records), progress and d.is_main)
    d.barrier()
