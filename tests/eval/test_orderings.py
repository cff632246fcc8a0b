"""The paper's orderings rendered from records: paired by seed (or by split), the verdict, bad specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from data.errors import InputError
from eval.orderings import ordering_lines, paired_differences, verdict
from eval.run_records import load_spec, write_record

DETECTOR = """title: T
question: Q?
kind: detector
data: {preset: voc07}
seeds: [0, 1, 2]
orderings:
  - {better: big, worse: small, claim: "Big over small"}
rows:
  - {id: small, name: Small, config: a.yaml}
  - {id: big, name: Big, config: a.yaml}
"""

FOLDER = """title: F
question: Q?
kind: image_svm
data: {embedded: 10}
seeds: [0]
orderings:
  - {better: spp, worse: one, claim: "The pyramid over one level"}
rows:
  - {id: spp, name: SPP, args: []}
  - {id: one, name: One level, args: [--levels, "6"]}
"""


def _table(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "configs" / "t"
    folder.mkdir(parents=True)
    (folder / "table.yaml").write_text(text)
    (folder / "a.yaml").write_text("{}\n")
    return folder


def _record(records: Path, row: str, seed: int, **figures) -> None:
    write_record(records / "t" / f"{row}-s{seed}.json", {"seed": seed, "config_sha1": "x", "commit": "c",
                                                         "machine": "m", "date": "d", "train_s": 1.0, **figures})


def test_seeds_pair_and_a_reversed_ordering_says_so(tmp_path):
    spec, records = load_spec(_table(tmp_path, DETECTOR)), tmp_path / "records"
    for seed, (small, big) in enumerate([(0.50, 0.40), (0.52, 0.47), (0.55, 0.50)]):
        _record(records, "small", seed, map=small)
        _record(records, "big", seed, map=big)
    rows = {r.id: r for r in spec.rows}
    diffs, unit = paired_differences(spec, rows["big"], rows["small"], records)
    assert unit == "seed" and diffs == pytest.approx([-10.0, -5.0, -5.0])
    [line] = [ln for ln in ordering_lines(spec, records) if ln.startswith("- ")]
    assert "**-6.7 ± 2.9** points (-10.0 / -5.0 / -5.0; paired by seed): **reversed**" in line


def test_only_seeds_recorded_for_both_rows_pair(tmp_path):
    spec, records = load_spec(_table(tmp_path, DETECTOR)), tmp_path / "records"
    _record(records, "small", 0, map=0.5)
    _record(records, "big", 1, map=0.6)
    assert "not measured yet" in "\n".join(ordering_lines(spec, records))
    _record(records, "big", 0, map=0.6)
    assert "**+10.0** points (+10.0; paired by seed): **holds**" in "\n".join(ordering_lines(spec, records))


def test_one_folder_record_pairs_its_splits(tmp_path):
    spec, records = load_spec(_table(tmp_path, FOLDER)), tmp_path / "records"
    _record(records, "spp", 0, mean=0.7, scores=[0.7, 0.8, 0.6, 0.7])
    _record(records, "one", 0, mean=0.7, scores=[0.6, 0.8, 0.7, 0.7])
    rows = {r.id: r for r in spec.rows}
    diffs, unit = paired_differences(spec, rows["spp"], rows["one"], records)
    assert unit == "split" and diffs == pytest.approx([10.0, 0.0, -10.0, 0.0])
    assert "holds in 1, reversed in 1, tied in 2 of 4" in "\n".join(ordering_lines(spec, records))


def test_verdicts():
    assert verdict([0.2, 1.0]) == "holds"
    assert verdict([-0.2, -1.0]) == "reversed"
    assert verdict([0.01, -0.02, 0.0]) == "a tie"  # differences the page rounds to 0.0
    assert verdict([0.3, 0.01, -0.5]) == "holds in 1, reversed in 1, tied in 1 of 3"
    assert verdict([0.3, 0.01]) == "holds in 1, tied in 1 of 2"


@pytest.mark.parametrize("entry", ["{better: big, worse: nope, claim: x}", "{better: big, worse: small}", "big"])
def test_a_bad_ordering_is_a_one_line_error_naming_the_spec(tmp_path, entry):
    text = DETECTOR.replace('{better: big, worse: small, claim: "Big over small"}', entry)
    with pytest.raises(InputError, match="table.yaml.*orderings"):
        load_spec(_table(tmp_path, text))
