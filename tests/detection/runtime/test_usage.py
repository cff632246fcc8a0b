"""CPU time of the process tree: forkserver workers count although they are not our children."""

import multiprocessing as mp
import time

from detection.runtime.usage import StageMeter, StageUsage, disk_bytes, tree_cpu_seconds


def test_tree_cpu_counts_forkserver_workers_and_the_table_shows_each_stage():
    meter = StageMeter(cores=2)
    with meter.stage("workers"):
        with mp.get_context("forkserver").Pool(1) as pool:
            start = time.process_time()
            pool.apply(sum, (range(3 * 10**7),))  # ~0.5 s of CPU in the worker, none here
            here = time.process_time() - start
    row = meter.rows[0]
    assert row.cpu - here > 0.2  # the worker's CPU is counted
    assert tree_cpu_seconds() >= row.cpu
    table = meter.table()
    assert "workers" in table and "total" in table and "util (2 cores)" in table


def test_utilisation_is_cpu_over_wall_over_cores():
    row = StageUsage("x", wall=10.0, cpu=17.0, cores=2)
    assert row.cores_busy == 1.7 and row.utilisation == 0.85


def test_a_stage_shorter_than_a_second_shows_no_ratio():
    """Clock-tick rounding made a 0.02 s cached stage show 141 % of 2 cores; it shows '-' instead."""
    meter = StageMeter(cores=2)
    meter.rows.append(StageUsage("cached", wall=0.02, cpu=0.03, cores=2))
    meter.rows.append(StageUsage("work", wall=10.0, cpu=17.0, cores=2))
    lines = meter.table().splitlines()
    assert lines[1].split()[-2:] == ["-", "-"]
    assert lines[2].split()[-2:] == ["1.70", "85%"]


def test_the_disk_column_gives_each_stage_its_bytes_and_the_total_their_sum(tmp_path):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "a.npz").write_bytes(b"x" * 3000)
    (tmp_path / "model.npz").write_bytes(b"x" * 100)
    meter = StageMeter(cores=2)
    with meter.stage("cached", lambda: disk_bytes([tmp_path / "cache", tmp_path / "gone"])):
        pass
    with meter.stage("model", lambda: disk_bytes([tmp_path / "model.npz"])):
        pass
    with meter.stage("no files"):
        pass
    lines = meter.table().splitlines()
    assert lines[0].split()[-1] == "disk"
    assert lines[1].endswith("2.9 KiB") and lines[2].endswith("100 B") and lines[3].endswith("-")
    assert lines[4].endswith("3.0 KiB")  # the total
    assert [r.get("disk_bytes") for r in meter.records()] == [3000, 100, None, None]


def test_without_disk_figures_the_table_has_no_disk_column():
    meter = StageMeter(cores=2)
    meter.rows.append(StageUsage("work", wall=10.0, cpu=17.0, cores=2))
    assert "disk" not in meter.table() and "disk_bytes" not in meter.records()[0]
