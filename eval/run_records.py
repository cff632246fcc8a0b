"""Reported tables as data: a spec per table (its rows, seeds, data, the paper's figures) and one
small JSON record per run (row x seed) that tools/reproduce.py writes and tools/render_docs.py renders.

A table lives in ``tools/configs/<table>/``: ``table.yaml`` is its spec, every other YAML file the
config of one row. The records of a table live in ``docs/results/records/<table>/<row>-s<seed>.json``,
in the repository, so that every figure a user reads can be traced to the run that produced it.

Spec (YAML)::

    title: SPP-net against R-CNN           # the section's heading
    question: ...                          # what the table answers, one sentence
    kind: detector                         # detector (mAP), classifier (top-1 error), image_svm,
                                           # reference (tools/faster_rcnn.py, mAP) or scaling (below)
    data: {preset: voc07, num_trainval: 400, num_test: 200, seed: 0}   # tools/make_synthetic.py
                                           # (seed: each = the record's seed)
    seeds: [0, 1, 2]
    trunk: {table: table2, row: spp_single, seed: 0}   # optional: start from this classifier run
                                           # (also a row key: that row only)
    reduced: ...                           # what differs from the paper's setting, and why
    paper_source: ...                      # where the paper's figures come from
    notes: ...                             # prose under the table (no figures: they would drift)
    picture: {row: bb, seed: 0, images: 6, out: docs/demo_grid.png}   # optional: tools/demo.py's grid
                                           # of that record's model on the first test images
    orderings:                             # optional: the paper's orderings, checked (eval.orderings)
      - {better: spp5, worse: spp1, claim: "5 scales over 1"}
    memory_gb: 4                           # optional: train_det's --memory-gb for every row
    rows:
      - id: spp1                           # the record's name
        name: SPP-net, 1 scale             # the row's label
        config: spp1.yaml                  # the training config, in this folder
        set: []                            # extra training --set pairs
        test_set: []                       # test-time --set pairs (tools/test_det.py)
        paper: 58.0                        # the paper's figure (mAP %, or top-1 error %), or null
        readme: true                       # also a row of the README's table

A table of kind ``image_svm`` (whole-image SPP + linear SVMs, tools/image_svm.py) has no config
files: a row is the tool's flags, ``args: [--levels, "6"]``; a ``trunk`` becomes the tool's
``--backbone zf5 --pretrained <the classifier run's work dir>``. Its ``data`` is
either a detection set as above (VOC 2007's classification task) or the embedded classification set
as a folder, ``{embedded: 60, train_per_class: 30, test_per_class: 30}`` (the tool's flags).

A table of kind ``reference`` is the reference detector users would pick today (torchvision's Faster
R-CNN on the same trunk, tools/faster_rcnn.py) on a detection set: a row is that tool's flags too.

A table of kind ``scaling`` measures what each stage costs as the work grows (docs/performance.md
renders it, ``eval.scaling_page``): a row is a detector row (``config``, ``set``, ``test_set``)
with its own dataset sizes, ``data: {num_trainval: 1600, num_test: 800}``, merged over the
table's ``data: {preset: voc07, seed: 0}``; it has no paper figure, no README line and no
orderings. Its records keep the stage tables of the training and the test besides the scores
(tools/configs/scaling/table.yaml).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from data.cache import atomic_write_text
from data.errors import InputError

KINDS = ("detector", "classifier", "image_svm", "reference", "scaling")
ARGS_KINDS = ("image_svm", "reference")  # rows that are a tool's flags, not a config file
ROW_KEYS = {"id", "name", "config", "args", "trunk", "set", "test_set", "paper", "readme", "data"}
SIZE_KEYS = ("num_trainval", "num_test")  # a scaling row's own data: the dataset's sizes
SPEC_FILE = "table.yaml"


@dataclass(frozen=True)
class RowSpec:
    """One row of a table: a training config (+ overrides) and how it is tested, or (image_svm) the
    tool's flags."""

    id: str
    name: str
    config: Path | None  # None for an image_svm row
    set: tuple[str, ...] = ()
    test_set: tuple[str, ...] = ()
    paper: float | None = None
    readme: bool = False
    args: tuple[str, ...] = ()  # image_svm: tools/image_svm.py's flags; reference: tools/faster_rcnn.py's
    trunk: tuple[str, str, int] | None = None  # the table's trunk, for this row only
    data: Mapping[str, Any] = field(default_factory=dict)  # scaling: the sizes merged over the table's data


@dataclass(frozen=True)
class TableSpec:
    """A reported table: rows x seeds on one dataset."""

    id: str
    title: str
    question: str
    kind: str
    data: Mapping[str, Any]
    seeds: tuple[int, ...]
    rows: tuple[RowSpec, ...]
    reduced: str = ""
    paper_source: str = ""
    notes: str = ""
    # (table, row, seed) of a classifier row whose trained network the detector rows start from
    # (its conv layers and fc6 / fc7), or None for the trunk the rows' configs name
    trunk: tuple[str, str, int] | None = None
    # (row, seed, number of test images, PNG path relative to the repository root): tools/demo.py's
    # grid of that record's model, drawn by tools/reproduce.py, or None
    picture: tuple[str, int, int, str] | None = None
    # the paper's orderings as (better row, worse row, the claim in words): eval.orderings checks them
    orderings: tuple[tuple[str, str, str], ...] = ()
    # train_det's --memory-gb for every row (a detector or scaling table), or None for its default
    memory_gb: float | None = None

    def record_path(self, records: Path, row: RowSpec, seed: int) -> Path:
        return records / self.id / f"{row.id}-s{seed}.json"

    def picture_record_path(self, records: Path) -> Path:
        """Where tools/reproduce.py keeps how the table's picture was drawn (its model's hash, the
        command): beside the row records, under a name no row record has."""
        return records / self.id / "picture.json"

    def for_row(self, row: RowSpec) -> TableSpec:
        """The spec as ``row`` runs on it: the table's data with the row's own (a scaling row's
        sizes) merged over it; the spec itself for a row without data of its own."""
        return replace(self, data={**self.data, **row.data}) if row.data else self

    @property
    def on_folder(self) -> bool:
        """Whether it runs on the embedded classification set as an image folder (an image_svm
        table's ``data: {embedded: N, ...}``) rather than on an embedded detection set."""
        return self.kind == "image_svm" and "embedded" in self.data


def _need(spec: Mapping[str, Any], key: str, kind: type, where: Path) -> Any:
    value = spec.get(key)
    if not isinstance(value, kind):
        raise InputError(where, f"{key!r} must be a {kind.__name__}, got {value!r}")
    return value


def _row(entry: Any, folder: Path, where: Path, kind: str) -> RowSpec:
    if not isinstance(entry, dict):
        raise InputError(where, f"each row must be a mapping, got {entry!r}")
    name = entry.get("id")
    unknown = set(entry) - ROW_KEYS
    if unknown:
        raise InputError(where, f"row {name!r}: unknown keys {sorted(unknown)}")
    if kind in ARGS_KINDS:  # the tool's flags, no config file
        if "config" in entry or not isinstance(entry.get("args", []), list):
            raise InputError(where, f"row {name!r}: an {kind} row has args: [FLAG, ...] and no config")
        config = None
    else:
        if "args" in entry:
            raise InputError(where, f"row {name!r}: args belong to image_svm and reference rows; a {kind} row "
                                    "has a config")
        config = (folder / _need(entry, "config", str, where)).resolve()
        if not config.is_file():
            raise InputError(where, f"row {name!r}: config {config} not found")
    paper = entry.get("paper")
    if paper is not None and not isinstance(paper, (int, float)):
        raise InputError(where, f"row {name!r}: paper must be a number or null")
    return RowSpec(_need(entry, "id", str, where), _need(entry, "name", str, where), config,
                   tuple(entry.get("set") or ()), tuple(entry.get("test_set") or ()),
                   None if paper is None else float(paper), bool(entry.get("readme", False)),
                   tuple(str(a) for a in entry.get("args") or ()), _trunk(entry, kind, where),
                   _row_data(entry, kind, where))


def _row_data(entry: Mapping[str, Any], kind: str, where: Path) -> dict[str, int]:
    """A scaling row's ``data: {num_trainval: N, num_test: M}`` (its dataset's sizes), checked; {}
    for a row of another kind, which may not have one."""
    name, data = entry.get("id"), entry.get("data")
    if kind != "scaling":
        if "data" in entry:
            raise InputError(where, f"row {name!r}: a row's own data belongs to scaling tables")
        return {}
    if "paper" in entry or "readme" in entry:
        raise InputError(where, f"row {name!r}: a scaling row has no paper figure and no README line")
    if not isinstance(data, dict) or set(data) != set(SIZE_KEYS) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in data.values()):
        raise InputError(where, f"row {name!r}: a scaling row has data: {{num_trainval: N, num_test: M}} "
                                f"(positive integers), got {data!r}")
    return dict(data)


def load_spec(folder: Path) -> TableSpec:
    """The table spec in ``folder/table.yaml``; its id is the folder's name.

    Raises:
        InputError: naming the spec file and the first problem.
    """
    where = Path(folder) / SPEC_FILE
    if not where.is_file():
        raise InputError(where, "no table spec here")
    try:
        spec = yaml.safe_load(where.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise InputError(where, f"not valid YAML ({str(err).splitlines()[0]})") from None
    kind = _need(spec, "kind", str, where)
    if kind not in KINDS:
        raise InputError(where, f"kind must be one of {KINDS}")
    rows = tuple(_row(e, Path(folder), where, kind) for e in _need(spec, "rows", list, where))
    ids = [r.id for r in rows]
    if len(set(ids)) != len(ids):
        raise InputError(where, f"row ids repeat: {ids}")
    seeds = tuple(int(s) for s in _need(spec, "seeds", list, where))
    data = dict(_need(spec, "data", dict, where))
    if kind == "scaling" and set(data) & set(SIZE_KEYS):
        raise InputError(where, f"a scaling table's sizes are its rows' (data: {{num_trainval, num_test}} per "
                                f"row), not the table's: {sorted(set(data) & set(SIZE_KEYS))}")
    return TableSpec(Path(folder).name, _need(spec, "title", str, where), _need(spec, "question", str, where),
                     kind, data, seeds, rows, str(spec.get("reduced", "")),
                     str(spec.get("paper_source", "")), str(spec.get("notes", "")), _trunk(spec, kind, where),
                     _picture(spec, rows, seeds, kind, where), _orderings(spec, rows, kind, where),
                     _memory_gb(spec, kind, where))


def _memory_gb(spec: Mapping[str, Any], kind: str, where: Path) -> float | None:
    """The spec's ``memory_gb`` (train_det's --memory-gb for every row), or None where it has none."""
    value = spec.get("memory_gb")
    if value is not None and (kind not in ("detector", "scaling") or not isinstance(value, (int, float)) or value <= 0):
        raise InputError(where, f"memory_gb must be a number > 0 in a detector or scaling table, got {value!r}")
    return None if value is None else float(value)


def _orderings(spec: Mapping[str, Any], rows: tuple[RowSpec, ...], kind: str,
               where: Path) -> tuple[tuple[str, str, str], ...]:
    """The spec's ``orderings: [{better: ROW, worse: ROW, claim: TEXT}, ...]``, checked."""
    entries, ids = spec.get("orderings") or [], {r.id for r in rows}
    if not isinstance(entries, list) or (entries and kind == "scaling"):
        raise InputError(where, "orderings must be a list of {better: ROW, worse: ROW, claim: TEXT} (not in a "
                                "scaling table)")
    for e in entries:
        if not isinstance(e, dict) or set(e) != {"better", "worse", "claim"} or not {e["better"], e["worse"]} <= ids:
            raise InputError(where, f"orderings: {e!r} is not {{better: ROW, worse: ROW, claim: TEXT}} of this "
                                    "table's rows")
    return tuple((str(e["better"]), str(e["worse"]), str(e["claim"])) for e in entries)


def _picture(spec: Mapping[str, Any], rows: tuple[RowSpec, ...], seeds: tuple[int, ...], kind: str,
             where: Path) -> tuple[str, int, int, str] | None:
    """The spec's ``picture: {row, seed, images, out}``: a detector row x seed of this table."""
    entry = spec.get("picture")
    if entry is None:
        return None
    if kind != "detector" or not isinstance(entry, dict) or set(entry) != {"row", "seed", "images", "out"}:
        raise InputError(where, "picture must be {row: R, seed: S, images: N, out: PNG} in a detector table")
    if entry["row"] not in {r.id for r in rows} or entry["seed"] not in seeds:
        raise InputError(where, f"picture: row {entry['row']!r} seed {entry['seed']!r} is not a run of this table")
    if not isinstance(entry["images"], int) or entry["images"] < 1 or not str(entry["out"]).endswith(".png"):
        raise InputError(where, "picture: images must be a positive integer and out a .png path")
    return str(entry["row"]), int(entry["seed"]), int(entry["images"]), str(entry["out"])


def _trunk(spec: Mapping[str, Any], kind: str, where: Path) -> tuple[str, str, int] | None:
    """The spec's (or a row's) ``trunk: {table, row, seed}``: the classifier run it starts from."""
    entry = spec.get("trunk")
    if entry is None:
        return None
    if kind == "classifier" or not isinstance(entry, dict) or set(entry) != {"table", "row", "seed"}:
        raise InputError(where, "trunk must be {table: T, row: R, seed: S} (a classifier row) in a detector "
                                "or image_svm table")
    return str(entry["table"]), str(entry["row"]), int(entry["seed"])


def load_specs(configs: Path) -> list[TableSpec]:
    """Every table under ``configs`` (each folder with a table.yaml), in the order of their ``order``
    file when there is one (one table id per line), else by name."""
    folders = {p.parent.name: p.parent for p in sorted(Path(configs).glob(f"*/{SPEC_FILE}"))}
    order_file = Path(configs) / "tables.txt"
    order = order_file.read_text().split() if order_file.is_file() else sorted(folders)
    missing = [t for t in order if t not in folders]
    if missing:
        raise InputError(order_file, f"no table spec for {missing}")
    return [load_spec(folders[t]) for t in order]


def write_record(path: Path, record: Mapping[str, Any]) -> None:
    """One run's record, atomically (a killed run leaves no half-written record)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")


def read_record(path: Path) -> dict[str, Any] | None:
    """The record at ``path``, or None when there is none yet.

    Raises:
        InputError: a record that is not JSON or lacks what rendering needs.
    """
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(path, f"not a run record ({err.msg})") from None
    need = ("seed", "config_sha1", "commit", "machine", "date", "train_s")
    missing = [k for k in need if k not in record]
    if missing:
        raise InputError(path, f"run record without {missing}")
    return record


def runs_by_seed(spec: TableSpec, row: RowSpec, records: Path) -> dict[int, dict[str, Any]]:
    """{seed: record} of the row's recorded seeds, in the spec's seed order."""
    found = {seed: read_record(spec.record_path(records, row, seed)) for seed in spec.seeds}
    return {seed: r for seed, r in found.items() if r is not None}


def still_current(recorded: Any, now: Any) -> bool:
    """Whether a record's resolved config ``recorded`` is the config ``now``, key by key: every key of
    ``now`` holds the same value in ``recorded``; a key only in ``recorded`` (an option removed from
    the code since, at its value then) does not count, a key only in ``now`` (a new option) does."""
    if isinstance(now, dict):
        return isinstance(recorded, dict) and all(k in recorded and still_current(recorded[k], v)
                                                  for k, v in now.items())
    if isinstance(now, list):
        return isinstance(recorded, list) and len(recorded) == len(now) and all(
            still_current(a, b) for a, b in zip(recorded, now))
    return recorded == now
