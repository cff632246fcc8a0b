"""tools/train_cls.py end to end on a tiny embedded set, and the detector trained from its weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools import train_cls
from tools._cli import run_cli

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TINY = ["--sizes", "64", "52", "--set", "data.train_per_class=3", "--set", "data.test_per_class=1",
        "--set", "train.epochs=2", "--set", "train.batch_size=8", "--set", "model.fc6=16",
        "--set", "model.fc7=16", "--no-progress"]


@pytest.fixture(scope="module")
def cls_dir(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("cls") / "zf5"
    out = work.parent / "figures.json"
    assert train_cls.main(["--work-dir", str(work), "--json", str(out), *TINY]) == 0
    return work


def test_outputs_and_json(cls_dir):
    figures = json.loads((cls_dir.parent / "figures.json").read_text())
    assert {"top1", "top5", "majority", "views", "accuracy"} <= set(figures)
    assert set(figures["views"]) == {"center_crop", "full_image"}
    assert figures["majority"] == pytest.approx(1 / 13, abs=1e-4)
    assert 0.0 <= figures["top1"] <= 1.0
    history = json.loads((cls_dir / "history.json").read_text())
    assert [h["size"] for h in history] == [52, 64]  # the last epoch at the crop size
    for name in ("config.yaml", "classifier.pt", "checkpoint.pt", "curves.png", "eval.json", "train.log"):
        assert (cls_dir / name).is_file(), name
    assert (cls_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_refuses_another_config_and_fixed_pool_refuses_multi_size(cls_dir, tmp_path, capsys):
    assert run_cli(train_cls.main, ["--work-dir", str(cls_dir), "--resume", *TINY, "--set", "model.dropout=0.1"]) == 2
    assert "saved config differs" in capsys.readouterr().err
    assert run_cli(train_cls.main, ["--work-dir", str(tmp_path / "w"), "--pool", "fixed", *TINY]) == 2
    assert "multi-size training needs model.pool=spp" in capsys.readouterr().err


def test_resume_after_the_end_keeps_the_history(cls_dir):
    before = json.loads((cls_dir / "history.json").read_text())
    assert train_cls.main(["--work-dir", str(cls_dir), "--resume", *TINY]) == 0
    assert json.loads((cls_dir / "history.json").read_text()) == before


def test_help_runs_as_a_script():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "tools/train_cls.py", "--help"], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True)
    assert "--sizes" in out.stdout and "--pool" in out.stdout


def test_detector_trains_from_the_classifier(cls_dir, tiny_voc, tmp_path):
    from tests.conftest import TINY_TRAIN
    from tools import train_det

    work = tmp_path / "det"
    args = ["--data-root", str(tiny_voc), "--work-dir", str(work), "--backbone", "zf5",
            "--pretrained", str(cls_dir), *TINY_TRAIN, "--set", "head.fc6=16", "--set", "head.fc7=16"]
    assert train_det.main(args) == 0
    meta = json.loads((work / "meta.json").read_text())
    assert meta["trunk_file"]["path"] == str((cls_dir / "classifier.pt").resolve())


def test_table_groups_classifier_seeds(tmp_path, capsys):
    from detection.classification.config import ClassifierConfig, ModelConfig, TrainConfig
    from detection.classification.workdir import ClassifierWorkDir
    from detection.runtime.config_io import save_config
    from tools import cls_table, table

    runs = [("a", 0, "spp", (112, 90), 0.10, 0.08), ("b", 1, "spp", (112, 90), 0.20, 0.12),
            ("c", 0, "fixed", (112,), 0.30, None)]
    for name, seed, pool, sizes, crop, full in runs:
        work = ClassifierWorkDir(tmp_path / name)
        save_config(ClassifierConfig(seed=seed, model=ModelConfig(pool=pool), train=TrainConfig(sizes=sizes)),
                    work.config)
        views = {"center_crop": {"top1": crop, "top5": 0.0},
                 "full_image": None if full is None else {"top1": full, "top5": 0.0}}
        work.write_json(work.eval, {"views": views})
    text = table.classifier_table([tmp_path / n for n, *_ in runs])
    assert "| zf5, SPP multi-size (112+90) | 15.00 ± 7.07 | 10.00 ± 2.83 | 2 (0, 1) |" in text
    assert "| zf5, no SPP (112) | 30.00 | - | 1 (0) |" in text
    out = tmp_path / "t.md"  # the old tool name still works for one release, and warns
    assert cls_table.main([*(str(tmp_path / n) for n, *_ in runs), "--out", str(out)]) == 0
    assert out.read_text() == text + "\n"
    assert "cls_table.py is deprecated; use tools/table.py" in capsys.readouterr().err
