"""The plot beside docs/performance.md's stage tables: wall seconds per stage against n, log-log,
one panel per axis of a scaling table (``eval.scaling_page``), as SVG text that is the same bytes
every time it is drawn from the same records (matplotlib, Agg backend), so that tests/test_docs.py
compares it as it compares a page."""

from __future__ import annotations

import io
from pathlib import Path

from eval.run_records import TableSpec
from eval.scaling_page import TEST, axes, first_records, stage_points

LABELS = {"images": "images (trainval for training stages, test for test stages)",
          "proposals": "proposals per image"}
TITLES = {"images": "As the images grow", "proposals": "As the proposals per image grow"}


def scaling_svg(spec: TableSpec, records: Path) -> str | None:
    """The SVG of the spec's axes that have records of at least 2 rows: per stage, its rows' wall
    seconds against n (training stages solid, test stages dashed) and a dotted line of slope 1 (what
    a linear stage follows); None when no axis has 2 records (no plot)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on the servers; must precede pyplot's import
    import matplotlib.pyplot as plt

    panels = [(axis, stage_points(axis, first_records(spec, axis.rows, records))) for axis in axes(spec)]
    panels = [(axis, pts) for axis, pts in panels if any(len(p) > 1 for p in pts.values())]
    if not panels:
        return None
    # fixed ids and no date: the same records draw the same bytes
    with plt.rc_context({"svg.hashsalt": "fixed", "svg.fonttype": "path"}):
        fig, grid = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
        for ax, (axis, points) in zip(grid[0], panels):
            for i, (stage, pts) in enumerate(points.items()):
                pts = sorted(pts)
                ax.plot([n for n, _ in pts], [w for _, w in pts], marker="o", color=f"C{i % 10}",
                        linestyle="--" if stage.startswith(TEST) else "-", label=stage)
            ns = sorted({n for pts in points.values() for n, _ in pts})
            walls = [w for pts in points.values() for _, w in pts if w > 0]
            if len(ns) > 1 and walls:
                ax.plot([ns[0], ns[-1]], [min(walls), min(walls) * ns[-1] / ns[0]], ":", color="grey",
                        label="slope 1 (linear)")
            ax.set(xscale="log", yscale="log", xlabel=LABELS[axis.what], ylabel="wall seconds",
                   title=TITLES[axis.what])
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7, loc="upper left")
        fig.tight_layout()
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None})
        plt.close(fig)
    return out.getvalue()
