"""End-to-end smoke test of tools/compute_proposals.py on a tiny VOC-layout set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tools._cli import run_cli
from tools.compute_proposals import main

voc = pytest.importorskip("data.voc_write")


@pytest.fixture
def voc_root(tmp_path, make_image, write_image, rects) -> Path:
    root = tmp_path / "VOC"
    ids = ["000001", "000002", "000003"]
    for i, image_id in enumerate(ids):
        write_image(root / "JPEGImages" / f"{image_id}.png", make_image(i))
        voc.write_annotation(root / "Annotations" / f"{image_id}.xml", image_id, (120, 160), rects,
                             np.zeros(3, int), np.zeros(3, bool), np.zeros(3, bool), ["shape"])
    voc.write_classes(root, ["shape"])
    voc.write_split(root, "test", ids)
    return root


def test_cli_writes_cache_and_json(voc_root, tmp_path, capsys):
    out, js = tmp_path / "props", tmp_path / "summary.json"
    argv = ["--data-root", str(voc_root), "--split", "test", "--out", str(out), "--workers", "2",
            "--json", str(js), "--no-progress"]
    assert run_cli(main, argv) == 0
    summary = json.loads(js.read_text())
    assert summary["images"] == 3
    assert summary["recall@0.5"] == 1.0  # solid rectangles are easy for selective search
    assert 0 < summary["mean_boxes"] <= 2000 and summary["seconds_per_image"] > 0
    assert summary["images_per_second"] > 0
    assert "recall@0.5" in capsys.readouterr().out
    (folder,) = out.iterdir()
    assert folder.name.startswith("fast-") and len(list(folder.glob("*.npz"))) == 3
    assert json.loads((folder / "config.json").read_text())["mode"] == "fast"
    # a rerun computes nothing: its throughput is unknown, not made up
    assert run_cli(main, argv) == 0
    rerun = json.loads(js.read_text())
    assert rerun["images_per_second"] is None and rerun["recall@0.5"] == summary["recall@0.5"]


def test_cli_broken_image_is_listed_and_run_succeeds(voc_root, tmp_path, capsys):
    (voc_root / "JPEGImages" / "000002.png").write_bytes(b"broken")
    argv = ["--data-root", str(voc_root), "--split", "test", "--out", str(tmp_path / "p"), "--workers", "1",
            "--no-progress"]
    assert run_cli(main, argv) == 0
    err = capsys.readouterr().err
    assert "1 image(s) failed" in err and "000002" in err


def test_cli_unreadable_dataset_exits_2(tmp_path, capsys):
    argv = ["--data-root", str(tmp_path / "nothing"), "--split", "test", "--out", str(tmp_path / "p")]
    assert run_cli(main, argv) == 2
    assert "error:" in capsys.readouterr().err
