"""The linear probe: vectors of warped ground-truth boxes, a logistic regression scored on test."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from data.errors import InputError
from data.images import read_image
from data.voc import load_voc
from detection.features.probe import box_vectors, fit_probe
from detection.features.rcnn_source import warp_windows
from detection.models.backbones import build_trunk, normalise
from tools import probe


def test_fit_probe_scores_what_it_can_and_cannot_tell():
    rng = np.random.default_rng(0)
    y = np.arange(300) % 3
    told = np.eye(3)[y] * 4 + rng.normal(0, 1, (300, 3))  # the class in the vector
    result = fit_probe((told[:200], y[:200]), (told[200:], y[200:]), ["a", "b", "c"])
    assert result.top1 > 0.95 and result.chance == np.bincount(y[200:]).max() / 100
    noise = rng.normal(0, 1, (300, 3))  # nothing of the class
    assert fit_probe((noise[:200], y[:200]), (noise[200:], y[200:]), ["a", "b", "c"]).top1 < 0.5
    assert set(result.per_class) == {"a", "b", "c"} and result.test_objects == 100


def test_box_vectors_are_the_trunks_mean_over_each_warped_box(tiny_voc):
    torch.manual_seed(0)
    trunk, _ = build_trunk("zf5", pretrained=False)
    trunk.eval()
    records = load_voc(tiny_voc, "test").records[:2]
    x, y = box_vectors(trunk, records, torch.device("cpu"), size=64, padding=4, batch=3)
    keep = [r.boxes[~r.difficult] for r in records]
    assert len(x) == len(y) == sum(len(k) for k in keep)
    assert y.tolist() == [int(v) for r in records for v in r.labels[~r.difficult]]
    crop = warp_windows(read_image(records[0].path), keep[0][:1], 64, 4)  # the first box, by hand
    with torch.no_grad():
        want = trunk(normalise(torch.from_numpy(crop).permute(0, 3, 1, 2))).mean((2, 3))[0].numpy()
    np.testing.assert_allclose(x[0], want, rtol=1e-4, atol=1e-5)


def test_the_tool_prints_and_writes_the_probe(tiny_voc, tmp_path, capsys):
    out = tmp_path / "probe.json"
    assert probe.main(["--data-root", str(tiny_voc), "--backbone", "zf5", "--pretrained", "none", "--size", "64",
                       "--json", str(out), "--no-progress"]) == 0
    assert "linear probe of frozen zf5 (none)" in capsys.readouterr().out
    written = json.loads(out.read_text())
    assert 0.0 <= written["top1"] <= 1.0 and written["test_objects"] > 0



def test_a_bad_size_is_one_line(tiny_voc, capsys):
    from tools._cli import run_cli

    argv = ["--data-root", str(tiny_voc), "--backbone", "zf5", "--pretrained", "none", "--size", "8"]
    assert run_cli(probe.main, argv) == 2
    err = capsys.readouterr().err
    assert "--size" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_tiny_set_is_probed_with_fewer_folds_or_refused_in_one_line():
    """No class with 3 objects: 2 folds (sklearn refuses 3); no class seen twice: a clear error."""
    x = np.eye(4, dtype=np.float32).repeat(2, axis=0)  # 4 classes x 2 objects
    y = np.arange(4).repeat(2)
    assert fit_probe((x, y), (x, y), ["a", "b", "c", "d"]).top1 == 1.0
    with pytest.raises(InputError, match="none of a class seen twice"):
        fit_probe((x[::2], y[::2]), (x, y), ["a", "b", "c", "d"])
