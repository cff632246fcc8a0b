"""tools/bbox_check.py on a trained work dir: it reproduces the fit training logged, and writes its figures."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tools import bbox_check

pytestmark = pytest.mark.slow


def test_bbox_check_reproduces_the_logged_fit_and_measures_the_test_split(tiny_workdir, tmp_path, capsys):
    out = tmp_path / "bbox.json"
    assert bbox_check.main(["--work-dir", str(tiny_workdir), "--fractions", "0.5", "--json", str(out),
                            "--no-progress", "--workers", "1"]) == 0
    doc = json.loads(out.read_text())
    assert "| test: refit on the first 0.5 |" in capsys.readouterr().out
    # training logged, per class: "box regression class k: N proposals, mean |target| T, mean |residual| R"
    logged = np.array([[float(v) for v in m] for m in re.findall(
        r"box regression class \d+: (\d+) proposals, mean \|target\| ([\d.]+), mean \|residual\| ([\d.]+)",
        (tiny_workdir / "train.log").read_text())])
    n = logged[:, 0]
    assert n.sum() == doc["training_samples"]
    fit = doc["trained"]["training"]
    assert fit["target"] == pytest.approx((n * logged[:, 1]).sum() / n.sum(), abs=2e-4)
    assert fit["residual"] == pytest.approx((n * logged[:, 2]).sum() / n.sum(), abs=2e-4)
    held = doc["trained"]["test"]
    assert doc["held_out_samples"] > 0 and 0.5 <= held["iou_before"] <= 1
    (half,) = doc["curve"]
    assert half["samples"] == round(doc["training_samples"] / 2) and half["objects"] <= doc["training_objects"]
