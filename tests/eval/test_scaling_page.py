"""docs/performance.md's scaling section: the exponent of a log-log fit against plain references, the
axes read from the spec, the stage tables of hand-made records, and a plot that is the same bytes
every time."""

from __future__ import annotations

import math

import numpy as np
import pytest

from data.errors import InputError
from eval.run_records import load_spec, write_record
from eval.scaling_page import axes, axis_table, first_records, fit_exponent, scaling_section
from eval.scaling_plot import scaling_svg
from tests.eval.conftest import SCALING_SPEC


def test_the_exponent_of_a_power_law_is_its_power():
    """By hand: log(n^k) = k log(n), so the line through (log n, log c n^k) has slope k exactly."""
    n = [100, 400, 1600, 5011]
    assert fit_exponent(n, [3.0 * v for v in n]) == pytest.approx(1.0)
    assert fit_exponent(n, [0.5 * v**2 for v in n]) == pytest.approx(2.0)
    assert fit_exponent(n, [7.0] * 4) == pytest.approx(0.0)
    # two points: the slope between them, (log y2 - log y1) / (log n2 - log n1)
    assert fit_exponent([10, 40], [2.0, 5.0]) == pytest.approx(math.log(5 / 2) / math.log(4))


def test_the_exponent_is_numpys_least_squares_slope_on_random_data():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n, y = rng.uniform(1, 1e4, size=5), rng.uniform(0.01, 1e3, size=5)
        assert fit_exponent(list(n), list(y)) == pytest.approx(np.polyfit(np.log(n), np.log(y), 1)[0])


def test_fewer_than_two_usable_points_have_no_exponent():
    assert fit_exponent([], []) is None and fit_exponent([400], [3.0]) is None
    assert fit_exponent([400, 400], [3.0, 5.0]) is None  # one size: no slope
    assert fit_exponent([100, 400], [0.0, 5.0]) is None  # a stage that took no time: no logarithm


def _record(trainval: int, test: int, proposals: int, power: float = 1.0) -> dict:
    """A record whose conv5 grows as n^power, fine-tuning not at all, test detection linearly."""
    return {"seed": 0, "config_sha1": "x", "commit": "c", "machine": "2 cores of m", "date": "d", "train_s": 1.0,
            "device": "cpu", "load_avg": [1.0, 2.0], "images": {"trainval": trainval, "test": test},
            "proposals_per_image": proposals,
            "train_stages": [{"stage": "conv5", "wall_s": 0.01 * trainval**power, "cpu_s": 0.02 * trainval,
                              "peak_rss_bytes": 3 * 2**30, "disk_bytes": 5 * 2**20},
                             {"stage": "finetune", "wall_s": 60.0, "cpu_s": 110.0},
                             {"stage": "total", "wall_s": 60 + 0.01 * trainval**power, "cpu_s": 120.0}],
            "test_stages": [{"stage": f"proposals + detection ({test} images)", "wall_s": 0.5 * test,
                             "cpu_s": 0.9 * test, "peak_rss_bytes": 2**29}]}


def test_the_axes_are_the_rows_that_differ_in_one_thing(scaling_dir):
    spec = load_spec(scaling_dir)
    assert [(a.what, [r.id for r in a.rows]) for a in axes(spec)] == [("images", ["a", "b", "c"]),
                                                                       ("proposals", ["a", "p"])]
    assert spec.for_row(spec.rows[1]).data == {"preset": "voc07", "seed": 0, "num_trainval": 400, "num_test": 200}


def test_a_stage_table_per_axis_with_exponents_and_the_faster_than_linear_flagged(scaling_dir, tmp_path):
    spec, records = load_spec(scaling_dir), tmp_path / "records"
    for row, args in zip(spec.rows, [(100, 50, 2000, 1.5), (400, 200, 2000, 1.5), None, (100, 50, 500, 1.5)]):
        if args:
            write_record(spec.record_path(records, row, 0), _record(*args))
    images, proposals = axes(spec)
    table = axis_table(images, first_records(spec, images.rows, records))
    assert table.splitlines()[0] == "| stage | small | large | huge | b (wall) |"
    assert "| train: conv5 | 10 / 2 / 3.0 GiB / 5.0 MiB | 80 / 8 / 3.0 GiB / 5.0 MiB | not run yet | 1.50 **> linear** |" in table
    assert "| train: finetune | 60 / 110 / - / - | 60 / 110 / - / - | not run yet | 0.00 |" in table
    # the test's stage: one line whatever its image count, fitted on the test images (50, 200)
    assert "| test: proposals + detection | 25 / 45 / 512.0 MiB / - | 100 / 180 / 512.0 MiB / - | not run yet | 1.00 |" in table
    # the proposals axis: the same images, 500 against 2,000 proposals; no flag on this axis
    table = axis_table(proposals, first_records(spec, proposals.rows, records))
    assert "| train: conv5 | 10 / 2 / 3.0 GiB / 5.0 MiB | 10 / 2 / 3.0 GiB / 5.0 MiB | 0.00 |" in table
    assert "> linear" not in table
    section = scaling_section(spec, records, "scaling.svg")
    assert section.startswith("## How cost grows\n\nhow?\n") and "### As the images grow (2,000 proposals per image)" in section
    assert "### As the proposals per image grow (100 trainval, 50 test images)" in section
    assert "![Wall seconds per stage against n, log-log](scaling.svg)" in section
    assert "3 runs; machine: 2 cores of m (1-minute load average 1.0-2.0" in section
    # one record on an axis: the rows it has, "-" for every exponent
    (records / "scaling" / "b-s0.json").unlink()
    assert all(line.endswith("| - |") for line in axis_table(images, first_records(spec, images.rows, records)).splitlines()[2:])


def test_no_records_is_one_line_and_no_plot(scaling_dir, tmp_path):
    spec = load_spec(scaling_dir)
    section = scaling_section(spec, tmp_path / "none", None)
    assert "Not run yet. Its rows: small; large; huge; few windows." in section and "![" not in section
    assert scaling_svg(spec, tmp_path / "none") is None


def test_the_plot_is_the_same_bytes_every_time(scaling_dir, tmp_path):
    spec, records = load_spec(scaling_dir), tmp_path / "records"
    for row, args in zip(spec.rows, [(100, 50, 2000), (400, 200, 2000), (1600, 800, 2000), (100, 50, 500)]):
        write_record(spec.record_path(records, row, 0), _record(*args))
    first = scaling_svg(spec, records)
    assert first.startswith("<?xml") and "<svg" in first
    assert scaling_svg(spec, records) == first
    assert "<dc:date>" not in first  # no date: a render tomorrow is the same bytes


@pytest.mark.parametrize("rows, message", [
    ("  - {id: a, name: A, config: c.yaml}\n", "a scaling row has data"),
    ("  - {id: a, name: A, config: c.yaml, data: {num_trainval: 0, num_test: 5}}\n", "positive integers"),
    ("  - {id: a, name: A, config: c.yaml, data: {num_trainval: 4, num_test: 2, preset: x}}\n", "a scaling row has data"),
    ("  - {id: a, name: A, config: c.yaml, data: {num_trainval: 4, num_test: 2}, paper: 58.0}\n", "no paper figure"),
])
def test_a_bad_scaling_row_is_a_one_line_error(scaling_dir, rows, message):
    (scaling_dir / "table.yaml").write_text(SCALING_SPEC.split("rows:")[0] + "rows:\n" + rows)
    with pytest.raises(InputError, match=message):
        load_spec(scaling_dir)


def test_sizes_belong_to_scaling_rows_only(scaling_dir):
    (scaling_dir / "table.yaml").write_text(SCALING_SPEC.replace("{preset: voc07, seed: 0}", "{preset: voc07, num_test: 5}"))
    with pytest.raises(InputError, match="sizes are its rows'"):
        load_spec(scaling_dir)
    detector = "kind: detector\ndata: {num_trainval: 4, num_test: 2}"
    (scaling_dir / "table.yaml").write_text(SCALING_SPEC.replace("kind: scaling\ndata: {preset: voc07, seed: 0}", detector))
    with pytest.raises(InputError, match="a row's own data belongs to scaling tables"):
        load_spec(scaling_dir)


@pytest.mark.parametrize("value, ok", [("4", 4.0), ("0.5", 0.5), ("0", None), ("-1", None), ("lots", None)])
def test_a_tables_memory_budget_is_a_positive_number(scaling_dir, value, ok):
    """train_det's --memory-gb for every row (tools/_runs.py passes it; the end-to-end scaling test runs it)."""
    (scaling_dir / "table.yaml").write_text(SCALING_SPEC.replace("seeds: [0]", f"seeds: [0]\nmemory_gb: {value}"))
    if ok is None:
        with pytest.raises(InputError, match="memory_gb must be a number > 0"):
            load_spec(scaling_dir)
    else:
        assert load_spec(scaling_dir).memory_gb == ok
