"""The packages' layers, lowest first: data -> proposals, svm, eval -> detection -> tools, and
inside detection/ its sub-packages (and top-level modules) the same way (``DETECTION_LAYERS``).

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
# detection/'s sub-packages and top-level modules (detection/__init__.py says what each holds).
DETECTION_LAYERS = {"runtime": 0, "models": 1, "features": 2, "classification": 2, "training": 3,
                    "inference": 3, "speed": 4, "reference": 4, "config": 4, "workdir": 5, "pipeline": 6}


def imported_modules(source: str, filename: str) -> list[tuple[int, str]]:
    """(line, dotted module name) of every absolute import in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _violations(unit: str, imported: list[tuple[int, str]], layers: dict[str, int], filename: str) -> list[str]:
    """Imports of ``unit`` (a name of ``layers``) that reach a unit of ``layers`` above or beside it."""
    bad = []
    for line, name in imported:
        if name in layers and name != unit and layers[name] >= layers[unit]:
            where = "above" if layers[name] > layers[unit] else "beside"
            bad.append(f"{filename}:{line}: {unit} imports {name} ({where} its layer)")
    return bad


def layer_violations(package: str, source: str, filename: str) -> list[str]:
    """Imports in a module of ``package`` that reach a package above it or beside it."""
    imported = [(line, name.split(".")[0]) for line, name in imported_modules(source, filename)]
    return _violations(package, imported, LAYERS, filename)


def detection_violations(unit: str, source: str, filename: str) -> list[str]:
    """Imports in a module of ``detection.<unit>`` that reach a sub-package above it or beside it."""
    imported = [(line, name.split(".")[1]) for line, name in imported_modules(source, filename)
                if name.startswith("detection.") and name.count(".") >= 1]
    return _violations(unit, imported, DETECTION_LAYERS, filename)


def test_no_module_imports_from_above_or_beside_its_layer():
    bad = []
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            bad += layer_violations(package, path.read_text(), str(path.relative_to(ROOT)))
    assert not bad, "\n".join(bad)


def test_no_detection_module_imports_from_above_or_beside_its_layer():
    bad, units = [], set()
    for path in sorted((ROOT / "detection").rglob("*.py")):
        parts = path.relative_to(ROOT / "detection").with_suffix("").parts
        if parts == ("__init__",):
            continue
        units.add(parts[0])
        bad += detection_violations(parts[0], path.read_text(), str(path.relative_to(ROOT)))
    assert units == set(DETECTION_LAYERS), "every sub-package of detection/ has a layer"
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("unit, source", [
    ("models", "from detection.features.conv5 import Conv5Cache\n"),
    ("features", "def f():\n    import detection.workdir\n"),
    ("training", "from detection.inference.detect import detect_image\n"),  # beside
    ("runtime", "from detection.config import DetectorConfig\n"),
])
def test_the_check_catches_a_back_up_import_inside_detection(unit, source):
    assert len(detection_violations(unit, source, "x.py")) == 1


@pytest.mark.parametrize("package, source", [
    ("data", "from detection.models.spp import pooled_length\n"),
    ("svm", "def f():\n    import detection.models.head\n"),  # a lazy import counts too
    ("proposals", "from eval.voc_ap import evaluate_voc\n"),  # beside: same layer
    ("detection", "from tools._cli import run_cli\n"),
])
def test_the_check_catches_a_back_up_import(package, source):
    assert len(layer_violations(package, source, "x.py")) == 1


def test_the_check_allows_imports_down_and_within():
    source = "import numpy\nfrom data.boxes import box_iou\nfrom detection.config import DetectorConfig\nfrom . import x\n"
    assert layer_violations("detection", source, "x.py") == []
