"""Deprecated: tools/table.py does this (one table tool for detector and classifier work dirs).
Kept one release; it warns and runs tools/table.py with the same arguments."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tools import table
from tools._cli import run_cli


def main(argv: Sequence[str] | None = None) -> int:
    print("warning: tools/cls_table.py is deprecated; use tools/table.py (same arguments)", file=sys.stderr)
    return table.main(argv)


if __name__ == "__main__":
    sys.exit(run_cli(main))
