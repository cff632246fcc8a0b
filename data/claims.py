"""Claims on cache entries, so that runs sharing a cache folder compute each entry once.

Protocol (every per-image cache follows it; all locks are advisory, between our own processes):

1. Look for a valid entry; if there is one, use it (no lock: entries are written atomically).
2. Otherwise claim the entry: an exclusive ``fcntl.flock`` on its lock file, ``.<entry name>.lock``
   next to it. Then look again: another run may have written the entry while we looked or
   waited. If it is there, use it and release the claim.
3. Otherwise compute the entry, write it atomically, and release the claim.

A run that finds an entry claimed by another either waits for the claim (:func:`claim`) or, when
it has other entries to do, skips it and comes back to it at the end (:func:`try_claim`, then
:func:`wait_for`). A run must never wait for a claim while holding one of its own, or two runs
could each wait for the other: a run first finishes (and releases) what it claimed, then
:func:`wait_for` waits until each skipped entry is free, and starts again at step 1 for it.

Why ``flock``: the kernel releases a lock when its process dies, so a killed run (Ctrl-C, OOM,
a crashed machine's NFS client aside) never leaves a stale claim that blocks the next run, unlike
an ``O_EXCL`` claim file. A lock belongs to one open file description, so two claims conflict even
between threads of one process or a parent and its worker processes; the descriptor is not
inherited across ``exec`` (Python's default), and worker processes are started before any claim
is taken (or by a forkserver), so a worker never keeps a parent's claim alive. Lock files are
empty and left in place: deleting one while another process waits on it would let a third lock
a new file of the same name.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)


def lock_path(entry: Path) -> Path:
    """The lock file of cache entry ``entry``: a hidden empty file next to it."""
    entry = Path(entry)
    return entry.with_name(f".{entry.name}.lock")


class Claim:
    """An exclusive claim on one cache entry, held until :meth:`release` (or the ``with`` block ends)."""

    def __init__(self, entry: Path, fd: int) -> None:
        self.entry, self._fd = Path(entry), fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = -1

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _open_lock(entry: Path) -> int:
    path = lock_path(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)


def try_claim(entry: Path) -> Claim | None:
    """Claim ``entry`` if nobody holds it now; None when another process (or thread) does."""
    fd = _open_lock(entry)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return Claim(entry, fd)


def claim(entry: Path, what: str = "cache entry") -> Claim:
    """Claim ``entry``, waiting (and saying so once) while another process holds it."""
    found = try_claim(entry)
    if found is not None:
        return found
    log.info("waiting for another run that is computing %s %s", what, entry)
    fd = _open_lock(entry)
    start = time.perf_counter()
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    log.info("%s %s is free after %.1f s", what, entry, time.perf_counter() - start)
    return Claim(entry, fd)


def wait_for(entry: Path, what: str = "cache entry") -> None:
    """Wait until no one holds a claim on ``entry`` (then look for the entry again)."""
    claim(entry, what).release()
