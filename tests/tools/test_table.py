"""tools/table.py on work dirs that differ by seed, by setting, or are broken."""

import json
from pathlib import Path

from detection.config import load_config
from detection.runtime.config_io import save_config
from tools import table as accuracy_table


def work_dir(root: Path, overrides: list[str], scores: dict, meta: dict | None = None) -> Path:
    """A work dir as tools/train_det.py and tools/test_det.py leave it, minus the model files."""
    root.mkdir(parents=True)
    save_config(load_config(None, overrides), root / "config.yaml")
    (root / "meta.json").write_text(json.dumps(meta or {"data_root": "d", "train_split": "trainval",
                                                       "num_train_images": 4}))
    (root / "results").mkdir()
    (root / "results" / "map_test_voc07.json").write_text(json.dumps(scores))
    return root


def scores(a: float, b: float) -> dict:
    return {"metric": "voc07", "map": (a + b) / 2, "ap": {"cat": a, "dog": b}}


def test_seeds_share_a_column_and_settings_do_not(tmp_path, capsys):
    dirs = [work_dir(tmp_path / "s0", ["seed=0"], scores(0.2, 0.4)),
            work_dir(tmp_path / "s1", ["seed=1"], scores(0.3, 0.5)),
            work_dir(tmp_path / "r0", ["seed=0", "method=rcnn"], scores(0.1, 0.1)),
            work_dir(tmp_path / "other_data", ["seed=2"], scores(0.9, 0.9), {"data_root": "elsewhere"})]
    out = tmp_path / "table.md"
    assert accuracy_table.main([*map(str, dirs), "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == ("| AP % (voc07, test) | SPP 1-scale 688 (s0 s1): seeds 0 1, mean ± std | R-CNN (r0): seed 0 "
                        "| SPP 1-scale 688 (other_data): seed 2 |")
    assert lines[2] == "| cat | 25.0 ± 7.1 | 10.0 | 90.0 |"
    assert lines[5] == "| mAP per seed | 30.0 / 40.0 | 10.0 | 90.0 |"
    assert capsys.readouterr().out == out.read_text()
    assert accuracy_table.main([*map(str, dirs[:2]), "--each"]) == 0
    assert "| **mAP** | **30.0** | **40.0** |" in capsys.readouterr().out


def test_shrunk_selective_search_is_a_setting_of_its_own_and_named(tmp_path, capsys):
    dirs = [work_dir(tmp_path / "full", ["seed=0"], scores(0.2, 0.4)),
            work_dir(tmp_path / "shrunk", ["seed=1", "proposals.resize_longer=320"], scores(0.3, 0.5))]
    assert accuracy_table.main(list(map(str, dirs))) == 0
    out = capsys.readouterr().out
    assert "| **mAP** | **30.0** | **40.0** |" in out  # two columns: not averaged as seeds
    assert "<= 2000 proposals, fc" in out and "<= 2000 proposals (selective search at 320 px), fc" in out


def test_bad_scores_file_is_one_line(tmp_path, capsys):
    bad = work_dir(tmp_path / "w", [], scores(0.2, 0.4))
    (bad / "results" / "map_test_voc07.json").write_text('{"map": 0.3}')
    assert accuracy_table.run_cli(accuracy_table.main, [str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "map_test_voc07.json" in err[0]


def test_end_to_end_fine_tuning_is_a_setting_of_its_own_and_named(tmp_path, capsys):
    e2e = ["finetune.mode=e2e", "finetune.e2e.freeze_blocks=14"]
    dirs = [work_dir(tmp_path / "fc", ["seed=0"], scores(0.2, 0.4)),
            work_dir(tmp_path / "e2e", ["seed=1", *e2e], scores(0.3, 0.5)),
            work_dir(tmp_path / "rcnn_e2e", ["seed=0", "method=rcnn", *e2e], scores(0.1, 0.1)),
            work_dir(tmp_path / "none", ["seed=0", "finetune.enabled=false"], scores(0.1, 0.2))]
    assert accuracy_table.main(list(map(str, dirs))) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ("| AP % (voc07, test) | SPP 1-scale 688 (fc): seed 0 | SPP 1-scale 688 e2e (e2e): "
                                   "seed 1 | R-CNN e2e (rcnn_e2e): seed 0 | SPP 1-scale 688 (none): seed 0 |")
    assert "proposals, fc layers fine-tuned, train" in out
    assert "proposals, conv blocks from 14 on and fc fine-tuned, train" in out
    assert "proposals, not fine-tuned, train" in out
