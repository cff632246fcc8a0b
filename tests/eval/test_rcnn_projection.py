"""R-CNN's projected wall time for a scaling row: SPP-net's measured wall plus R-CNN's extra cost per
window, measured on the row's network, times the row's windows."""

from __future__ import annotations

import pytest

from eval.rcnn_projection import duration, extra_per_window, measured_seconds, projected_seconds, projection_table
from eval.run_records import load_spec, write_record
from eval.scaling_page import scaling_section


def _record(trainval: int, test: int, speed: dict | None) -> dict:
    """SPP-net: 1 h of training and half an hour of test; 1,000 windows per image."""
    record = {"seed": 0, "config_sha1": "x", "commit": "c", "machine": "2 cores of m", "date": "d", "train_s": 3600.0,
              "device": "cpu", "images": {"trainval": trainval, "test": test}, "proposals_per_image": 2000,
              "windows_per_image": 1000.0,
              "train_stages": [{"stage": "conv5", "wall_s": 3000.0, "cpu_s": 5000.0},
                               {"stage": "total", "wall_s": 3600.0, "cpu_s": 6000.0}],
              "test_stages": [{"stage": f"proposals + detection ({test} images)", "wall_s": 1799.0, "cpu_s": 1.0},
                              {"stage": "total", "wall_s": 1800.0, "cpu_s": 2.0}]}
    return {**record, "speed": speed} if speed else record


# Timed on 3 images of 2,000 windows: SPP-net 1 s, R-CNN 41 s per image, so 20 ms more per window.
SPEED = {"spp_s_per_image": 1.0, "rcnn_s_per_image": 41.0, "windows_per_image": 2000.0, "images": 3}


def test_the_projection_adds_the_extra_per_window_times_the_rows_windows():
    r = _record(100, 50, SPEED)
    assert measured_seconds(r) == 5400.0
    assert extra_per_window(r) == pytest.approx(0.02)
    assert projected_seconds(r) == pytest.approx(5400.0 + 150 * 1000 * 0.02)  # 8,400 s
    assert projected_seconds(_record(100, 50, None)) is None and extra_per_window(_record(100, 50, None)) is None


def test_durations_read_in_the_unit_a_planner_needs():
    assert duration(2520) == "42 min" and duration(27000) == "7.5 h"
    assert duration(684000) == "190 h (7.9 days)"


def test_a_row_without_a_speed_measurement_is_left_out(scaling_dir, tmp_path):
    spec, records = load_spec(scaling_dir), tmp_path / "records"
    write_record(spec.record_path(records, spec.rows[0], 0), _record(100, 50, SPEED))
    write_record(spec.record_path(records, spec.rows[1], 0), _record(400, 200, None))
    section = scaling_section(spec, records, None)
    assert "### R-CNN on the same runs, projected" in section and "on 3 test images" in section
    assert "| small | 100 + 50 | 1,000 | 1.5 h | 20.0 ms | 2.3 h | 2x |" in section
    assert "| large | 400 + 200 |" not in section  # measured, but not its speed
    assert projection_table(spec.rows, [None, _record(400, 200, None)]) is None
    (records / "scaling" / "a-s0.json").unlink()
    assert "projected" not in scaling_section(spec, records, None)
