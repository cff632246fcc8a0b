"""tools/reproduce.py on a scaling table: each row trains and tests on a dataset of its own sizes,
from cold caches of its own, and its record keeps the stage tables that docs/performance.md fits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from detection.runtime.ledger import merge_runs
from eval.run_records import load_spec
from eval.scaling_page import scaling_section
from tools import reproduce

TINY_SCALING = """title: How cost grows
question: does it grow?
kind: scaling
data: {preset: voc07, seed: 0}
seeds: [0]
memory_gb: 0.000001
rows:
  - {id: small, name: 8 images, config: a.yaml, data: {num_trainval: 8, num_test: 3}}
  - {id: large, name: 12 images, config: a.yaml, data: {num_trainval: 12, num_test: 5}}
"""
TINY_CONFIG = """missing_classes: skip
proposals: {resize_longer: 160, max_proposals: 40}
features: {scales: [160]}
head: {fc6: 32, fc7: 32}
finetune: {iterations: 10, batch_size: 16, windows_per_image: 16}
"""


def test_a_resumed_trainings_runs_merge_into_one_stage_table():
    """Wall and CPU add up over the runs, the peak memory is the largest, the disk the last run's."""
    runs = [{"cores": 2, "stages": [{"stage": "proposals", "wall_s": 10.0, "cpu_s": 15.0, "disk_bytes": 100,
                                     "peak_rss_bytes": 500},
                                    {"stage": "conv5", "wall_s": 5.0, "cpu_s": 9.0, "disk_bytes": 40},
                                    {"stage": "total", "wall_s": 16.0, "cpu_s": 25.0, "peak_rss_bytes": 500}]},
            {"cores": 2, "stages": [{"stage": "conv5", "wall_s": 7.0, "cpu_s": 12.5, "disk_bytes": 90,
                                     "peak_rss_bytes": 800},
                                    {"stage": "finetune", "wall_s": 3.0, "cpu_s": 6.0},
                                    {"stage": "total", "wall_s": 11.0, "cpu_s": 19.0, "peak_rss_bytes": 800}]}]
    assert merge_runs(runs) == [
        {"stage": "proposals", "wall_s": 10.0, "cpu_s": 15.0, "disk_bytes": 100, "peak_rss_bytes": 500},
        {"stage": "conv5", "wall_s": 12.0, "cpu_s": 21.5, "disk_bytes": 90, "peak_rss_bytes": 800},
        {"stage": "finetune", "wall_s": 3.0, "cpu_s": 6.0},
        {"stage": "total", "wall_s": 27.0, "cpu_s": 44.0, "peak_rss_bytes": 800}]
    assert merge_runs([]) == []


@pytest.mark.slow
def test_a_scaling_row_is_reproduced_with_its_stage_tables(tmp_path, capsys, reproduce_runs):
    """One row end to end (the fit and the tables over several rows: tests/eval/test_scaling_page.py,
    from hand-made records): its dataset of its sizes, its own cold caches, its stage tables."""
    configs, records, runs = tmp_path / "configs", tmp_path / "records", reproduce_runs
    (configs / "scaling").mkdir(parents=True)
    (configs / "scaling" / "table.yaml").write_text(TINY_SCALING)
    (configs / "scaling" / "a.yaml").write_text(TINY_CONFIG)
    argv = ["--configs", str(configs), "--records", str(records), "--runs-dir", str(runs), "scaling"]
    assert reproduce.main([*argv, "--rows", "small"]) == 0
    small = json.loads((records / "scaling" / "small-s0.json").read_text())
    # the row on a dataset of its sizes, keyed on them, in a work dir with caches of its own
    assert small["resolved"][1]["num_trainval"] == 8 and small["resolved"][1]["num_test"] == 3
    assert small["images"] == {"trainval": 8, "test": 3} and small["proposals_per_image"] == 40
    assert small["work_dir"].startswith(str(runs / "scaling")) and f"--cache-dir {small['work_dir']}/cache" in \
        small["commands"][0]
    # the table's memory budget (a few KB here: fine-tuning's pool and the SVMs' store spill to disk)
    assert "--memory-gb 1e-06" in small["commands"][0]
    log = (Path(small["work_dir"]) / "train.log").read_text()
    assert re.search(r"fine-tuning on \d+ windows .* 0\.00 GiB in memory, 0\.\d\d GiB on disk", log)
    train = {s["stage"]: s for s in small["train_stages"]}
    assert {"proposals", "conv5", "finetune", "svm"} <= set(train) and small["train_stages"][-1]["stage"] == "total"
    assert all(s["wall_s"] > 0 and s["cpu_s"] >= 0 for s in small["train_stages"])
    assert train["total"]["peak_rss_bytes"] > 0 and train["conv5"]["disk_bytes"] > 0
    assert small["test_stages"][0]["stage"].startswith("proposals + detection (")
    assert small["test_stages"][0]["peak_rss_bytes"] > 0
    # R-CNN timed against SPP-net on the row's own network: the per-window trunk costs more than one conv5 map
    assert 0 < small["windows_per_image"] <= 40 and small["speed"]["images"] == 2  # 3 test images, 1 a warm-up
    assert small["speed"]["rcnn_s_per_image"] > small["speed"]["spp_s_per_image"] > 0
    section = scaling_section(load_spec(configs / "scaling"), records, None)
    assert "### As the images grow (40 proposals per image)" in section
    assert "| 8 images | 8 + 3 |" in section  # R-CNN's projected wall
    conv5 = next(line for line in section.splitlines() if line.startswith("| train: conv5 |"))
    assert conv5.endswith("| - |")  # one record: no exponent yet
    capsys.readouterr()
    assert reproduce.main([*argv, "--list"]) == 0
    out = capsys.readouterr().out
    assert out.count(": recorded (") == 1 and "scaling/large seed 0: to run" in out
