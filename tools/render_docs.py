"""Render the generated pages from what they document, so that no figure or flag in them is typed by hand.

- docs/results.md and the README's results table: from the run records of tools/reproduce.py
  (docs/results/records/) and the table specs (tools/configs/<table>/table.yaml);
- docs/performance.md's section on how the cost grows (between its scaling markers) and its plot
  (docs/<table>.svg, drawn the same bytes every time; none before a record): from a scaling table's
  records;
- docs/configuration.md: every config key, its default, the recipes' values and its meaning, from
  the config dataclasses and their comments;
- docs/commands.md: every command's --help.

--check writes nothing and exits with 1, naming the pages that differ from what they would render
(tests/test_docs.py runs it: a hand-edited figure fails the tests).

Examples:
  python tools/render_docs.py            # after tools/reproduce.py, or a change of a config or a flag
  python tools/render_docs.py --check
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from data.cache import atomic_write_text
from data.errors import InputError
from detection.classification.config import ClassifierConfig
from detection.config import DetectorConfig, load_train_config
from detection.runtime.config_reference import reference_table
from eval.orderings import TIE
from eval.results_page import GENERATED, readme_table, table_section
from eval.run_records import TableSpec, load_specs
from eval.scaling_page import scaling_section
from eval.scaling_plot import scaling_svg
from tools._cli import run_cli

REPO = Path(__file__).resolve().parent.parent
README_BEGIN, README_END = "<!-- results table: begin -->", "<!-- results table: end -->"
STATS_BEGIN, STATS_END = "<!-- dataset statistics: begin -->", "<!-- dataset statistics: end -->"
SCALING_BEGIN, SCALING_END = "<!-- scaling section: begin -->", "<!-- scaling section: end -->"
HELP_WIDTH = "100"  # columns of the --help texts in docs/commands.md, whatever the terminal

RESULTS_INTRO = """# Results against the paper

Every figure on this page is rendered from a run record: a small JSON file per trained and tested
run (table x row x seed) under `docs/results/records/`, written by `tools/reproduce.py`, which ran
the commands the record names. Each table is a folder under `tools/configs/`: its spec
(`table.yaml`: rows, seeds, data, the paper's figures) and one config per row. mAP is VOC 2007's
11-point mean AP on the embedded set's 200 test images, as mean ± sample standard deviation over
training seeds (a single seed moves the main job by about a point, so smaller differences are
noise). "paper" is the paper's figure on PASCAL VOC 2007 with ImageNet-pretrained ZF-5: a yardstick
of the method's behaviour, not a target for a synthetic set. Train time is the median over seeds of
the training's wall time; rows and seeds share per-image caches, so a run after another may reuse its
proposals, conv5 maps and R-CNN's pool5 vectors and train in a fraction of the first one's time (the
cost from cold caches is docs/performance.md's). Test time is the median seconds per image of
detection, selective search excluded, as the papers time it. Under a table, "the paper's orderings" compares two of its rows seed
by seed (the spec's `orderings`): the difference in points, and whether the paper's order holds in
every seed, is reversed in every seed, or is mixed; a difference under {tie} points is a tie.
""".format(tie=TIE)

CONFIG_INTRO = """# Configuration

A detector's config is built in this order, each step overriding the one before:

1. the defaults (the "default" column): the papers' values, except where the meaning says why ours
   differ (no ImageNet ZF-5 offline, a CPU); each stage's config sits beside the stage it
   configures, and `detection/config.py` composes them;
2. for fc6 / fc7 that start from scratch (every trunk but a classifier of `tools/train_cls.py`):
   the recipe that learns from scratch (`FROM_SCRATCH_FC` in `detection/config.py`; the
   "train_det" column shows the values a plain `tools/train_det.py` trains with);
3. `--config FILE` (YAML, the same nesting; `tools/configs/paper.yaml` restores the papers' recipe);
4. `--set KEY=VALUE` (dotted keys, YAML values), repeatable.

The resolved config is saved as `WORK_DIR/config.yaml`; `--resume` refuses another. After training,
`test_det.py`, `demo.py` and `speed_report.py` accept `--set` of the test-time keys only (`head.svd_fc6`,
`head.svd_fc7`, `head.int8`, `proposals.resize_longer`, `test.*`). A cell is empty where the value
equals the default. The "main job" column is `tools/configs/main/spp_mobilenet.yaml` resolved.
This page is generated from the config dataclasses and their comments (`tools/render_docs.py`).
"""


def results_page(configs: Path, records: Path) -> str:
    specs = load_specs(configs)
    sections = [table_section(spec, records, REPO) for spec in specs]
    return "\n".join([GENERATED, "", RESULTS_INTRO, *sections]).rstrip() + "\n"


def replace_block(text: str, begin: str, end: str, block: str, where: str) -> str:
    """``text`` with what lies between the markers ``begin`` and ``end`` replaced by ``block``."""
    if begin not in text or end not in text:
        raise InputError(where, f"no {begin} ... {end} block")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{block}\n{end}{tail}"


def dataset_statistics(records: Path) -> str:
    """The statistics and the linear probe tools/reproduce.py recorded of each dataset it wrote."""
    parts = []
    for path in sorted((records / "data").glob("*.md")):
        parts += [f"`{path.stem}` (preset, trainval, test images, seed), recorded by tools/reproduce.py:", "",
                  path.read_text().rstrip(), "", *probe_line(path.with_name(f"{path.stem}-probe.json"))]
    return "\n".join(parts).rstrip() or "No dataset recorded yet: run tools/reproduce.py."


def probe_line(path: Path) -> list[str]:
    """The probe record at ``path`` as one paragraph, or nothing when there is none."""
    if not path.is_file():
        return []
    p = json.loads(path.read_text())
    classes = ", ".join(f"{name} {100 * v:.0f}" for name, v in p["per_class"].items())
    return [f"Linear probe (`tools/probe.py`, frozen {p['backbone']} ({p['pretrained']}) on the ground-truth "
            f"boxes): **{100 * p['top1']:.1f} %** top-1 over {p['test_objects']} test objects (majority class "
            f"{100 * p['chance']:.1f} %; C {p['C']} by cross-validation). Per class: {classes}.", ""]


def configuration_page() -> str:
    detector = [DetectorConfig(), load_train_config(None, []),
                load_train_config(REPO / "tools/configs/main/spp_mobilenet.yaml", [])]
    parts = [GENERATED.replace("docs/results/records/ (tools/reproduce.py writes them)", "the config dataclasses"), "",
             CONFIG_INTRO,
             "## Detector (`tools/train_det.py`)", "",
             reference_table(detector, ["default", "train_det", "main job"]), "",
             "## Classifier (`tools/train_cls.py`)", "",
             "Built the same way, without step 2 (its recipe is its defaults).", "",
             reference_table([ClassifierConfig()], ["default"]), ""]
    return "\n".join(parts)


def command_help(name: str) -> str:
    """``tools/<name>.py --help`` as a user's terminal of HELP_WIDTH columns shows it."""
    module = importlib.import_module(f"tools.{name}")
    out, argv0, columns = io.StringIO(), sys.argv[0], os.environ.get("COLUMNS")
    os.environ["COLUMNS"], sys.argv[0] = HELP_WIDTH, f"{name}.py"
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            module.main(["--help"])
    finally:
        sys.argv[0] = argv0
        if columns is None:
            os.environ.pop("COLUMNS")
        else:
            os.environ["COLUMNS"] = columns
    return out.getvalue().rstrip()


def commands_page() -> str:
    names = sorted(p.stem for p in (REPO / "tools").glob("*.py")
                   if not p.stem.startswith("_") and not p.read_text().startswith('"""Deprecated'))
    parts = [GENERATED.replace("docs/results/records/ (tools/reproduce.py writes them)", "each command's argparse"), "",
             "# Commands", "", "Every command's `--help`, as it prints it.", ""]
    parts += [f"- [`tools/{n}.py`](#tools{n}py)" for n in names] + [""]
    for name in names:
        parts += [f"## `tools/{name}.py`", "", "```text", command_help(name), "```", ""]
    return "\n".join(parts)


def scaling_pages(specs: list[TableSpec], records: Path) -> dict[Path, str | None]:
    """docs/performance.md with the section of every scaling table between its markers, and each
    table's plot, docs/<table>.svg (None: no plot, as no axis has 2 records; the file must not be there)."""
    scaling = [s for s in specs if s.kind == "scaling"]
    plots = {s.id: scaling_svg(s, records) for s in scaling}
    sections = [scaling_section(s, records, f"{s.id}.svg" if plots[s.id] else None) for s in scaling]
    path = REPO / "docs/performance.md"
    page = replace_block(path.read_text(encoding="utf-8"), SCALING_BEGIN, SCALING_END,
                         "\n\n".join(sections) or "No scaling table (tools/configs/*/table.yaml, kind: scaling).",
                         "docs/performance.md")
    return {path: page, **{REPO / "docs" / f"{table}.svg": svg for table, svg in plots.items()}}


def pages(configs: Path, records: Path) -> dict[Path, str | None]:
    """Each generated page's path and its rendered text (None: a file that must not be there)."""
    readme_path, datasets_path = REPO / "README.md", REPO / "docs/datasets.md"
    return {**scaling_pages(load_specs(configs), records),
            REPO / "docs/results.md": results_page(configs, records),
            readme_path: replace_block(readme_path.read_text(encoding="utf-8"), README_BEGIN, README_END,
                                       readme_table(load_specs(configs), records), "README.md"),
            datasets_path: replace_block(datasets_path.read_text(encoding="utf-8"), STATS_BEGIN, STATS_END,
                                         dataset_statistics(records), "docs/datasets.md"),
            REPO / "docs/configuration.md": configuration_page(),
            REPO / "docs/commands.md": commands_page()}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page differs from its render")
    p.add_argument("--configs", type=Path, default=REPO / "tools/configs", help="the table specs")
    p.add_argument("--records", type=Path, default=REPO / "docs/results/records", help="the run records")
    args = p.parse_args(argv)
    stale = []
    for path, text in pages(args.configs, args.records).items():
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        if old != text:
            stale.append(path.relative_to(REPO))
            if not args.check and text is None:
                path.unlink()  # a plot of records that are gone
            elif not args.check:
                atomic_write_text(path, text)
    verb = "differ from what they render" if args.check else "rendered"
    print(f"{verb}: {', '.join(map(str, stale))}" if stale else "every page is up to date")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
