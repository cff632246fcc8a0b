"""tools/faster_rcnn.py end to end on the tiny set, its resume, and its one-line errors."""

from __future__ import annotations

import json

import pytest

from tools import eval_voc, faster_rcnn
from tools._cli import run_cli

TINY = ["--iterations", "2", "--min-size", "64", "--no-progress", "--checkpoint-every", "1"]


@pytest.mark.slow
def test_train_and_test_write_a_json_and_result_files_eval_voc_scores_alike(tiny_voc, tmp_path, capsys):
    work = tmp_path / "frcnn"
    argv = ["--data-root", str(tiny_voc), "--work-dir", str(work), "--json", str(tmp_path / "r.json"), *TINY]
    assert run_cli(faster_rcnn.main, argv) == 0
    assert "mAP" in capsys.readouterr().out
    result = json.loads((tmp_path / "r.json").read_text())
    assert result == json.loads((work / "result.json").read_text())
    assert 0.0 <= result["map"] <= 1.0 and len(result["ap"]) == 12 and result["method"] == "faster_rcnn"
    assert result["train_s"] > 0 and result["median_s_per_step"] > 0 and result["steps"] == 2
    assert result["test_s_per_image"] > 0 and result["test_images"] == 4
    assert result["config"]["min_size"] == 64 and result["config"]["max_size"] == 107
    assert (work / "model.pt").is_file() and not (work / "checkpoint.pt").exists()
    assert len(list((work / "results").glob("comp4_det_test_*.txt"))) == 12

    scores = tmp_path / "eval.json"
    assert run_cli(eval_voc.main, ["--data-root", str(tiny_voc), "--split", "test", "--det-dir", str(work / "results"),
                                   "--json", str(scores)]) == 0  # fmt: skip
    assert json.loads(scores.read_text())["map"] == result["map"]

    # --resume on a finished training tests the saved model again: the same scores, no training
    assert run_cli(faster_rcnn.main, argv + ["--resume"]) == 0
    again = json.loads((tmp_path / "r.json").read_text())
    assert again["map"] == result["map"] and again["train_s"] == result["train_s"]

    # --resume with other settings is refused in one line, the work dir left as it was
    assert run_cli(faster_rcnn.main, argv[:-len(TINY)] + ["--iterations", "3", *TINY[2:], "--resume"]) == 2
    assert "the saved settings differ from this run's" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--min-size", "8"], "min_size must be >= 32"),
    (["--iterations", "-1"], "iterations must be >= 0"),
    (["--threads", "0"], "--threads: must be >= 1"),
    (["--checkpoint-every", "0"], "--checkpoint-every: must be >= 1"),
    (["--device", "cuda:7"], None),  # no GPU here: refused; with one, there is no device 7 to check cheaply
])
def test_bad_values_end_in_one_line(tiny_voc, tmp_path, capsys, extra, message):
    import torch

    if message is None and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    argv = ["--data-root", str(tiny_voc), "--work-dir", str(tmp_path / "w"), *extra]
    assert run_cli(faster_rcnn.main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and (message is None or message in err[0])


def test_a_missing_dataset_or_split_ends_in_one_line(tiny_voc, tmp_path, capsys):
    for argv in (["--data-root", str(tmp_path / "nowhere")], ["--data-root", str(tiny_voc), "--test-split", "nosuch"]):
        assert run_cli(faster_rcnn.main, [*argv, "--work-dir", str(tmp_path / "w")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")
    assert not (tmp_path / "w").exists()  # nothing written before the data is read


REFERENCE_TABLE = """title: Tiny reference
question: does it run?
kind: reference
data: {preset: voc07, num_trainval: 8, num_test: 3, seed: 0}
seeds: [0]
rows:
  - {id: frcnn, name: Faster R-CNN, args: [--iterations, "2", --min-size, "64"], readme: true}
"""


@pytest.mark.slow
def test_reproduce_records_a_reference_row_and_renders_it(tmp_path, capsys, reproduce_runs):
    """tools/reproduce.py on a reference table: the row is tools/faster_rcnn.py's flags, its record
    keys on the resolved config they give, and it renders as a detector row."""
    from eval.results_page import table_section
    from eval.run_records import load_spec
    from tools import reproduce

    (tmp_path / "configs" / "tiny").mkdir(parents=True)
    (tmp_path / "configs" / "tiny" / "table.yaml").write_text(REFERENCE_TABLE)
    records = tmp_path / "records"
    argv = ["--configs", str(tmp_path / "configs"), "--records", str(records), "--runs-dir", str(reproduce_runs),
            "tiny"]
    assert reproduce.main(argv) == 0
    record = json.loads((records / "tiny" / "frcnn-s0.json").read_text())
    assert record["kind"] == "reference" and record["resolved"][0]["iterations"] == 2
    assert record["resolved"][0]["min_size"] == 64 and record["resolved"][0]["seed"] == 0
    assert 0 <= record["map"] <= 1 and record["train_s"] > 0 and record["steps"] == 2 and record["test_images"] == 3
    assert record["commands"][0].startswith("python tools/faster_rcnn.py --data-root") and "--resume" in record["commands"][0]
    capsys.readouterr()
    assert reproduce.main([*argv, "--list"]) == 0 and ": recorded (" in capsys.readouterr().out
    (tmp_path / "configs" / "tiny" / "table.yaml").write_text(REFERENCE_TABLE.replace('"64"', '"96"'))
    assert reproduce.main([*argv, "--list"]) == 0 and "STALE, to run (" in capsys.readouterr().out  # another config
    section = table_section(load_spec(tmp_path / "configs" / "tiny"), records, tmp_path)
    assert f"| Faster R-CNN | **{100 * record['map']:.1f}** |" in section
    assert "`tools/faster_rcnn.py --iterations 2 --min-size 96`" in section
