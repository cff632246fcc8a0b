"""The one exception type for bad user input.

Every reader and tool raises :class:`InputError` with a one-line message that names the offending
file and the problem; the command-line tools catch it and print it without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class InputError(ValueError):
    """Bad user input: a missing, corrupt or malformed file, a bad box, a bad config value."""

    def __init__(self, where: str | Path, problem: str) -> None:
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")


def check_config(checks: Iterable[tuple[bool, str]], where: str = "config") -> None:
    """Raise :class:`InputError` with the problem of the first check that fails.

    The config dataclasses' ``__post_init__`` list their rules as ``(holds, problem)`` pairs, each
    problem naming the key as a user types it (``"finetune.lr must be > 0"``).
    """
    for holds, problem in checks:
        if not holds:
            raise InputError(where, problem)
