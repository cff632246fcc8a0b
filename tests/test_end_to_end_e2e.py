"""End-to-end fine-tuning from the command line on the tiny synthetic set: train (conv blocks
through the pyramid pooling, joint box regression), then test with softmax scores and joint boxes."""

import json

import pytest
import torch

from tests.conftest import TINY_TRAIN
from tools import test_det, train_det

pytestmark = pytest.mark.slow

E2E = ["--set", "finetune.mode=e2e", "--set", "finetune.e2e.freeze_blocks=15", "--set", "finetune.e2e.joint_bbox=true",
       "--set", "finetune.iterations=3", "--set", "finetune.batch_size=16"]


def test_e2e_training_saves_the_trunk_and_softmax_joint_testing_reads_it(tiny_voc, tiny_workdir, tmp_path):
    work = tmp_path / "e2e"
    cache = tiny_workdir / "cache"  # proposals are shared (every cache is keyed by what made it)
    argv = ["--data-root", str(tiny_voc), "--work-dir", str(work), "--cache-dir", str(cache), *TINY_TRAIN, *E2E]
    assert train_det.main(argv) == 0
    log = (work / "train.log").read_text().splitlines()
    head = next(i for i, line in enumerate(log) if "stage table" in line) + 2
    stages = [line.split("  ")[0] for line in log[head:head + 7]]  # every minute of training has its row
    assert stages == ["proposals", "conv5", "finetune", "conv5 of the fine-tuned trunk", "svm", "bbox", "total"]
    trunk = torch.load(work / "trunk.pt", weights_only=True)
    assert any(k.startswith("15.") for k in trunk)
    assert len(list((cache / "frozen").iterdir())) >= 1  # the fixed blocks' maps were cached
    conv5_folders = {p.name for p in (cache / "conv5").iterdir()}
    assert len(conv5_folders) >= 2  # the fine-tuned trunk's conv5 has its own folder beside the original's
    out = tmp_path / "map.json"
    assert test_det.main(["--work-dir", str(work), "--json", str(out), "--no-progress",
                          "--set", "test.scoring=softmax", "--set", "test.bbox=joint"]) == 0
    assert 0.0 <= json.loads(out.read_text())["map"] <= 1.0
    assert any(f.stat().st_size for f in (work / "results").glob("comp4_det_test_*.txt"))


def test_joint_boxes_from_a_head_without_them_is_one_line(tiny_workdir, capsys):
    argv = ["--work-dir", str(tiny_workdir), "--no-progress", "--set", "test.bbox=joint"]
    assert test_det.run_cli(test_det.main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "finetune.e2e.joint_bbox" in err[0]
