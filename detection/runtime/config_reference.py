"""Every config key with its values and meaning, read from the config dataclasses themselves.

The meaning of a key is the comment the dataclass gives its field (the lines right above it and the
one beside it), where each field cites its source; tools/render_docs.py renders the rows into
docs/configuration.md, and a test checks that page against them, so the reference cannot drift
from the code.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import tokenize
from collections.abc import Sequence
from typing import Any


def field_comments(cls: type, inherit: bool = True) -> dict[str, str]:
    """``{field: comment}`` of a dataclass: the comment lines right above each field and beside it;
    with ``inherit``, a field without any takes the one of the field right above it (one comment
    over several fields)."""
    source = inspect.getsource(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    lines = source.splitlines()
    found: dict[str, str] = {}
    previous: str | None = None
    for number, line in enumerate(lines, start=1):
        name = line.strip().split(":", 1)[0]
        if name not in names or not line.startswith("    ") or line.startswith("     "):
            continue
        above = []
        i = number - 1
        while i in comments and lines[i - 1].strip().startswith("#"):
            above.insert(0, comments[i])
            i -= 1
        beside = [comments[number]] if number in comments and not line.strip().startswith("#") else []
        found[name] = " ".join(above + beside)
        if inherit and not found[name] and previous is not None and lines[number - 2].strip().startswith(previous + ":") \
                and (number - 1) not in comments:
            found[name] = found[previous]  # a field under the same comment as the one before
        previous = name
    return found


def docstring_attributes(cls: type) -> dict[str, str]:
    """``{field: text}`` from the "Attributes:" section of a class docstring (Google style)."""
    doc = inspect.getdoc(cls) or ""
    if "Attributes:" not in doc:
        return {}
    found: dict[str, str] = {}
    name = None
    for line in doc.split("Attributes:", 1)[1].splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        head, sep, text = line.strip().partition(":")
        if indent <= 4 and sep and head.isidentifier():
            name, found[head] = head, text.strip()
        elif indent > 4 and name:
            found[name] += " " + line.strip()
        else:
            break
    return found


def _leaves(cfg: Any, prefix: str = "") -> list[tuple[str, Any, str]]:
    """``(dotted key, value, meaning)`` of every leaf field of a (nested) config dataclass."""
    own, inherited = field_comments(type(cfg), inherit=False), field_comments(type(cfg))
    documented = docstring_attributes(type(cfg))
    out = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out += _leaves(value, f"{prefix}{f.name}.")
        else:
            meaning = " ".join(t for t in (documented.get(f.name, ""), own.get(f.name, "")) if t)
            meaning = meaning or inherited.get(f.name, "")
            out.append((prefix + f.name, value, meaning))
    return out


def _plain(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    return str(value)


def reference_table(configs: Sequence[Any], headings: Sequence[str]) -> str:
    """Markdown: one line per key of ``configs[0]``'s type, its value in each config, its meaning.

    Args:
        configs: configs of one type (e.g. the defaults, a recipe, a row's resolved config).
        headings: the value columns' headings, one per config.
    """
    columns = [{key: value for key, value, _ in _leaves(cfg)} for cfg in configs]
    lines = ["| key | " + " | ".join(headings) + " | meaning and source |",
             "|---|" + "---|" * len(headings) + "---|"]
    for key, _, meaning in _leaves(configs[0]):
        values = [f"`{_plain(col[key])}`" for col in columns]
        # a value that differs from the first column's stands out
        values = values[:1] + [v if v != values[0] else "" for v in values[1:]]
        lines.append(f"| `{key}` | " + " | ".join(values) + f" | {meaning.replace('|', '/')} |")
    return "\n".join(lines)
