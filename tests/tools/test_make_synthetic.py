"""tools/make_synthetic.py: writes the set, is idempotent, regenerates incomplete folders."""

from __future__ import annotations

import json

from data.synthetic import DEFAULT_PRESET
from tools._cli import run_cli
from tools.make_synthetic import MANIFEST, main

ARGS = ["--num-trainval", "2", "--num-test", "1", "--seed", "3"]


def test_make_synthetic_idempotent(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["--out", str(out), *ARGS]) == 0
    assert "wrote" in capsys.readouterr().out
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["num_trainval"] == 2 and manifest["seed"] == 3 and manifest["num_classes"] == 12
    stamp = (out / "JPEGImages" / "trainval_000000.jpg").stat().st_mtime_ns
    assert main(["--out", str(out), *ARGS]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert (out / "JPEGImages" / "trainval_000000.jpg").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name != "synth"]  # no temp folder left behind


def test_make_synthetic_regenerates_incomplete_and_changed(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["--out", str(out), *ARGS]) == 0
    (out / MANIFEST).unlink()  # as if interrupted before the end
    (out / "Annotations" / "test_000000.xml").unlink()
    assert main(["--out", str(out), *ARGS]) == 0
    assert (out / MANIFEST).is_file() and (out / "Annotations" / "test_000000.xml").is_file()
    assert main(["--out", str(out), "--num-trainval", "4", "--num-test", "1", "--seed", "3"]) == 0
    assert len((out / "ImageSets" / "Main" / "trainval.txt").read_text().split()) == 4
    assert "wrote" in capsys.readouterr().out


def test_make_synthetic_refuses_foreign_folder(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep me")
    assert run_cli(main, ["--out", str(tmp_path), *ARGS]) == 2
    assert "not a synthetic dataset" in capsys.readouterr().err
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_make_synthetic_presets_and_statistics_table(tmp_path, capsys):
    small, voc = tmp_path / "small", tmp_path / "voc"
    assert main(["--out", str(small), *ARGS, "--preset", "small"]) == 0
    printed = capsys.readouterr().out
    assert "| small trainval | small test | VOC 2007 |" in printed and "| 2.52 |" in printed
    assert json.loads((small / MANIFEST).read_text())["preset"] == "small"
    assert main(["--out", str(voc), *ARGS, "--preset", "voc07"]) == 0
    assert "| voc07 trainval | voc07 test |" in capsys.readouterr().out
    assert json.loads((voc / MANIFEST).read_text())["preset"] == "voc07"
    assert main(["--out", str(voc), *ARGS, "--preset", "small"]) == 0  # another preset: generated again
    assert "wrote" in capsys.readouterr().out and json.loads((voc / MANIFEST).read_text())["preset"] == "small"
    assert main(["--out", str(voc), *ARGS]) == 0  # no --preset: the default one
    assert f"| {DEFAULT_PRESET} trainval |" in capsys.readouterr().out


def test_make_synthetic_20_classes(tmp_path, capsys):
    out = tmp_path / "voc20"
    assert main(["--out", str(out), *ARGS, "--preset", "voc07_20"]) == 0
    assert "20 classes" in capsys.readouterr().out
    assert json.loads((out / MANIFEST).read_text())["num_classes"] == 20
    assert len((out / "classes.txt").read_text().split()) == 20


def test_no_progress_draws_no_bar(tmp_path, capsys):
    """A log file of reproduce.py gets no bar (its runs pass --no-progress); a terminal gets one."""
    assert main(["--out", str(tmp_path / "bar"), *ARGS]) == 0
    assert "synthetic trainval:   0%|" in capsys.readouterr().err  # tqdm's bar
    assert main(["--out", str(tmp_path / "quiet"), *ARGS, "--no-progress"]) == 0
    assert "%|" not in capsys.readouterr().err
