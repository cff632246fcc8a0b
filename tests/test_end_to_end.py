"""The command lines end to end on a tiny synthetic set: train, resume, test, score the files."""

import json

import pytest
import yaml

from detection.pipeline.train import TRAIN_STAGES
from tests.conftest import TINY_TRAIN
from tools import eval_voc, test_det, train_det

pytestmark = pytest.mark.slow


def test_train_writes_every_stage(tiny_workdir):
    for name in ("config.yaml", "meta.json", "head.pt", "svms.npz", "bbox.npz", "train.log"):
        assert (tiny_workdir / name).is_file(), name
    meta = json.loads((tiny_workdir / "meta.json").read_text())
    assert tuple(meta["stages_done"]) == TRAIN_STAGES


def test_resume_skips_finished_stages(tiny_voc, tiny_workdir):
    before = {p.name: p.stat().st_mtime_ns for p in tiny_workdir.glob("*.np[zy]")}
    argv = ["--data-root", str(tiny_voc), "--work-dir", str(tiny_workdir), "--resume", *TINY_TRAIN]
    assert train_det.main(argv) == 0
    assert {p.name: p.stat().st_mtime_ns for p in tiny_workdir.glob("*.np[zy]")} == before


def test_resume_refuses_another_config(tiny_voc, tiny_workdir, capsys):
    argv = ["--data-root", str(tiny_voc), "--work-dir", str(tiny_workdir), "--resume", *TINY_TRAIN,
            "--set", "svm_layer=fc6"]
    assert train_det.run_cli(train_det.main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.yaml" in err[0] and "differs" in err[0]


def test_test_det_and_eval_voc_agree(tiny_voc, tiny_workdir, tmp_path, capsys):
    out = tmp_path / "map.json"
    assert test_det.main(["--work-dir", str(tiny_workdir), "--json", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    assert result["metric"] == "voc07" and 0.0 <= result["map"] <= 1.0
    classes = (tiny_voc / "classes.txt").read_text().split()
    files = sorted((tiny_workdir / "results").glob("comp4_det_test_*.txt"))
    assert len(files) == len(classes)
    assert any(f.stat().st_size for f in files)  # something was detected
    capsys.readouterr()
    again = tmp_path / "again.json"
    assert eval_voc.main(["--data-root", str(tiny_voc), "--split", "test",
                          "--det-dir", str(tiny_workdir / "results"), "--json", str(again)]) == 0
    # the files hold every digit of the boxes and scores: the same AP, exactly
    assert json.loads(again.read_text())["ap"] == result["ap"]


def test_missing_data_root_is_one_line(tmp_path, capsys):
    code = train_det.run_cli(train_det.main, ["--data-root", str(tmp_path / "nope"), "--work-dir", str(tmp_path / "w")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0]


def test_table_reads_tested_work_dirs(tiny_workdir, tmp_path, capsys):
    from tools import table as accuracy_table

    assert test_det.main(["--work-dir", str(tiny_workdir), "--no-progress"]) == 0
    scores = json.loads((tiny_workdir / "results" / "map_test_voc07.json").read_text())
    out = tmp_path / "acc.md"
    assert accuracy_table.main([str(tiny_workdir), str(tiny_workdir), "--out", str(out)]) == 0
    text = out.read_text()
    assert text.count("SPP 1-scale") >= 2
    assert f"**{100 * scores['map']:.1f}**" in text
    assert accuracy_table.run_cli(accuracy_table.main, [str(tmp_path)]) == 2  # not a work dir


def test_speed_report_times_the_trained_work_dir(tiny_voc, tiny_workdir, tmp_path):
    from tools import speed_report

    out = tmp_path / "speed"
    assert speed_report.main(["--data-root", str(tiny_voc), "--work-dir", str(tiny_workdir), "--out", str(out),
                              "--num-images", "1", "--num-proposals", "20", "--no-progress"]) == 0
    doc = json.loads((out / "speed.json").read_text())
    assert doc["scales"] == [320] and doc["backbone"] == "mobilenet_v2"  # the trained config's
    assert doc["ratio"] > 0


def test_test_time_levers_change_little_and_keep_the_default_results(tiny_workdir, tmp_path, capsys):
    """--set head.int8 / SVD at full rank: results go to --out, near the plain run's mAP."""
    plain = tmp_path / "plain.json"
    assert test_det.main(["--work-dir", str(tiny_workdir), "--json", str(plain), "--no-progress"]) == 0
    default_scores = (tiny_workdir / "results" / "map_test_voc07.json").read_bytes()
    fc6 = int(yaml.safe_load((tiny_workdir / "config.yaml").read_text())["head"]["fc6"])
    out = tmp_path / "levers"
    argv = ["--work-dir", str(tiny_workdir), "--set", "head.int8=true", "--set", f"head.svd_fc6={fc6}",
            "--out", str(out), "--no-progress"]
    assert test_det.main(argv) == 0
    lever = json.loads((out / "map_test_voc07.json").read_text())
    assert lever["map"] == pytest.approx(json.loads(plain.read_text())["map"], abs=0.1)
    assert (tiny_workdir / "results" / "map_test_voc07.json").read_bytes() == default_scores
    # what training decided cannot be changed at test time
    bad = ["--work-dir", str(tiny_workdir), "--set", "features.backbone=zf5"]
    assert test_det.run_cli(test_det.main, bad) == 2
    assert "test-time" in capsys.readouterr().err


def test_fast_flag_is_the_preset_as_set_flags(tiny_workdir, tmp_path):
    from detection.config import FAST_PRESET

    fast, spelled, exact = tmp_path / "fast", tmp_path / "spelled", tmp_path / "exact"
    assert test_det.main(["--work-dir", str(tiny_workdir), "--fast", "--out", str(fast), "--no-progress"]) == 0
    sets = [arg for pair in FAST_PRESET for arg in ("--set", pair)]
    assert test_det.main(["--work-dir", str(tiny_workdir), *sets, "--out", str(spelled), "--no-progress"]) == 0
    assert test_det.main(["--work-dir", str(tiny_workdir), "--out", str(exact), "--no-progress"]) == 0
    files = sorted(p.name for p in fast.glob("comp4_det_*.txt"))
    assert files and all((fast / f).read_bytes() == (spelled / f).read_bytes() for f in files)
    assert any((fast / f).read_bytes() != (exact / f).read_bytes() for f in files)  # the levers did act


def test_work_dir_names_its_trunk_file_and_refuses_another(tiny_voc, tmp_path, capsys):
    """Trained from a trunk checkpoint, a work dir records it by SHA-1; a changed file is refused."""
    import torch

    from data.cache import file_digest
    from detection.models.backbones import zf5_trunk

    trunk_file = tmp_path / "zf5.pt"
    torch.manual_seed(0)
    torch.save(zf5_trunk().state_dict(), trunk_file)
    work = tmp_path / "zf5_work"
    argv = ["--data-root", str(tiny_voc), "--work-dir", str(work), "--backbone", "zf5",
            "--pretrained", str(trunk_file), *TINY_TRAIN]
    assert train_det.main(argv) == 0
    meta = json.loads((work / "meta.json").read_text())
    assert meta["trunk_file"] == {"path": str(trunk_file.resolve()), "sha1": file_digest(trunk_file)}
    torch.save(zf5_trunk().state_dict(), trunk_file)  # another trunk under the same name
    assert test_det.run_cli(test_det.main, ["--work-dir", str(work), "--no-progress"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "zf5.pt" in errors[0] and "not the trunk this work dir was trained with" in errors[0]


def test_resume_trains_again_a_work_dir_of_another_training_version(tiny_voc, tiny_workdir, tmp_path):
    """A change of the training code (here: the window projection) must not leave a stale model."""
    import shutil

    from detection.workdir import TRAINING_VERSION

    work = tmp_path / "old"
    shutil.copytree(tiny_workdir, work)
    meta = json.loads((work / "meta.json").read_text())
    meta["training_version"] = TRAINING_VERSION - 1
    (work / "meta.json").write_text(json.dumps(meta))
    (work / "svms.npz").write_bytes(b"stale")  # a resumed run that skipped the svm stage would keep this
    argv = ["--data-root", str(tiny_voc), "--work-dir", str(work), "--resume", *TINY_TRAIN]
    assert train_det.main(argv) == 0
    assert json.loads((work / "meta.json").read_text())["training_version"] == TRAINING_VERSION
    assert (work / "svms.npz").read_bytes() == (tiny_workdir / "svms.npz").read_bytes()
