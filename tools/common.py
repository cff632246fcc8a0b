"""What every command-line tool shares: logging set-up and one-line errors instead of tracebacks."""

from __future__ import annotations

import errno
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from data.errors import InputError


def setup_logging(log_file: Path | None = None, verbose: bool = False, rank: int | None = None) -> None:
    """Log to stderr and, when given, append to ``log_file`` (created with its folder).

    ``rank``: a torchrun job's rank, shown in every line (None: a single process, no prefix).
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    # A log line that cannot be written (a full disk) must not print a traceback per line: the
    # failing write of the tool's own output then ends it with one line (run_cli).
    logging.raiseExceptions = False
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s " + ("" if rank is None else f"[rank {rank}] ") + "%(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        handlers=handlers,
        force=True,
    )


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None,
            resume_hint: str = "run the same command again to resume") -> int:
    """Run a tool's ``main``; what stops it becomes one line on stderr instead of a traceback.

    Bad user input (InputError) exits with 2; a failed file operation (OSError: a full disk,
    no permission) names the file and exits with 1; Ctrl-C exits with 130. ``resume_hint`` tells
    how to continue after the last two: every file is written atomically, so nothing half-written
    is left for the next run to trust.
    """
    try:
        return int(main(argv) or 0)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        code = errno.errorcode.get(err.errno or 0, "")
        fix = "free some disk space, then " if err.errno == errno.ENOSPC else ""
        print(f"error: {where}{err.strerror or err}{f' ({code})' if code else ''}; {fix}{resume_hint}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted; {resume_hint}", file=sys.stderr)
        return 130
