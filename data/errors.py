"""The one exception type for bad user input.

Every reader and tool raises :class:`InputError` with a one-line message that names the offending
file and the problem; the command-line tools catch it and print it without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad user input: a missing, corrupt or malformed file, a bad box, a bad config value."""

    def __init__(self, where: str | Path, problem: str) -> None:
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")
