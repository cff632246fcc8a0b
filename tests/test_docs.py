"""The documentation cannot drift: generated pages equal what they render, a hand-edited figure is
caught, the README stays a short guide, links resolve, every command line shown uses flags its tool
has, and the Python example runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from eval.results_page import demo_lines, detector_table, image_svm_table, readme_table, table_section
from eval.run_records import load_spec, read_record, write_record
from tools import render_docs

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
HANDWRITTEN = [p for p in PAGES if p.name not in ("commands.md", "configuration.md", "results.md")]


def test_generated_pages_equal_what_they_render(capsys):
    """Results (from the run records), configuration (from the dataclasses), commands (from argparse)."""
    status = render_docs.main(["--check"])
    assert status == 0, capsys.readouterr().out + " -- run: python tools/render_docs.py"


def test_a_hand_edited_figure_differs_from_its_render(tmp_path):
    """A results table renders its records; the same page with one figure typed over is caught, in
    docs/results.md's tables and in the README's block alike."""
    folder = tmp_path / "configs" / "t"
    folder.mkdir(parents=True)
    (folder / "a.yaml").write_text("seed: 0\n")
    (folder / "table.yaml").write_text("title: T\nquestion: q?\nkind: detector\ndata: {num_trainval: 2, num_test: 1}\n"
                                       "seeds: [0, 1]\nrows:\n  - {id: a, name: A, config: a.yaml, paper: 58.0}\n")
    spec, records = load_spec(folder), tmp_path / "records"
    for seed, value in ((0, 0.241), (1, 0.253)):
        write_record(spec.record_path(records, spec.rows[0], seed),
                     {"seed": seed, "map": value, "ap": {"c": value}, "config_sha1": "x", "commit": "c",
                      "machine": "m", "date": "d", "train_s": 60.0, "test_s_per_image": 0.2})
    table = detector_table(spec, records, tmp_path)
    assert "**24.7 ± 0.8**" in table and "24.1 / 25.3" in table and "58.0" in table
    assert demo_lines(spec, records) == []  # records without the demo's precision / recall: no line
    for seed, (p, r) in enumerate(((0.6, 0.5), (0.7, 0.6))):
        path = spec.record_path(records, spec.rows[0], seed)
        write_record(path, {**read_record(path), "demo": {"threshold": 0.0, "precision": p, "recall": r}})
    assert "- A: precision 65.0 ± 7.1 %, recall 55.0 ± 7.1 % (score > 0, 2 seeds)" in demo_lines(spec, records)
    edited = table.replace("24.7 ± 0.8", "26.0 ± 0.8")
    assert edited != detector_table(spec, records, tmp_path)
    readme = (ROOT / "README.md").read_text()
    block = readme.split(render_docs.README_BEGIN)[1].split(render_docs.README_END)[0]
    hand = readme.replace(block, block.replace("|", "| 99.9", 1))
    assert hand != readme
    assert render_docs.replace_block(hand, render_docs.README_BEGIN, render_docs.README_END,
                                     block.strip("\n"), "README.md") == readme


def test_an_image_svm_table_renders_mean_and_spread_over_seeds_or_splits(tmp_path):
    """Whole-image SVMs: on a detection set, mean ± std over the seeds' records (each seed's figure
    beside it); on a folder, one record's mean ± std over its random splits; the row's flags and the
    command each row ran are on the page, and a typed-over figure differs from the render."""
    folder = tmp_path / "configs" / "t"
    folder.mkdir(parents=True)
    rows = ("rows:\n  - {id: a, name: A, args: [--levels, '6'], paper: 78.39, readme: true}\n"
            "  - {id: b, name: B, args: [], trunk: {table: t2, row: r, seed: 0}}\n")
    (folder / "table.yaml").write_text("title: T\nquestion: q?\nkind: image_svm\n"
                                       "data: {num_trainval: 2, num_test: 1, seed: each}\nseeds: [0, 1]\n" + rows)
    spec, records = load_spec(folder), tmp_path / "records"
    for seed, value in ((0, 0.601), (1, 0.623)):
        write_record(spec.record_path(records, spec.rows[0], seed),
                     {"seed": seed, "mean": value, "std": 0.0, "scores": [value], "per_class": {"c": value},
                      "config_sha1": "x", "commit": "c", "machine": "m", "device": "cpu", "date": "d", "train_s": 2.0,
                      "svm_s": 2.0,
                      "vector_s_per_image": 0.05, "commands": [f"python tools/image_svm.py --levels 6 --seed {seed}"]})
    table = image_svm_table(spec, records, tmp_path)
    assert "| A | **61.2 ± 1.6** | 60.1 / 62.3 | 78.39 | 0.050 | 2.0 | `--levels 6` |" in table
    assert "| B | not run yet |  | - |  |  | (defaults) on t2 / r seed 0 |" in table
    assert "- A (seed 0): `python tools/image_svm.py --levels 6 --seed 0`" in table_section(spec, records, tmp_path)
    assert "| A | 61.2 ± 1.6 mAP (2 seeds) | 78.39 |" in readme_table([spec], records)
    spec.record_path(records, spec.rows[0], 1).unlink()  # a row with some of its seeds says so
    assert "| A | 60.1 mAP (1 of 2 seeds) | 78.39 |" in readme_table([spec], records)
    assert table.replace("61.2 ± 1.6", "63.0 ± 1.6") != image_svm_table(spec, records, tmp_path)
    (folder / "table.yaml").write_text("title: T\nquestion: q?\nkind: image_svm\ndata: {embedded: 60}\n"
                                       "seeds: [0]\n" + rows)
    spec = load_spec(folder)
    path = spec.record_path(records, spec.rows[0], 0)
    write_record(path, {**read_record(path), "scores": [0.5, 0.6, 0.7], "mean": 0.6})
    table = image_svm_table(spec, records, tmp_path)
    assert "| row | mean class accuracy % |" in table and "| A | **60.0 ± 10.0** | 3 splits | 78.39 |" in table
    assert "| A | 60.0 ± 10.0 % class accuracy (3 splits) |" in readme_table([spec], records)


def test_the_readme_is_a_short_user_guide():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    assert not re.search(r"\b[0-9a-f]{7,10}\b", text), "a commit hash: history goes to the CHANGELOG"
    assert not re.search(r"\bissue \d+", text, re.I) and not re.search(r"20\d\d-\d\d-\d\d", text), "no dated log"


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings (lower case, punctuation dropped, spaces to hyphens)."""
    heads = re.findall(r"^#+ (.+)$", page.read_text(), re.M)
    return {re.sub(r"[^a-z0-9 _-]", "", h.lower()).replace(" ", "-") for h in heads} | set(
        re.findall(r'<a id="([^"]+)"', page.read_text()))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_resolve(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.exists(), f"{page.name}: link to missing {target}"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{page.name}: no heading for #{anchor} in {dest.name}"


def _command_lines(text: str) -> list[tuple[str, str]]:
    """(tool, its arguments) of every `tools/<name>.py ...` line in the code blocks, continuations joined."""
    blocks = re.findall(r"```(?:bash)?\n(.*?)```", text, re.S)
    found = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            for name, args in re.findall(r"tools/(\w+)\.py((?:\s+[^|&;#]*)?)", line):
                found.append((name, args))
    return found


@pytest.mark.parametrize("page", HANDWRITTEN, ids=lambda p: p.name)
def test_command_lines_shown_use_flags_the_tools_have(page):
    """A synopsis that drifts from its tool's argparse (a renamed or removed flag) fails here."""
    helps: dict[str, str] = {}
    for name, args in _command_lines(page.read_text()):
        assert (ROOT / "tools" / f"{name}.py").is_file(), f"{page.name}: no tools/{name}.py"
        helps.setdefault(name, render_docs.command_help(name))
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", args):
            assert flag in helps[name], f"{page.name}: tools/{name}.py has no {flag}"


@pytest.mark.slow
def test_the_python_example_runs(tiny_voc, tiny_workdir, capsys):
    """docs/getting_started.md's "From Python" block, on the tiny work dir."""
    text = (ROOT / "docs" / "getting_started.md").read_text()
    code = re.search(r"## From Python\n\n```python\n(.*?)```", text, re.S).group(1)
    image = sorted((tiny_voc / "JPEGImages").glob("*.jpg"))[0]
    code = code.replace('"runs/spp_mobilenet"', repr(str(tiny_workdir)))
    code = code.replace('"runs/synthetic_voc/JPEGImages/test_000000.jpg"', repr(str(image)))
    exec(compile(code, "getting_started.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.split()[0] in {"circle", "ring", "ellipse", "square", "notched_square", "triangle",
                                             "hexagon", "star5", "star6", "cross", "crescent", "arrow"}
                         for line in lines)


def test_the_scaling_plot_is_rendered_like_a_page(tmp_path):
    """A scaling table's plot is one of the generated files: the same bytes twice, beside
    docs/performance.md's section that shows it; none (and no file) before 2 rows have records."""
    folder = tmp_path / "configs" / "cost"
    folder.mkdir(parents=True)
    (folder / "a.yaml").write_text("seed: 0\n")
    (folder / "table.yaml").write_text(
        "title: Cost\nquestion: q?\nkind: scaling\ndata: {preset: voc07, seed: 0}\nseeds: [0]\nrows:\n"
        "  - {id: s, name: S, config: a.yaml, data: {num_trainval: 6, num_test: 3}}\n"
        "  - {id: l, name: L, config: a.yaml, data: {num_trainval: 12, num_test: 6}}\n")
    spec, records = load_spec(folder), tmp_path / "records"
    svg, page = ROOT / "docs" / "cost.svg", ROOT / "docs" / "performance.md"
    empty = render_docs.scaling_pages([spec], records)
    assert empty[svg] is None and "## Cost\n\nq?\n\nNot run yet. Its rows: S; L." in empty[page]
    for row, n in zip(spec.rows, (6, 12)):
        stage = {"stage": "conv5", "wall_s": 0.5 * n, "cpu_s": 0.9 * n, "peak_rss_bytes": 2**30, "disk_bytes": n}
        write_record(spec.record_path(records, row, 0),
                     {"seed": 0, "config_sha1": "x", "commit": "c", "machine": "m", "device": "cpu", "date": "d",
                      "train_s": 1.0, "images": {"trainval": n, "test": n // 2}, "proposals_per_image": 40,
                      "train_stages": [stage], "test_stages": [{**stage, "stage": f"proposals + detection ({n // 2} images)"}]})
    rendered = render_docs.scaling_pages([spec], records)
    assert rendered == render_docs.scaling_pages([spec], records) and rendered[svg].startswith("<?xml")
    assert "| train: conv5 | 3 / 5.4 / 1.0 GiB / 6 B | 6 / 10.8 / 1.0 GiB / 12 B | 1.00 |" in rendered[page]
    assert "![Wall seconds per stage against n, log-log](cost.svg)" in rendered[page]
