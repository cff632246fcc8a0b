"""Put the mAP of several trained work dirs side by side (SPP 1-scale, SPP 5-scale, R-CNN, ...).

Reads WORK_DIR/config.yaml and WORK_DIR/results/map_<split>_<metric>.json (written by
tools/test_det.py) of each work dir and writes a Markdown table: one column per work dir (method,
backbone, scales, proposals), one row per class, and the mAP. Comparisons are only fair between
work dirs trained on the same data with the same backbone and proposals; the table prints those
settings so a reader can check.

Example:
  python tools/accuracy_table.py --split test --out runs/accuracy.md runs/acc_spp1 runs/acc_spp5 runs/acc_rcnn
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from data.errors import InputError
from detection.workdir import WorkDir
from tools.common import run_cli


def column(work: WorkDir, split: str, metric: str) -> tuple[str, dict]:
    cfg = work.load_config()
    path = work.root / "results" / f"map_{split}_{metric}.json"
    if not path.is_file():
        raise InputError(path, f"missing; run tools/test_det.py --work-dir {work.root} --split {split} first")
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise InputError(path, "not valid JSON") from None
    name = f"SPP {len(cfg.features.scales)}-scale" if cfg.method == "spp" else "R-CNN"
    meta = work.read_meta()
    inputs = (f"scales {list(cfg.features.scales)}" if cfg.method == "spp"
              else f"warped windows with {cfg.features.context_padding} px context")
    settings = (f"{cfg.features.backbone}, {inputs}, "
                f"<= {cfg.proposals.max_proposals} proposals, train {meta.get('train_split', '?')}"
                f" ({meta.get('num_train_images', '?')} images)")
    return f"{name} ({work.root.name})", {"settings": settings, **result}


def markdown(columns: list[tuple[str, dict]], split: str, metric: str) -> str:
    classes = list(columns[0][1]["ap"])
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}"  # noqa: E731
    lines = [f"| AP % ({metric}, {split}) | " + " | ".join(n for n, _ in columns) + " |",
             "|---|" + "---|" * len(columns)]
    lines += [f"| {c} | " + " | ".join(pct(r["ap"].get(c)) for _, r in columns) + " |" for c in classes]
    lines.append("| **mAP** | " + " | ".join(f"**{pct(r['map'])}**" for _, r in columns) + " |")
    lines.append("")
    lines += [f"- {n}: {r['settings']}" for n, r in columns]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("work_dirs", type=Path, nargs="+", help="trained and tested work dirs")
    p.add_argument("--split", default="test", help="tested split (default: test)")
    p.add_argument("--metric", default="voc07", choices=("voc07", "voc10"))
    p.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = p.parse_args(argv)
    columns = [column(WorkDir(w), args.split, args.metric) for w in args.work_dirs]
    text = markdown(columns, args.split, args.metric)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
