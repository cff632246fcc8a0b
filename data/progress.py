"""Progress of a long loop that a user can plan by, on a terminal and in a log file alike.

With bars on, tqdm's bar on stderr. With bars off (``--no-progress``, tools/reproduce.py's runs, a
job whose output goes to a file), the same tqdm object writes no bar but a log line every
``LOG_EVERY_S`` seconds: what is done of how many, the time so far and left, the rate, and the
loop's figures (a loss); a loop shorter than that logs nothing. Every loop of the pipeline over
images, windows or steps goes through ``track``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

log = logging.getLogger(__name__)

LOG_EVERY_S = 300.0  # a line every 5 minutes: a 1-hour stage logs 12
LOG_FORMAT = "{desc}: {n_fmt}/{total_fmt} ({percentage:.0f} %) in {elapsed}, {remaining} left, {rate_fmt}{postfix}"


class _LogLines(io.TextIOBase):
    """A file for tqdm that turns each refresh of the bar into one log line."""

    def write(self, text: str) -> int:
        line = text.strip("\r\n ")
        if line:
            log.info("%s", line)
        return len(text)

    def flush(self) -> None:  # tqdm flushes after each refresh: nothing is buffered here
        pass


class _LoggedBar(tqdm):
    """tqdm writing into ``_LogLines``: a new postfix waits for the next line instead of writing one.

    It looks at the clock after every step (``miniters=1``): with tqdm's adaptive ``miniters`` it
    would look every few steps, and tqdm's monitor thread would write the line in its place with
    the count of the previous one (a stale line, five minutes late)."""

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        super().set_postfix(ordered_dict, refresh=False, **kwargs)


def track(iterable: Iterable[Any] | None = None, *, desc: str, show: bool, total: int | None = None,
             every_s: float = LOG_EVERY_S, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, desc=desc, total=total, **kwargs)``: a bar where ``show``, else a log line
    every ``every_s`` seconds after the first ``every_s`` (used like tqdm: iterate, ``update``,
    ``set_postfix``)."""
    if show:
        return tqdm(iterable, desc=desc, total=total, **kwargs)
    kwargs.pop("leave", None)  # a log line is never erased
    return _LoggedBar(iterable, desc=desc, total=total, file=_LogLines(), bar_format=LOG_FORMAT, leave=False,
                miniters=1, mininterval=every_s, maxinterval=every_s, delay=every_s, ascii=True, **kwargs)
