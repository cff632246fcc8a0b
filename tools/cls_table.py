"""SPP-net's Table 2 / 3 on our data: top-1 error of several classifier work dirs, grouped by row.

Each WORK_DIR is one run of tools/train_cls.py. Runs with the same backbone, pooling and sizes
(differing only in seed) form one row; the table gives the mean and the sample standard deviation
of the held-out top-1 error (%) over them, for the center-crop and the full-image views.

Example (three seeds per row, the flags of the README's Table 2 rows):
  for s in 0 1 2; do
    python tools/train_cls.py --work-dir runs/t2/nospp_$s --pool fixed --sizes 112 --set seed=$s
    python tools/train_cls.py --work-dir runs/t2/single_$s --sizes 112 --set seed=$s
    python tools/train_cls.py --work-dir runs/t2/multi_$s --set seed=$s
  done
  python tools/cls_table.py runs/t2/*
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data.cache import atomic_write_text
from data.errors import InputError
from detection.classification.config import ClassifierConfig
from detection.classification.workdir import ClassifierWorkDir
from detection.config_io import load_config
from tools._cli import run_cli

VIEWS = ("center_crop", "full_image")


def row_name(cfg: ClassifierConfig) -> str:
    m, sizes = cfg.model, cfg.train.sizes
    kind = "no SPP" if m.pool == "fixed" else ("SPP single-size" if len(sizes) == 1 else "SPP multi-size")
    return f"{m.backbone}, {kind} ({'+'.join(map(str, sizes))})"


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    pct = 100 * np.asarray(values)
    spread = f" ± {pct.std(ddof=1):.2f}" if len(pct) > 1 else ""
    return f"{pct.mean():.2f}{spread}"


def table(work_dirs: Sequence[Path]) -> str:
    """Markdown: one row per configuration, mean ± std of top-1 error (%) per view, and n runs."""
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: {v: [] for v in VIEWS} | {"seeds": []})
    for root in work_dirs:
        work = ClassifierWorkDir(root)
        if not work.eval.is_file():
            raise InputError(work.eval, "missing; finish training with tools/train_cls.py --resume")
        cfg = load_config(work.config, base=ClassifierConfig())
        views = json.loads(work.eval.read_text())["views"]
        row = rows[row_name(cfg)]
        row["seeds"].append(cfg.seed)
        for v in VIEWS:
            if views.get(v):
                row[v].append(views[v]["top1"])
    lines = ["| network | top-1 error %, center crop | top-1 error %, full image | runs (seeds) |",
             "|---|---|---|---|"]
    for name, row in rows.items():
        seeds = ", ".join(map(str, row["seeds"]))
        lines.append(f"| {name} | {_cell(row['center_crop'])} | {_cell(row['full_image'])} | "
                     f"{len(row['seeds'])} ({seeds}) |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("work_dirs", type=Path, nargs="+", metavar="WORK_DIR", help="classifier work dirs")
    p.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = p.parse_args(argv)
    text = table(args.work_dirs)
    print(text)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
