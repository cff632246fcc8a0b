"""Fixtures of the command-line tests: the painted-rectangle images of the proposal tests."""

from tests.proposals.conftest import _make_image_fixture, _rects_fixture, _write_image_fixture  # noqa: F401
