"""The packages' layers, lowest first: data -> proposals, svm, eval -> detection -> tools.

Every import statement of every module (function-level ones too) is parsed; a module may import
from its own package and from lower layers only. Packages of the same layer stay independent of
each other. The test reads the files, so it fails on the next back-up import whoever writes it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"data": 0, "proposals": 1, "svm": 1, "eval": 1, "detection": 2, "tools": 3}


def imported_packages(source: str, filename: str) -> list[tuple[int, str]]:
    """(line, top-level name) of every absolute import in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def layer_violations(package: str, source: str, filename: str) -> list[str]:
    """Imports in a module of ``package`` that reach a package above it or beside it."""
    bad = []
    for line, name in imported_packages(source, filename):
        if name in LAYERS and name != package and LAYERS[name] >= LAYERS[package]:
            where = "above" if LAYERS[name] > LAYERS[package] else "beside"
            bad.append(f"{filename}:{line}: {package} imports {name} ({where} its layer)")
    return bad


def test_no_module_imports_from_above_or_beside_its_layer():
    bad = []
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            bad += layer_violations(package, path.read_text(), str(path.relative_to(ROOT)))
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package, source", [
    ("data", "from detection.features.spp import pooled_length\n"),
    ("svm", "def f():\n    import detection.models.head\n"),  # a lazy import counts too
    ("proposals", "from eval.voc_ap import evaluate_voc\n"),  # beside: same layer
    ("detection", "from tools._cli import run_cli\n"),
])
def test_the_check_catches_a_back_up_import(package, source):
    assert len(layer_violations(package, source, "x.py")) == 1


def test_the_check_allows_imports_down_and_within():
    source = "import numpy\nfrom data.boxes import box_iou\nfrom detection.config import DetectorConfig\nfrom . import x\n"
    assert layer_violations("detection", source, "x.py") == []
