"""tools/reproduce.py: every row x seed of a table trained, tested and recorded; done rows skipped;
rows that share a training train once; records render into the results table."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import pytest

from data.errors import InputError
from eval.results_page import detector_table, table_section
from eval.run_records import load_spec
from tools import reproduce

TINY_TABLE = """title: Tiny
question: does it run?
kind: detector
data: {preset: voc07, num_trainval: 8, num_test: 3, seed: 0}
seeds: [0]
rows:
  - {id: bb, name: with boxes, config: a.yaml, paper: 58.0, readme: true}
  - {id: nobb, name: without boxes, config: a.yaml, test_set: [test.bbox_reg=false]}
picture: {row: nobb, seed: 0, images: 2, out: PICTURE}
"""
TINY_CONFIG = """missing_classes: skip
proposals: {resize_longer: 160, max_proposals: 40}
features: {scales: [160]}
head: {fc6: 32, fc7: 32}
finetune: {iterations: 10, batch_size: 16, windows_per_image: 16}

"""


@pytest.fixture
def tiny_table(tmp_path: Path) -> Path:
    configs = tmp_path / "configs"
    (configs / "tiny").mkdir(parents=True)
    (configs / "tiny" / "table.yaml").write_text(TINY_TABLE.replace("PICTURE", str(tmp_path / "grid.png")))
    (configs / "tiny" / "a.yaml").write_text(TINY_CONFIG)
    return configs


@pytest.mark.slow
def test_a_table_is_reproduced_recorded_and_not_run_twice(tiny_table, tmp_path, capsys, reproduce_runs):
    records, runs = tmp_path / "records", reproduce_runs
    argv = ["--configs", str(tiny_table), "--records", str(records), "--runs-dir", str(runs), "tiny"]
    assert reproduce.main(argv) == 0
    paths = sorted((records / "tiny").glob("*.json"))
    assert [p.name for p in paths] == ["bb-s0.json", "nobb-s0.json", "picture.json"]
    bb0, nobb0 = (json.loads((records / "tiny" / n).read_text()) for n in ("bb-s0.json", "nobb-s0.json"))
    assert bb0["work_dir"] == nobb0["work_dir"] and bb0["config_sha1"] == nobb0["config_sha1"]  # one training
    assert nobb0["test_set"] == ["test.bbox_reg=false"] and bb0["test_set"] == []
    assert 0 <= bb0["map"] <= 1 and set(bb0["ap"]) and bb0["train_s"] > 0 and bb0["test_s_per_image"] > 0
    assert bb0["commands"][0].startswith("python tools/train_det.py") and "--set seed=0" in bb0["commands"][0]
    assert (records / "data" / "voc07-8-3-s0.md").read_text().startswith("| statistic |")
    probe = json.loads((records / "data" / "voc07-8-3-s0-probe.json").read_text())
    assert 0 <= probe["top1"] <= 1 and probe["dataset"]["typicality"] > 0
    # what the demo draws at its default threshold (score > 0), over the test images
    assert bb0["demo"]["threshold"] == 0 and 0 <= bb0["demo"]["precision"] <= 1 and 0 <= bb0["demo"]["recall"] <= 1
    # the picture: tools/demo.py's grid of the nobb model on the first 2 test images, and what drew it
    picture = json.loads((records / "tiny" / "picture.json").read_text())
    grid = cv2.imread(str(tmp_path / "grid.png"))
    assert picture["config_sha1"] == nobb0["config_sha1"] and len(picture["images"]) == 2
    assert grid is not None and grid.shape[1] == 2 * 400  # two images side by side, 400 px each
    # the stage table of the one training: a second run of reproduce trains, tests and draws nothing
    stages = (Path(bb0["work_dir"]) / "stages.json").read_text()
    (tmp_path / "grid.png").write_bytes(b"kept")
    capsys.readouterr()
    assert reproduce.main(argv) == 0
    assert capsys.readouterr().out.count(": recorded (") == 2
    assert (Path(bb0["work_dir"]) / "stages.json").read_text() == stages
    assert (tmp_path / "grid.png").read_bytes() == b"kept"
    assert f"tiny picture {tmp_path / 'grid.png'}: drawn" in _listing(argv, capsys)
    # the records render (means over several seeds: tests/test_docs.py)
    table = detector_table(load_spec(tiny_table / "tiny"), records, tmp_path)
    assert f"**{100 * bb0['map']:.1f}** | {100 * bb0['map']:.1f} | 58.0 |" in table
    section = table_section(load_spec(tiny_table / "tiny"), records, tmp_path)
    assert f"Detections of the nobb seed 0 model ({100 * nobb0['map']:.1f} mAP)" in section
    # a record keeps its resolved config: an option removed from the code since (here: one the code
    # never had, and another hash) leaves it current; an older record without it gets it on the next pass
    assert bb0["resolved"] == reproduce.resolved(load_spec(tiny_table / "tiny"), load_spec(tiny_table / "tiny").rows[0], 0)
    bb_path = records / "tiny" / "bb-s0.json"
    bb_path.write_text(json.dumps({**bb0, "config_sha1": "older", "resolved": [{**bb0["resolved"][0], "gone": 1},
                                                                                bb0["resolved"][1]]}))
    assert _listing(argv, capsys).count(": recorded (") == 2
    nobb_path = records / "tiny" / "nobb-s0.json"
    nobb_path.write_text(json.dumps({k: v for k, v in nobb0.items() if k != "resolved"}))
    assert reproduce.main(argv) == 0 and json.loads(nobb_path.read_text())["resolved"] == nobb0["resolved"]
    # a changed config is a new training (another hash, another value), never a stale record; the
    # picture of the model before stays until the new record is there
    (tiny_table / "tiny" / "a.yaml").write_text(TINY_CONFIG.replace("iterations: 10", "iterations: 12"))
    assert _listing(argv, capsys).count("to run") == 2
    nobb_path.write_text(json.dumps({**nobb0, "config_sha1": "newer"}))
    assert "tiny picture" in (out := _listing(argv, capsys)) and "STALE, to draw" in out


def _listing(argv: list[str], capsys) -> str:
    capsys.readouterr()
    assert reproduce.main([*argv, "--list"]) == 0
    return capsys.readouterr().out


def test_unknown_table_and_bad_spec_are_one_line_errors(tiny_table, tmp_path):
    argv = ["--configs", str(tiny_table), "--records", str(tmp_path / "r"), "--list"]
    with pytest.raises(InputError, match="no such table"):
        reproduce.main([*argv, "nope"])
    (tiny_table / "tiny" / "table.yaml").write_text(TINY_TABLE.replace("config: a.yaml, paper", "config: b.yaml, paper"))
    with pytest.raises(InputError, match="b.yaml not found"):
        reproduce.main(argv)


def test_the_repository_tables_load_and_resolve():
    """Every reported table's spec loads, and every row's config resolves with train_det's rules."""
    specs = reproduce.load_specs(reproduce.TOOLS / "configs")
    assert [s.id for s in specs] == ["main", "methods", "faster_rcnn", "table9", "table9_zf5", "table10",
                                     "table9_shape", "e2e", "table2", "table6", "table7", "scaling"]
    for spec in specs:
        for row in spec.rows:
            source = reproduce.trunk_run(spec, specs, row)
            trunk = reproduce.resolved(*source) if source else None
            assert len(reproduce.sha1_of(reproduce.resolved(spec, row, 0, trunk))) == 40


def test_a_preset_that_draws_other_images_makes_its_records_stale():
    """A detector record keeps its preset's settings: one written on voc07 before its classes had
    typical looks (no settings kept, or typicality 0) is not of today's voc07; voc07_shape is that set."""
    specs = {s.id: s for s in reproduce.load_specs(reproduce.TOOLS / "configs")}
    main, shape = specs["main"], specs["table9_shape"]
    row = main.rows[0]
    now = reproduce.resolved(main, row, 0)
    assert now[1]["synthetic"]["compose"]["typicality"] > 0
    before = {"config_sha1": "0" * 40, "test_set": [], "resolved": [now[0], dict(main.data)]}
    assert not reproduce.is_current(before, row, now, "1" * 40)
    shapes_only = json.loads(json.dumps(now))
    shapes_only[1]["synthetic"]["compose"]["typicality"] = 0.0
    assert not reproduce.is_current({**before, "resolved": shapes_only}, row, now, "1" * 40)
    shape_now = reproduce.resolved(shape, shape.rows[-1], 0)  # ftfc7 bb: the main job's config
    assert shape_now[1]["synthetic"] == shapes_only[1]["synthetic"] and shape_now[0] == now[0]
    with pytest.raises(InputError, match="unknown data preset"):
        reproduce.data_spec(dataclasses.replace(main, data={**main.data, "preset": "voc12"}))


def test_a_record_written_before_a_key_was_renamed_stays_current():
    """Records of the main job keep finetune.freeze_blocks etc.: read as finetune.e2e.* they still match."""
    spec = next(s for s in reproduce.load_specs(reproduce.TOOLS / "configs") if s.id == "e2e")
    row = next(r for r in spec.rows if r.id == "spp_e2e")
    now = reproduce.resolved(spec, row, 0)
    e2e = now[0]["finetune"]["e2e"]
    old_finetune = {**{k: v for k, v in now[0]["finetune"].items() if k != "e2e"}, **e2e}
    old = {"config_sha1": "0" * 40, "test_set": [], "resolved": [{**now[0], "finetune": old_finetune}, now[1]]}
    assert reproduce.is_current(old, row, now, "1" * 40)
    old["resolved"][0]["finetune"]["freeze_blocks"] = e2e["freeze_blocks"] + 1  # the old name, another value
    assert not reproduce.is_current(old, row, now, "1" * 40)


def test_a_classifier_record_of_the_set_before_looks_and_varied_scales_is_stale():
    """The classification set drew every object at one scale and fill before data.typicality and
    data.object_share: a record without them is of another set, whatever typicality it is read at."""
    spec = next(s for s in reproduce.load_specs(reproduce.TOOLS / "configs") if s.id == "table2")
    row = spec.rows[0]
    now = reproduce.resolved(spec, row, 0)
    before = json.loads(json.dumps(now))
    del before[0]["data"]["typicality"], before[0]["data"]["object_share"]
    old = {"kind": "classifier", "config_sha1": "0" * 40, "test_set": [], "resolved": before}
    assert not reproduce.is_current(old, row, now, "1" * 40)
    old["resolved"] = now
    assert reproduce.is_current(old, row, now, "1" * 40)


def test_a_table_that_starts_from_a_classifier_run_keys_its_records_on_that_run():
    """Table 10's rows start from Table 2's SPP single-size classifier, seed 0: its work dir is their
    features.pretrained and its config is part of theirs, so retraining it makes them stale."""
    specs = reproduce.load_specs(reproduce.TOOLS / "configs")
    spec = next(s for s in specs if s.id == "table10")
    source = reproduce.trunk_run(spec, specs)
    assert [source[0].id, source[1].id, source[2]] == ["table2", "spp_single", 0]
    trunk = reproduce.resolved(*source)
    now = reproduce.resolved(spec, spec.rows[0], 0, trunk)
    assert now[0]["features"]["pretrained"] == str(reproduce.work_dir(reproduce.RUNS_DIR, reproduce.sha1_of(trunk)))
    assert now[0]["features"]["backbone"] == "zf5" and now[1]["trunk"] == trunk
    other = reproduce.resolved(source[0], dataclasses.replace(source[1], set=("train.epochs=9",)), 0)
    assert reproduce.resolved(spec, spec.rows[0], 0, other)[0]["features"]["pretrained"] != now[0]["features"]["pretrained"]
    assert not reproduce.is_current({"config_sha1": "0" * 40, "test_set": [], "resolved": now}, spec.rows[0],
                                    reproduce.resolved(spec, spec.rows[0], 0, other), "1" * 40)
    with pytest.raises(InputError, match="no classifier row 'nope'"):
        reproduce.trunk_run(dataclasses.replace(spec, trunk=("table2", "nope", 0)), specs)


def test_a_bad_trunk_entry_is_a_one_line_error(tiny_table):
    (tiny_table / "tiny" / "table.yaml").write_text(TINY_TABLE.replace("seeds: [0]", "seeds: [0]\ntrunk: table2"))
    with pytest.raises(InputError, match="trunk must be"):
        load_spec(tiny_table / "tiny")


def test_every_record_in_the_repository_is_current(capsys):
    """A record whose config or data changed since is a stale figure on the results page: remove it
    (git rm) or run it again."""
    assert reproduce.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "STALE" not in out and "to draw" not in out  # a picture not drawn by the model of its record
