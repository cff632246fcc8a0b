"""tools/speed_report.py end to end on a tiny synthetic set, and the report writer on known numbers."""

import json

import pytest

from detection.inference.detect import DETECT_STAGES
from detection.speed.benchmark import MethodTiming, speed_result
from detection.speed.report import markdown, write_report
from tools._cli import run_cli
from tools.make_synthetic import main as make_synthetic
from tools.speed_report import main


def _timing(total, conv, fc):
    stages = dict.fromkeys(DETECT_STAGES, 0.0)
    stages.update(conv=conv, fc=fc)
    return MethodTiming(total, stages, 2)


def test_report_files_and_ratio(tmp_path):
    settings = {"backbone": "zf5", "num_images": 2, "num_proposals": 100, "scales": [688], "threads": 2,
                "device": "cpu"}
    doc = speed_result(settings, _timing(0.5, 0.2, 0.3), _timing(20.0, 19.0, 1.0), 1.5)
    assert doc["ratio"] == pytest.approx(40.0)
    write_report(doc, tmp_path)
    back = json.loads((tmp_path / "speed.json").read_text())
    assert back["spp"]["stages"]["conv"] == 0.2 and back["rcnn"]["seconds_per_image"] == 20.0
    assert (tmp_path / "speed.png").stat().st_size > 1000
    table = markdown(doc)
    assert "**40.0x**" in table and "| 0.200 | 19.000 |" in table and "1.50 s per image" in table


@pytest.mark.slow
def test_speed_report_cli_tiny(tmp_path):
    data = tmp_path / "voc"
    assert make_synthetic(["--out", str(data), "--num-trainval", "2", "--num-test", "2", "--seed", "1"]) == 0
    out = tmp_path / "speed"
    args = ["--data-root", str(data), "--out", str(out), "--num-images", "1", "--num-proposals", "20",
            "--scales", "160", "--fc", "64", "--workers", "1", "--no-progress"]
    assert main(args) == 0
    doc = json.loads((out / "speed.json").read_text())
    assert doc["num_images"] == 1 and doc["scales"] == [160] and doc["backbone"] == "zf5"
    for method in ("spp", "rcnn"):
        assert set(doc[method]["stages"]) == set(DETECT_STAGES)
        assert doc[method]["seconds_per_image"] == pytest.approx(sum(doc[method]["stages"].values()))
    assert doc["ratio"] == pytest.approx(doc["rcnn"]["seconds_per_image"] / doc["spp"]["seconds_per_image"])
    assert (out / "speed.md").is_file() and (out / "speed.png").is_file()


def test_speed_report_bad_input(tmp_path):
    assert run_cli(main, ["--data-root", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert run_cli(main, ["--data-root", str(tmp_path), "--out", str(tmp_path / "o"), "--num-images", "0"]) == 2


def test_fast_flag_turns_on_the_presets_levers_and_flags_win(tmp_path):
    from detection.config import FAST_PRESET
    from detection.runtime.config_io import parse_overrides
    from tools.speed_report import parse_args

    head = parse_overrides(list(FAST_PRESET))["head"]
    base = ["--data-root", str(tmp_path), "--out", str(tmp_path / "o"), "--device", "cpu"]
    plain, fast = parse_args(base), parse_args([*base, "--fast"])
    assert (plain.int8_fc, plain.svd_fc6, plain.svd_fc7) == (False, None, None)
    assert (fast.int8_fc, fast.svd_fc6, fast.svd_fc7) == (head.get("int8", False), head.get("svd_fc6"),
                                                          head.get("svd_fc7"))
    assert parse_args([*base, "--fast", "--svd-fc6", "7"]).svd_fc6 == 7


def test_speed_levers_are_spelled_as_in_test_det_and_the_old_flags_warn(tmp_path, capsys):
    """--set head.* as test_det.py and demo.py spell the levers; --svd-fc6 / --svd-fc7 / --int8-fc still
    work for one release, with a warning naming the new spelling; other keys are refused."""
    from data.errors import InputError
    from tools.speed_report import parse_args

    base = ["--data-root", str(tmp_path), "--out", str(tmp_path / "o"), "--device", "cpu"]
    new = parse_args([*base, "--set", "head.svd_fc6=64", "--set", "head.svd_fc7=32", "--set", "head.int8=true"])
    assert (new.svd_fc6, new.svd_fc7, new.int8_fc) == (64, 32, True)
    assert capsys.readouterr().err == ""
    old = parse_args([*base, "--svd-fc6", "64", "--svd-fc7", "32", "--int8-fc"])
    assert (old.svd_fc6, old.svd_fc7, old.int8_fc) == (64, 32, True)
    err = capsys.readouterr().err
    assert "--svd-fc6 is deprecated; use --set head.svd_fc6=64" in err and "--set head.int8=true" in err
    assert parse_args([*base, "--svd-fc6", "64", "--set", "head.svd_fc6=8"]).svd_fc6 == 8  # --set comes last
    with pytest.raises(InputError, match="head.svd_fc6"):
        parse_args([*base, "--set", "test.nms_iou=0.4"])
