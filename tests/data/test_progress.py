"""A long loop with progress bars off logs what is done, the time left and the rate; a short one logs
nothing; with bars on, the bar goes to stderr and nothing to the log."""

from __future__ import annotations

import logging
import re
import time

import pytest
from tqdm import tqdm

from data.progress import track


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "data.progress"]


def test_bars_off_log_done_total_time_left_and_the_postfix(caplog: pytest.LogCaptureFixture,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.INFO)
    bar = track(range(4), desc="conv5", show=False, every_s=0.01)
    for _ in bar:
        time.sleep(0.02)
        bar.set_postfix(loss="0.500")
    lines = _lines(caplog)
    assert lines, "a loop longer than every_s logs"
    assert all(line.startswith("conv5: ") and " left" in line and "/4 (" in line for line in lines)
    assert any(line.startswith("conv5: 4/4 (100 %)") and "loss=0.500" in line for line in lines)
    assert capsys.readouterr().err == ""  # no bar drawn


def test_a_loop_shorter_than_the_interval_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    bar = track(total=100, desc="fine-tune", show=False, every_s=60)
    for step in range(100):
        bar.update()
        bar.set_postfix(loss=f"{step}")  # a new figure does not force a line
    bar.close()
    assert _lines(caplog) == []


def test_bars_on_draw_on_stderr_and_log_nothing(caplog: pytest.LogCaptureFixture,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.INFO)
    assert list(track(range(3), desc="detect test", show=True, every_s=0)) == [0, 1, 2]
    assert "detect test" in capsys.readouterr().err
    assert _lines(caplog) == []


def test_a_logged_line_shows_the_figures_of_its_moment(caplog: pytest.LogCaptureFixture,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """tqdm's monitor thread refreshes a bar that printed nothing for ``maxinterval``; with the count
    of the last line, that is a stale line (seen in a log: "1275/1500 in 10:06" twice, 5 minutes
    apart). Here the monitor wakes every 10 ms instead of 10 s: each line's count must be new."""
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(tqdm, "monitor_interval", 0.01)
    monkeypatch.setattr(tqdm, "monitor", None)  # started anew by the next bar, at that interval
    bar = track(range(100), desc="fine-tune", show=False, every_s=0.05)
    for i in bar:  # fast steps first, then slow ones: tqdm would look at the clock every ~15 steps
        time.sleep(0.001 if i < 60 else 0.02)
    counts = [int(re.match(r"fine-tune: (\d+)/100", line).group(1)) for line in _lines(caplog)]
    assert len(counts) >= 3
    assert counts == sorted(set(counts)), counts
