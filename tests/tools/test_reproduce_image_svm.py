"""tools/reproduce.py on image_svm tables (whole-image SPP + linear SVMs, tools/image_svm.py): a row is
the tool's flags, its record keys on the settings they give, the data seed can follow the record's,
and a row may use a classifier run's ZF-5."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from data.errors import InputError
from eval.results_page import image_svm_table, table_section
from eval.run_records import load_spec
from tools import reproduce

TINY_TABLE = """title: Tiny image SVMs
question: does it run?
kind: image_svm
data: {preset: voc07, num_trainval: 8, num_test: 3, seed: each}
seeds: [0]
rows:
  - {id: spp, name: SPP, args: [--backbone, zf5, --pretrained, none, --side, "64"], paper: 78.39, readme: true}
  - {id: one, name: one level, args: [--backbone, zf5, --pretrained, none, --side, "64", --levels, "6"]}
"""


@pytest.fixture
def tiny_table(tmp_path: Path) -> Path:
    (tmp_path / "configs" / "tiny").mkdir(parents=True)
    (tmp_path / "configs" / "tiny" / "table.yaml").write_text(TINY_TABLE)
    return tmp_path / "configs"


def _specs() -> dict:
    return {s.id: s for s in reproduce.load_specs(reproduce.TOOLS / "configs")}


def test_a_record_keys_on_the_tools_settings_and_its_own_detection_set():
    """Table 6: each seed's record runs on the detection set of that seed (the SVMs are deterministic:
    the spread is the data's), and its resolved config holds the tool's settings, built from the
    row's flags without running it."""
    spec = _specs()["table6"]
    row = next(r for r in spec.rows if r.id == "one_level")
    now = [reproduce.resolved(spec, row, s) for s in (0, 2)]
    assert [n[1]["seed"] for n in now] == [0, 2] and now[0][1]["synthetic"] == now[1][1]["synthetic"]
    assert now[0][0]["levels"] == [6] and now[0][0]["view"] == "full" and now[0][0]["side"] == 224
    assert now[0][0]["backbone"] == "mobilenet_v2" and now[1][0]["seed"] == 2
    old = {"kind": "image_svm", "config_sha1": "0" * 40, "test_set": [], "resolved": now[0]}
    assert reproduce.is_current(old, row, now[0], "1" * 40)
    assert not reproduce.is_current(old, row, reproduce.resolved(spec, spec.rows[0], 0), "1" * 40)  # {6, 3, 2, 1}
    with pytest.raises(InputError, match="'one_level': .*--nope"):
        reproduce.resolved(spec, dataclasses.replace(row, args=("--nope",)), 0)
    with pytest.raises(InputError, match="must be an integer or 'each'"):
        reproduce.resolved(dataclasses.replace(spec, data={**spec.data, "seed": "all"}), row, 0)


def test_a_zf5_row_uses_the_classifier_run_it_names():
    """A row's trunk (Table 2's SPP single-size, seed 0) is the tool's --backbone / --pretrained, and
    its config is part of the row's: retraining it makes the row stale."""
    specs = list(_specs().values())
    spec = _specs()["table7"]
    row = next(r for r in spec.rows if r.id == "zf5_fc7")
    source = reproduce.trunk_run(spec, specs, row)
    assert [source[0].id, source[1].id, source[2]] == ["table2", "spp_single", 0]
    assert reproduce.trunk_run(spec, specs, spec.rows[0]) is None  # MobileNetV2 rows: none
    trunk = reproduce.resolved(*source)
    now = reproduce.resolved(spec, row, 0, trunk)
    assert now[0]["backbone"] == "zf5" and now[0]["layer"] == "fc7" and now[1]["trunk"] == trunk
    assert now[0]["pretrained"] == str(reproduce.work_dir(reproduce.RUNS_DIR, reproduce.sha1_of(trunk)))
    # a folder table: one record whose spread is over the tool's splits; seed s draws splits s x 10 ..
    assert now[0]["splits"] == 10 and now[0]["embedded"] == 60 and now[0]["seed"] == 0
    assert reproduce.resolved(spec, row, 1, trunk)[0]["seed"] == 10


def test_only_image_svm_rows_have_args_and_no_config(tiny_table):
    (tiny_table / "tiny" / "table.yaml").write_text(TINY_TABLE.replace("args:", "config: a.yaml, args:", 1))
    with pytest.raises(InputError, match="args: \\[FLAG, ...\\] and no config"):
        load_spec(tiny_table / "tiny")
    (tiny_table / "tiny" / "table.yaml").write_text(TINY_TABLE.replace("kind: image_svm", "kind: detector"))
    with pytest.raises(InputError, match="args belong to image_svm and reference rows"):
        load_spec(tiny_table / "tiny")


@pytest.mark.slow
def test_an_image_svm_table_is_reproduced_recorded_and_rendered(tiny_table, tmp_path, capsys, reproduce_runs):
    records, runs = tmp_path / "records", reproduce_runs
    argv = ["--configs", str(tiny_table), "--records", str(records), "--runs-dir", str(runs), "tiny"]
    assert reproduce.main(argv) == 0
    spp, one = (json.loads((records / "tiny" / f"{r}-s0.json").read_text()) for r in ("spp", "one"))
    assert spp["task"] == "voc07" and spp["metric"] == "mAP" and len(spp["scores"]) == 1 and 0 <= spp["mean"] <= 1
    assert 0 < len(spp["per_class"]) <= 12 and spp["images"] == 11 and spp["vector_s_per_image"] > 0
    assert spp["args"] == ["--backbone", "zf5", "--pretrained", "none", "--side", "64"] and spp["config"] is None
    assert "--data-root" in spp["commands"][0] and "voc07-8-3-s0" in spp["commands"][0]
    assert spp["resolved"][0]["levels"] == [6, 3, 2, 1] and one["resolved"][0]["levels"] == [6]
    assert one["dim"] * 50 == spp["dim"] * 36  # 256 x 36 against 256 x 50
    capsys.readouterr()
    assert reproduce.main([*argv, "--list"]) == 0
    assert capsys.readouterr().out.count(": recorded (") == 2
    spec = load_spec(tiny_table / "tiny")
    table = image_svm_table(spec, records, tmp_path)
    assert f"| SPP | **{100 * spp['mean']:.1f}** | {100 * spp['mean']:.1f} | 78.39 |" in table
    assert "`--backbone zf5 --pretrained none --side 64 --levels 6`" in table
    assert "python tools/image_svm.py --data-root" in table_section(spec, records, tmp_path)
