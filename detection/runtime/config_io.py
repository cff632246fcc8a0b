"""Build a config dataclass (the detector's, the classifier's) from a YAML file and ``key=value`` overrides.

Keys are dotted paths into the nested dataclasses (``finetune.iterations=2000``,
``features.scales=[480,688]``); values are parsed as YAML, then checked against the field's type.
An unknown key or a value of the wrong type is an :class:`~data.errors.InputError` naming the
file (or ``--set``) and the key; an unknown key also names the closest valid one ("did you mean
'finetune.iterations'?"), or lists the valid keys at that level when none is close.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import logging
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from data.cache import atomic_write_text
from data.errors import InputError

log = logging.getLogger(__name__)


def _coerce(value: Any, tp: Any, where: str, key: str) -> Any:
    """Check ``value`` against type ``tp`` (the few kinds our configs use) and convert lists to tuples."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(value, inner[0], where, key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            value = [value]
        (item,) = {a for a in typing.get_args(tp) if a is not Ellipsis}
        return tuple(_coerce(v, item, where, key) for v in value)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp in (str, bool) and isinstance(value, tp):
        return value
    raise InputError(where, f"{key}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def _suggest(name: Any, names: set[str], prefix: str) -> str:
    """'did you mean ...?' for the closest valid key at this level, else the valid keys."""
    close = difflib.get_close_matches(str(name), sorted(names), n=1)
    if close:
        return f"did you mean {prefix + close[0]!r}?"
    return f"valid keys{' under ' + repr(prefix[:-1]) if prefix else ''}: {', '.join(sorted(names))}"


def merge(obj: Any, updates: dict[str, Any], where: str, prefix: str = "") -> Any:
    """A copy of dataclass ``obj`` with ``updates`` (a nested dict) applied."""
    if not isinstance(updates, dict):
        raise InputError(where, f"{prefix or 'top level'}: expected a mapping of keys")
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    changes = {}
    for name, value in updates.items():
        key = f"{prefix}{name}"
        if name not in names:
            raise InputError(where, f"unknown config key {key!r} ({_suggest(name, names, prefix)})")
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current):
            changes[name] = merge(current, value, where, key + ".")
        else:
            changes[name] = _coerce(value, hints[name], where, key)
    try:
        return dataclasses.replace(obj, **changes)
    except (TypeError, ValueError) as err:
        if isinstance(err, InputError):
            raise InputError(where, err.problem) from None
        raise InputError(where, str(err)) from None


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=[1,2]"]`` -> ``{"a": {"b": 1}, "c": [1, 2]}`` (values parsed as YAML)."""
    nested: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise InputError("--set", f"expected KEY=VALUE, got {pair!r}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise InputError("--set", f"cannot parse the value of {key!r}: {text!r}") from None
        node = nested
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return nested


def load_dataclass(base: Any, path: Path | None = None, overrides: list[str] | None = None,
                   removed: dict[str, str] | None = None, renamed: dict[str, str] | None = None) -> Any:
    """``base`` (a config dataclass: ``DetectorConfig()``, ``ClassifierConfig()``), then the YAML
    file, then ``--set`` overrides.

    What an older version wrote still loads, with a warning naming the file: ``removed`` top-level
    sections ({name: why}) are dropped, ``renamed`` dotted keys ({old: new}) moved (in ``--set`` too).

    Raises:
        InputError: a missing or unreadable file, an unknown key or a value of the wrong type.
    """
    cfg = base
    if path is not None:
        if not Path(path).is_file():
            raise InputError(path, "config file not found")
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8-sig")) or {}
        except UnicodeDecodeError as err:
            raise InputError(path, f"not UTF-8 text ({err.reason} at byte {err.start})") from None
        except yaml.YAMLError as err:
            raise InputError(path, f"not valid YAML ({str(err).splitlines()[0]})") from None
        if isinstance(data, dict):
            data = rename_keys(_drop_removed(data, removed or {}, path), renamed or {}, str(path))
        cfg = merge(cfg, data, str(path))
    if overrides:
        cfg = merge(cfg, rename_keys(parse_overrides(overrides), renamed or {}, "--set"), "--set")
    return cfg


def _drop_removed(data: dict[str, Any], removed: dict[str, str], path: Path) -> dict[str, Any]:
    """``data`` without the ``removed`` sections, each one dropped with a warning."""
    for name in sorted(set(data) & set(removed)):
        log.warning("%s: ignoring the section %r: %s", path, name, removed[name])
    return {k: v for k, v in data.items() if k not in removed}


def rename_keys(data: dict[str, Any], renamed: dict[str, str], where: str = "") -> dict[str, Any]:
    """A copy of the nested dict ``data`` with each dotted key ``old`` of ``renamed`` moved to its new
    dotted key (a warning naming ``where`` for each, when given); a key given under both names keeps
    the new name's value."""
    out = copy.deepcopy(data)
    for old, new in renamed.items():
        node, leaf = _parent(out, old, create=False)
        if node is None or leaf not in node:
            continue
        value = node.pop(leaf)
        if where:
            log.warning("%s: %r is now %r", where, old, new)
        node, leaf = _parent(out, new, create=True)
        node.setdefault(leaf, value)
    return out


def fill_added(data: dict[str, Any], added: dict[str, Any]) -> dict[str, Any]:
    """A copy of the nested dict ``data`` (a config written by an older version) with each dotted key
    of ``added`` it lacks set to the value that behaves as that older version did."""
    out = copy.deepcopy(data)
    for key, value in added.items():
        node, leaf = _parent(out, key, create=True)
        node.setdefault(leaf, value)
    return out


def _parent(data: dict[str, Any], dotted: str, create: bool) -> tuple[Any, str]:
    """(the dict holding ``dotted``'s last part, that part); missing levels are made when ``create``,
    else the dict is None."""
    *parents, leaf = dotted.split(".")
    node: Any = data
    for p in parents:
        node = node.setdefault(p, {}) if create else node.get(p) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), leaf


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (tuples as lists), for YAML and for cache keys."""
    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(dataclasses.asdict(cfg))


def save_config(cfg: Any, path: Path) -> None:
    """Write the resolved config as YAML (atomically); ``load_config(path)`` gives it back."""
    atomic_write_text(Path(path), yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
