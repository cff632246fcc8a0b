"""How each stage's cost grows with the work: a scaling table's records (tools/reproduce.py, kind
``scaling``) as stage tables per axis, each stage with the exponent of a log-log fit, for
docs/performance.md. Pure functions of the spec and the records: rendering twice gives the same text.

An axis is a set of rows that differ in one thing only, read from the spec: the images axis, rows of
the same config, ``set`` and ``test_set`` at other dataset sizes; the proposals axis, rows of the
same config and sizes whose ``set`` differ only in ``proposals.max_proposals=``. On the images axis
``n`` is the trainval images for a training stage and the test images for a test stage; on the
proposals axis, the proposals per image (the resolved ``proposals.max_proposals`` the record keeps).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.rcnn_projection import projection_table
from eval.results_page import provenance, row_records
from eval.run_records import RowSpec, TableSpec

LINEAR_BOUND = 1.1  # an images-axis exponent above this grows faster than linearly: flagged
PROPOSALS_SET = "proposals.max_proposals="
TRAIN, TEST = "train: ", "test: "  # the prefixes of the stage names of the two stage tables


@dataclass(frozen=True)
class Axis:
    """Rows of a scaling table that differ in one thing only: ``what`` is "images" or "proposals"."""

    what: str
    rows: tuple[RowSpec, ...]


def fit_exponent(n: Sequence[float], y: Sequence[float]) -> float | None:
    """The slope b of the least-squares line log(y) = a + b log(n).

    Args:
        n: the sizes, shape (P,). y: the costs, shape (P,); a point where n or y is not > 0 (a stage
            that took no measurable time) is left out, as its logarithm is not finite.

    Returns:
        b, or None when fewer than 2 points with distinct n remain.
    """
    points = [(math.log(a), math.log(b)) for a, b in zip(n, y) if a > 0 and b > 0]
    if len({x for x, _ in points}) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(v for _, v in points) / len(points)
    return sum((x - mx) * (v - my) for x, v in points) / sum((x - mx) ** 2 for x, _ in points)


def _others(row: RowSpec) -> tuple[str, ...]:
    return tuple(s for s in row.set if not s.startswith(PROPOSALS_SET))


def axes(spec: TableSpec) -> list[Axis]:
    """The images axes, then the proposals axes, of the spec: every group of at least 2 rows that
    differ only in sizes (images) or only in ``proposals.max_proposals`` (proposals), rows in spec order."""
    keys = {"images": lambda r: (r.config, r.set, r.test_set),
            "proposals": lambda r: (r.config, tuple(sorted(r.data.items())), r.test_set, _others(r))}
    found = []
    for what, key in keys.items():
        groups: dict[Any, list[RowSpec]] = {}
        for row in spec.rows:
            groups.setdefault(key(row), []).append(row)
        found += [Axis(what, tuple(rows)) for rows in groups.values() if len(rows) > 1]
    return found


def stage_name(name: str) -> str:
    """A stage's name without the image count test_det puts in it ("proposals + detection (200
    images)"), which differs between rows of other sizes."""
    return re.sub(r" \(\d+ images\)$", "", name)


def stages(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The record's training and test stages by name ("train: conv5", "test: total"), training first,
    each in its table's order: ``{"stage", "wall_s", "cpu_s"[, "peak_rss_bytes"][, "disk_bytes"]}``."""
    return {**{TRAIN + stage_name(s["stage"]): s for s in record.get("train_stages", [])},
            **{TEST + stage_name(s["stage"]): s for s in record.get("test_stages", [])}}


def size(record: dict[str, Any], what: str, stage: str) -> int:
    """The ``n`` of ``stage`` on an axis of ``what``: trainval or test images, or proposals per image."""
    if what == "proposals":
        return int(record["proposals_per_image"])
    return int(record["images"]["trainval" if stage.startswith(TRAIN) else "test"])


def first_records(spec: TableSpec, rows: Sequence[RowSpec], records: Path) -> list[dict[str, Any] | None]:
    """Each row's record of the spec's first seed that has one (a cost needs one seed), or None."""
    return [next(iter(row_records(spec, row, records)), None) for row in rows]


def stage_points(axis: Axis, found: Sequence[dict[str, Any] | None]) -> dict[str, list[tuple[int, float]]]:
    """Per stage, in order of first appearance, the (n, wall seconds) of each row that recorded it."""
    points: dict[str, list[tuple[int, float]]] = {}
    for record in [r for r in found if r is not None]:
        for name, row in stages(record).items():
            points.setdefault(name, []).append((size(record, axis.what, name), row["wall_s"]))
    return points


def _seconds(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _bytes(value: int | None) -> str:
    if value is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value} B"


def _cell(stage: dict[str, Any] | None) -> str:
    if stage is None:
        return "-"
    return (f"{_seconds(stage['wall_s'])} / {_seconds(stage['cpu_s'])} / {_bytes(stage.get('peak_rss_bytes'))}"
            f" / {_bytes(stage.get('disk_bytes'))}")


def exponent_cell(axis: Axis, points: Sequence[tuple[int, float]]) -> str:
    """The fitted b of one stage (2 decimals), "**> linear**" beside it above LINEAR_BOUND on the
    images axis; "-" where fewer than 2 rows recorded the stage."""
    b = fit_exponent([n for n, _ in points], [w for _, w in points])
    if b is None:
        return "-"
    return f"{b:.2f} **> linear**" if axis.what == "images" and b > LINEAR_BOUND else f"{b:.2f}"


def axis_table(axis: Axis, found: Sequence[dict[str, Any] | None]) -> str:
    """Markdown: one line per stage (training's, then the test's), a cell per row (wall s / CPU s /
    peak RSS / disk, "-" where the row has no record or the stage no figure) and the stage's b;
    "not run yet" under a row without a record."""
    points, per_row = stage_points(axis, found), [stages(r) if r else None for r in found]
    lines = ["| stage | " + " | ".join(r.name for r in axis.rows) + " | b (wall) |",
             "|---|" + "---|" * (len(axis.rows) + 1)]
    if not points:
        lines.append("| (no records) | " + " | ".join("not run yet" for _ in axis.rows) + " | - |")
    for name, pts in points.items():
        cells = [_cell(s.get(name)) if s is not None else "not run yet" for s in per_row]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {exponent_cell(axis, pts)} |")
    return "\n".join(lines)


EXPONENTS = ("b is the slope of a least-squares line through log(wall seconds) against log(n) over an axis's "
             "rows: 1 means the stage's time grows in proportion to n, 0 that it does not grow with n (a fixed "
             "cost, such as fine-tuning's fixed number of steps), 2 that it grows with n's square. n is the "
             "trainval images for a training stage and the test images for a test stage on the images axis, "
             f"the proposals per image on the proposals axis. A stage above {LINEAR_BOUND} on the images axis "
             "grows faster than linearly and is marked **> linear**. Each cell: wall seconds / CPU seconds / "
             "peak resident memory / bytes on disk of the stage, CPU and memory of the whole process tree "
             "(the stage table's figures, [above](#the-stage-table)); \"-\" where not measured.")


def axis_heading(axis: Axis, found: Sequence[dict[str, Any] | None]) -> str:
    """The heading of one axis: what grows, and what stays (the sizes, or the recorded proposals)."""
    if axis.what == "proposals":
        d = axis.rows[0].data
        return f"### As the proposals per image grow ({d['num_trainval']:,} trainval, {d['num_test']:,} test images)"
    recorded = sorted({r["proposals_per_image"] for r in found if r is not None})
    at = f" ({', '.join(f'{p:,}' for p in recorded)} proposals per image)" if recorded else ""
    return f"### As the images grow{at}"


def scaling_section(spec: TableSpec, records: Path, plot: str | None) -> str:
    """A scaling table's section of docs/performance.md: its question, per axis the stage table (the
    first seed's record of each row), the plot (``plot``: its path relative to the page, or None),
    R-CNN's projected wall per row that measured its speed (``eval.rcnn_projection``), the spec's
    notes, the command and where the figures come from; a "not run yet" line in place of the tables
    when no row has a record."""
    command = f"`python tools/reproduce.py {spec.id} && python tools/render_docs.py`"
    parts = [f"## {spec.title}", "", spec.question.strip(), ""]
    found = {row.id: r for row, r in zip(spec.rows, first_records(spec, spec.rows, records))}
    if not any(found.values()):
        parts += [f"Not run yet. Its rows: {'; '.join(r.name for r in spec.rows)}.", ""]
    else:
        parts += [EXPONENTS, ""]
        for axis in axes(spec):
            rows = [found[r.id] for r in axis.rows]
            parts += [axis_heading(axis, rows), "", axis_table(axis, rows), ""]
        if plot:
            parts += [f"![Wall seconds per stage against n, log-log]({plot})", ""]
        projected = projection_table(spec.rows, [found[r.id] for r in spec.rows])
        if projected:
            parts += ["### R-CNN on the same runs, projected", "", projected, ""]
    if spec.reduced:
        parts += [f"Settings: {spec.reduced.strip()}", ""]
    if spec.notes:
        parts += [spec.notes.strip(), ""]
    parts += [f"Reproduce: {command} (records in `docs/results/records/{spec.id}/`). {provenance(spec, records)}"]
    return "\n".join(parts)
