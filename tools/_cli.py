"""What the command-line tools share (private: not a command): logging set-up, one-line errors instead of
tracebacks, ``--no-progress``, the dataset flags, the same in every tool: --data-root DIR [--split S]
(VOC layout) or --ann-file FILE --image-dir DIR [--split NAME] (COCO json; ``data.datasets`` does
the opening), and the warnings of flags kept one release after they went."""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from data.datasets import open_dataset
from data.errors import InputError
from data.records import Dataset

# train_det / test_det --overlap (overlapping selective search with conv5 / detection) was measured
# slower on 2 cores and went; the flag is accepted with this warning for one release.
OVERLAP_GONE = ("--overlap is gone (overlapping selective search with the next stage was slower on 2 cores: "
                "training 3:11 against 2:31, testing a fifth slower); it is ignored")


def warn_gone_flags(args: argparse.Namespace) -> None:
    """Print one warning line per flag that is accepted but no longer does anything."""
    if getattr(args, "overlap", False):
        print(f"warning: {OVERLAP_GONE}", file=sys.stderr)


def add_no_progress(p: argparse.ArgumentParser) -> None:
    """``--no-progress``: every tool's, one meaning (``data.progress``)."""
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars: a log line every 5 minutes instead (done, time left, rate)")


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


def add_dataset_arguments(parser: argparse.ArgumentParser, default_split: str | None,
                          remembered: bool = False) -> None:  # fmt: skip
    """Add --data-root, --split, --ann-file and --image-dir to ``parser``.

    Args:
        default_split: the VOC split when --split is not given; None makes --split required with
            --data-root.
        remembered: the tool falls back to the dataset a work dir was trained on (test_det).
    """
    trained = " (default: the one the model was trained on)" if remembered else ""
    g = parser.add_argument_group(
        "dataset", "either --data-root DIR (a VOC-layout folder) or --ann-file FILE --image-dir DIR (a COCO json)")
    g.add_argument("--data-root", type=Path, metavar="DIR",
                   help="VOC 'year' folder holding Annotations/, JPEGImages/ and ImageSets/Main/" + trained)
    split = f"default: {default_split}" if default_split else "required with --data-root"
    g.add_argument("--split", metavar="S",
                   help=f"VOC: the split to read, ImageSets/Main/<S>.txt ({split}); with --ann-file only a name "
                        "for result files and caches (default: the json's file name without .json)")
    g.add_argument("--ann-file", type=Path, metavar="FILE",
                   help="COCO instances json (images, annotations, categories); iscrowd objects count as VOC's "
                        "difficult ones" + (" (default: the training json, with a warning)" if remembered else ""))
    g.add_argument("--image-dir", type=Path, metavar="DIR",
                   help="folder the json's file_name entries are relative to" + trained)
    parser.set_defaults(default_split=default_split)


def dataset_from_args(args: argparse.Namespace) -> Dataset:
    """The dataset the flags of :func:`add_dataset_arguments` name."""
    return open_dataset(args.data_root, args.split, args.ann_file, args.image_dir, args.default_split)
