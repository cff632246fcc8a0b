"""tools/bench_pooling.py: times every variant on a small map and prints a median for each."""

from tools import bench_pooling


def test_prints_a_median_per_variant(capsys):
    argv = ["--channels", "4", "--height", "9", "--width", "11", "--windows", "20", "--batch", "8", "--repeat", "2"]
    assert bench_pooling.main(argv) == 0
    out = capsys.readouterr().out
    assert "20 windows of a 4 x 9 x 11 map on cpu" in out and "8 windows:" in out
    timed = [line for line in out.splitlines() if line.endswith(" s")]
    assert len(timed) == 5 and all(float(line.split()[-2]) > 0 for line in timed)
