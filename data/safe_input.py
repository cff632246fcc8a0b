"""Checks on names and paths that come from dataset files, before any of them is opened.

Three things every reader of a dataset needs and that must behave the same everywhere:

* :func:`read_lines` reads a small list file (a split file, ``classes.txt``): UTF-8 with or without
  a byte-order mark (UTF-16 with a BOM too, as Windows Notepad saves "Unicode"), any line ends,
  blank lines and ``#`` comment lines skipped; each kept line comes with its 1-based line number.
* :func:`check_name` refuses a name that is not safe as ONE file name: empty, absolute (``/x``,
  ``C:``), containing a ``..`` component or a path separator (``/`` or ``\\``), starting with
  ``.`` (hidden and temporary files: the caches' atomic writes use such names), or holding a control or invisible format
  character (a stray byte-order mark, a NUL). Image ids are used as file names in every per-image
  cache (``cache_dir/<key>/<image_id>.npz``) and class / split names in result files, so a name
  that passes can neither read nor write outside the folder it is joined to.
* :func:`check_inside` refuses a file whose real location (symlinks resolved) lies outside the
  folders it may be read from.
"""

from __future__ import annotations

import codecs
import unicodedata
from pathlib import Path, PureWindowsPath

from data.errors import InputError


def read_lines(path: Path) -> list[tuple[int, str]]:
    """The kept lines of a text list file, stripped, as (1-based line number, text).

    Blank lines and lines whose first non-blank character is ``#`` are skipped. A ``#`` after
    whitespace ends the line's content (``000005  # too dark``); a ``#`` inside a word is kept.

    Raises:
        InputError: naming ``path``, when it is not UTF-8 (or BOM-marked UTF-16) text.
    """
    raw = Path(path).read_bytes()
    encoding = "utf-16" if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        raise InputError(path, f"not {encoding.removesuffix('-sig').upper()} text ({err.reason} at byte {err.start})") from None
    kept = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = _strip_comment(line).strip()
        if content:
            kept.append((number, content))
    return kept


def _strip_comment(line: str) -> str:
    if line.lstrip().startswith("#"):
        return ""
    for i, char in enumerate(line):
        if char == "#" and i > 0 and line[i - 1].isspace():
            return line[:i]
    return line


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be used as one file name inside a folder, or None when it can."""
    if not name:
        return "is empty"
    odd = next((c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if odd is not None:
        return f"contains the control or invisible character U+{ord(odd):04X}"
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        return "is an absolute path"
    if ".." in name.replace("\\", "/").split("/"):
        return "contains a '..' (parent folder) component"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    if name.startswith("."):
        return "starts with '.' (a parent folder, or a hidden / temporary file name)"
    return None


def check_name(name: str, where: str | Path, what: str = "image id") -> str:
    """``name`` unchanged when :func:`name_problem` finds nothing.

    Raises:
        InputError: ``where: <what> '<name>' <problem>`` (``where`` is the file and line it came from).
    """
    problem = name_problem(name)
    if problem is not None:
        raise InputError(where, f"{what} {name!r} {problem}; refused before opening any file")
    return name


def check_inside(path: Path, *folders: Path) -> Path:
    """``path``, after checking that its real location lies inside one of ``folders``.

    Symlinks are resolved on both sides, so a symlinked folder that is itself one of ``folders``
    is followed, but a link inside it pointing elsewhere is not.

    Raises:
        InputError: naming ``path`` and where it really points.
    """
    real = Path(path).resolve()
    if not any(real.is_relative_to(Path(f).resolve()) for f in folders):
        raise InputError(path, f"points outside the dataset (to {real}); refused")
    return Path(path)
