"""The stage runner: what runs, what resumes, what meta.json records."""

from __future__ import annotations

import json

from detection.pipeline.stages import Stage, StageBook, run_stages
from detection.runtime.usage import StageMeter
from detection.workdir import WorkDir

NAMES = ("a", "b", "c")


def _run(work: WorkDir, resume: bool, calls: list[str]) -> StageMeter:
    """Three stages writing one file each; ``a`` refills a cache, so it runs every time."""

    def make(name: str):
        def run() -> None:
            calls.append(f"make {name}")
            (work.root / f"{name}.out").write_text(name)
        return run

    stages = [Stage("a", make("a"), always=True),
              Stage("refill", lambda: calls.append("make refill"), recorded=False),
              Stage("b", make("b"), lambda: (work.root / "b.out",), load=lambda: calls.append("load b"),
                    after=lambda: calls.append("after b")),
              Stage("c", make("c"), lambda: (work.root / "c.out",), main_only=True, disk=lambda: (work.root / "c.out",))]
    meter = StageMeter()
    run_stages(stages, StageBook(work, NAMES, resume), meter)
    return meter


def _done(work: WorkDir) -> list[str]:
    return json.loads(work.meta.read_text())["stages_done"]


def test_a_first_run_makes_every_stage_in_order_and_records_them(tmp_path):
    work, calls = WorkDir(tmp_path), []
    meter = _run(work, False, calls)
    assert calls == ["make a", "make refill", "make b", "after b", "make c"]
    assert _done(work) == ["a", "b", "c"]
    assert "refill" in meter.table() and "b" in meter.table()
    assert [row.disk for row in meter.rows] == [None, None, None, 1]  # what each stage names: c.out, 1 byte


def test_a_resumed_run_loads_what_is_done_and_remakes_only_the_always_stages(tmp_path):
    work, calls = WorkDir(tmp_path), []
    _run(work, False, [])
    _run(work, True, calls)
    assert calls == ["make a", "make refill", "load b"]
    assert _done(work) == ["a", "b", "c"]


def test_a_missing_output_reruns_its_stage_and_every_later_one(tmp_path):
    work, calls = WorkDir(tmp_path), []
    _run(work, False, [])
    (work.root / "b.out").unlink()
    _run(work, True, calls)
    assert calls == ["make a", "make refill", "make b", "after b", "make c"]


def test_without_resume_everything_runs_again_and_a_bad_list_keeps_its_valid_prefix(tmp_path):
    work, calls = WorkDir(tmp_path), []
    _run(work, False, [])
    _run(work, False, calls)
    assert calls == ["make a", "make refill", "make b", "after b", "make c"]
    meta = json.loads(work.meta.read_text())
    work.write_meta({**meta, "stages_done": ["a", "c"]})  # hand-edited: c without b
    calls.clear()
    _run(work, True, calls)
    assert calls == ["make a", "make refill", "make b", "after b", "make c"]
