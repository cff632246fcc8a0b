"""R-CNN's wall time on a scaling row's run, projected from the row's own measurement, never run.

R-CNN differs from SPP-net in the feature extractor alone (the whole trunk on every warped window
against one conv5 map per image), so its run costs SPP-net's measured one plus, for every window it
extracts, the difference of the two extractors. tools/speed_report.py times both on the row's
trained network, the same test images and proposals, one after the other in one process (the
record's ``speed``); the difference per window is

    extra = (R-CNN's s/image - SPP-net's s/image) / the timed images' windows per image

and the projection is SPP-net's wall (training and test, the stage tables' totals) plus ``extra``
times the row's windows: (trainval + test images) x their mean proposals per image. Training
counts each window once, as R-CNN caches its pool5 vectors (the released R-CNN does; fine-tuning
and the SVM passes read them back); selective search, fine-tuning's steps, the SVMs and box
regression cost both methods the same. Pure functions of the records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eval.run_records import RowSpec


def measured_seconds(record: dict[str, Any]) -> float:
    """SPP-net's wall seconds of the row: the training's and the test's stage-table totals."""
    return sum(next(s["wall_s"] for s in record[key] if s["stage"] == "total") for key in ("train_stages", "test_stages"))


def extra_per_window(record: dict[str, Any]) -> float | None:
    """R-CNN's extra seconds per window over SPP-net's (the record's ``speed``), or None without one."""
    speed = record.get("speed")
    if not speed or not speed.get("windows_per_image"):
        return None
    return (speed["rcnn_s_per_image"] - speed["spp_s_per_image"]) / speed["windows_per_image"]


def projected_seconds(record: dict[str, Any]) -> float | None:
    """R-CNN's wall seconds for the row's run (see the module's docstring), or None without a speed
    measurement."""
    extra = extra_per_window(record)
    if extra is None:
        return None
    images = record["images"]["trainval"] + record["images"]["test"]
    return measured_seconds(record) + images * record["windows_per_image"] * extra


def duration(seconds: float) -> str:
    """Minutes below an hour, hours below two days, else hours and days: "42 min", "7.5 h", "190 h (7.9 days)"."""
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours:,.0f} h ({hours / 24:.1f} days)"


PROJECTION = ("R-CNN is not run at these sizes; its wall time is projected from each row's own measurement: "
              "`tools/speed_report.py` times SPP-net and R-CNN on the row's trained network, on {images} test "
              "images with the row's proposals, one after the other in one process, and R-CNN's extra seconds "
              "per window over SPP-net's, times the row's windows (trainval and test images x their mean "
              "proposals), are added to SPP-net's measured wall (training and test). Each window is counted "
              "once, as R-CNN caches its vectors; selective search, fine-tuning, the SVMs and box regression "
              "cost both the same (`eval/rcnn_projection.py`). For scale: R-CNN's training on VOC 2007 took "
              "84 h on a GPU (VGG16; Fast R-CNN, Table 4).")


def projection_table(rows: Sequence[RowSpec], found: Sequence[dict[str, Any] | None]) -> str | None:
    """Markdown: the text and one line per row with a speed measurement (its images, windows per
    image, SPP-net's measured wall, R-CNN's extra ms per window, R-CNN's projected wall and the
    ratio); None when no row has one."""
    measured = [(row, r) for row, r in zip(rows, found) if r is not None and extra_per_window(r) is not None]
    if not measured:
        return None
    lines = [PROJECTION.format(images=measured[0][1]["speed"]["images"]), "",
             "| row | images (trainval + test) | windows per image | SPP-net, measured | R-CNN's extra per window "
             "| R-CNN, projected | R-CNN / SPP-net |", "|---|---|---|---|---|---|---|"]
    for row, r in measured:
        spp, rcnn = measured_seconds(r), projected_seconds(r)
        lines.append(f"| {row.name} | {r['images']['trainval']:,} + {r['images']['test']:,} | "
                     f"{r['windows_per_image']:,.0f} | {duration(spp)} | {extra_per_window(r) * 1000:.1f} ms | "
                     f"{duration(rcnn)} | {rcnn / spp:.0f}x |")
    return "\n".join(lines)
