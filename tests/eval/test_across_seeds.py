"""Runs grouped by setting into mean ± sample std over seeds, checked against the statistics module."""

import math
import statistics

import pytest

from eval.across_seeds import Run, group_runs, markdown_table, mean_std


def run(seed: int, map_: float, setting: str = "spp1", name: str = "SPP 1-scale", ap=None) -> Run:
    return Run(name, setting, seed, map_, ap if ap is not None else {"a": map_, "b": None})


def test_mean_std_is_the_sample_std():
    values = [0.245, 0.2377, 0.2261]
    mean, std = mean_std(values)
    assert mean == pytest.approx(statistics.fmean(values)) and std == pytest.approx(statistics.stdev(values))
    assert math.isnan(mean_std([0.3])[1])


def test_groups_by_setting_in_order_with_distinct_seeds():
    runs = [run(0, 0.20), run(0, 0.26, "rcnn", "R-CNN"), run(1, 0.21), run(0, 0.22), run(1, 0.27, "rcnn", "R-CNN")]
    groups = group_runs(runs)
    # the second seed-0 SPP run cannot join the first group: it starts a third one
    assert [(g.name, g.seeds) for g in groups] == [("SPP 1-scale", (0, 1)), ("R-CNN", (0, 1)), ("SPP 1-scale", (0,))]
    assert groups[0].map() == pytest.approx((0.205, statistics.stdev([0.20, 0.21])))
    assert groups[0].ap("b") is None  # no ground truth: no AP to average


def test_markdown_table_cells():
    groups = group_runs([run(0, 0.2), run(1, 0.3), run(0, 0.25, "rcnn", "R-CNN")])
    lines = markdown_table(groups, "AP % (voc07, test)").splitlines()
    assert lines[0] == "| AP % (voc07, test) | SPP 1-scale: seeds 0 1, mean ± std | R-CNN: seed 0 |"
    assert lines[2] == "| a | 25.0 ± 7.1 | 25.0 |"  # stdev(20, 30) = 7.07
    assert lines[3] == "| b | - | - |"
    assert lines[4] == "| **mAP** | **25.0 ± 7.1** | **25.0** |"
    assert lines[5] == "| mAP per seed | 20.0 / 30.0 | 25.0 |"
