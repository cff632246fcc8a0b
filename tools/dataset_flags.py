"""The dataset flags, the same in every tool: --data-root DIR [--split S] (VOC layout) or
--ann-file FILE --image-dir DIR [--split NAME] (COCO json). ``data.datasets`` does the opening."""

from __future__ import annotations

import argparse
from pathlib import Path

from data.datasets import open_dataset
from data.records import Dataset


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
