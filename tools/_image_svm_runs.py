"""One record of an image_svm table (tools/reproduce.py): tools/image_svm.py, whole-image SPP vectors
and linear SVMs, on the table's data with the row's flags. Its --json goes into the work dir named by
the hash of the record's resolved settings, so a run done once is read again, not repeated; its
vectors go to the cache every row and table shares."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

from data.errors import InputError
from eval.run_records import RowSpec, TableSpec
from tools import image_svm
from tools._runs import ensure_data, execute, tool, work_dir

FOLDER_FLAGS = ("embedded", "train_per_class", "test_per_class", "splits")  # data keys that are the tool's flags


def data_args(spec: TableSpec, root: Path | None) -> list[str]:
    """The tool's data flags: ``--data-root`` of the table's detection set (``root``: VOC 2007's
    classification task), or the embedded classification set as a folder and its split protocol."""
    if not spec.on_folder:
        return ["--data-root", str(root)]
    unknown = set(spec.data) - set(FOLDER_FLAGS)
    if unknown:
        raise InputError(f"{spec.id}/table.yaml", f"data: unknown keys {sorted(unknown)} (a folder's: {FOLDER_FLAGS})")
    return [a for k in FOLDER_FLAGS if k in spec.data for a in (f"--{k.replace('_', '-')}", str(spec.data[k]))]


def tool_seed(spec: TableSpec, seed: int) -> int:
    """The tool's --seed for the record of ``seed``: ``seed`` on a detection set (its SVMs' seed; the
    data differ by seed there), ``seed`` x splits on a folder, so that two records draw disjoint
    splits (split i of record s has seed s x splits + i)."""
    if not spec.on_folder:
        return seed
    return seed * int(spec.data.get("splits", image_svm.CALTECH_SPLITS))


def row_flags(spec: TableSpec, row: RowSpec, seed: int, extra: Sequence[str]) -> list[str]:
    """``extra`` (the trunk's --backbone / --pretrained), the row's flags and the seed."""
    return [*extra, *row.args, "--seed", str(tool_seed(spec, seed))]


def settings(spec: TableSpec, row: RowSpec, seed: int, extra: Sequence[str] = ()) -> dict:
    """tools/image_svm.py's settings for this row x seed (what decides its figure), from its flags,
    without running it.

    Raises:
        InputError: a flag the tool does not take, or a bad value.
    """
    argv = [*data_args(spec, Path("DATA")), *row_flags(spec, row, seed, extra)]
    usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage):
            args = image_svm.parse_args(argv)
    except SystemExit:
        message = usage.getvalue().strip().splitlines()[-1:] or ["bad flags"]
        raise InputError(f"{spec.id}/table.yaml", f"row {row.id!r}: {message[0]}") from None
    return image_svm.settings(args)


def run_image_svm(spec: TableSpec, row: RowSpec, seed: int, sha1: str, args: argparse.Namespace,
                  extra: Sequence[str] = ()) -> dict:
    """Run (unless done) tools/image_svm.py for one row x seed; the record's scores, times and command."""
    data = ensure_data(spec, args.runs_dir, args.records, args.device, seed)
    out = work_dir(args.runs_dir, sha1) / "image_svm.json"
    command = tool("image_svm.py", *data_args(spec, data), *row_flags(spec, row, seed, extra),
                   "--cache-dir", str(args.runs_dir / "cache"), "--json", str(out), "--device", args.device,
                   "--no-progress")
    if not out.is_file():
        execute(command, f"{spec.id}/{row.id} seed {seed}")
    r = json.loads(out.read_text())
    computed = r.get("computed_images", 0)
    return {"task": r["task"], "metric": r["metric"], "mean": r["mean"], "std": r["std"], "scores": r["scores"],
            "per_class": r["per_class"], "dim": r["dim"],
            "images": r.get("images", r.get("train_images", 0) + r.get("test_images", 0)),
            "extract_s": round(r["extract_s"], 2), "svm_s": round(r["svm_s"], 2),
            "train_s": round(r["svm_s"], 2),  # the SVMs' training (and scoring); the vectors are timed per image
            # seconds per vector computed (None when every vector came from the cache)
            "vector_s_per_image": round(r["extract_s"] / computed, 4) if computed else None,
            "commands": [" ".join(command)], "work_dir": str(out.parent)}
