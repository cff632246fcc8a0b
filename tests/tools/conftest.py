"""Fixtures of the command-line tests: the painted-rectangle images of the proposal tests, and the runs
folder the reproduce tests share."""

from pathlib import Path

import pytest

from tests.proposals.conftest import _make_image_fixture, _rects_fixture, _write_image_fixture  # noqa: F401


@pytest.fixture(scope="session")
def reproduce_runs(tmp_path_factory) -> Path:
    """One --runs-dir for every end-to-end test of tools/reproduce.py: their tables share the embedded
    set voc07 8 + 3 (seed 0), so it is drawn and probed once (work dirs are keyed by config)."""
    return tmp_path_factory.mktemp("reproduce_runs")
