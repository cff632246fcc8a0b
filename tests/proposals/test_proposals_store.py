"""The per-image cache over a split: resume, corruption, stale images, failures, workers."""

from __future__ import annotations

import os
import threading
from dataclasses import replace

import numpy as np
import pytest
import scipy.io

from proposals.config import ProposalConfig
from proposals.selective_search import propose
from proposals.store import cache_folder, ensure_proposals
from proposals.workers import iter_proposals

CFG = ProposalConfig()


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_workers_give_the_same_boxes_as_one_process(three_records, make_image, tmp_path):
    serial = ensure_proposals(three_records, tmp_path / "c1", CFG, workers=1, progress=False)
    # 2 workers for 4 images: each worker runs several images, from its own forked rand() state
    records = three_records + [replace(three_records[0], image_id="again")]
    pooled = ensure_proposals(records, tmp_path / "c2", CFG, workers=2, progress=False)
    assert serial.failed == {} and pooled.failed == {}
    assert list(pooled.boxes) == ["im0", "im1", "im2", "again"]  # record order, not completion order
    assert _same(serial.boxes, {k: pooled.boxes[k] for k in serial.boxes})
    assert np.array_equal(pooled.boxes["again"], serial.boxes["im0"])
    # and they are exactly what the single-image function gives
    assert np.array_equal(serial.boxes["im1"], propose(make_image(1), CFG))
    assert serial.seconds_per_image > 0


def test_resume_recomputes_only_missing_and_corrupt_entries(three_records, tmp_path):
    first = ensure_proposals(three_records, tmp_path, CFG, workers=1, progress=False)
    assert first.computed == ("im0", "im1", "im2")
    folder = cache_folder(tmp_path, CFG)
    assert folder.name.startswith("fast-")
    assert sorted(p.name for p in folder.glob("*.npz")) == ["im0.npz", "im1.npz", "im2.npz"]  # + hidden .lock files
    (folder / "im0.npz").unlink()                          # interrupted before im0 was written
    (folder / "im1.npz").write_bytes(b"not a zip file at all")  # corrupt entry
    os.utime(folder / "im2.npz", (1_000_000, 1_000_000))   # an old mtime: must stay untouched
    second = ensure_proposals(three_records, tmp_path, CFG, workers=1, progress=False)
    assert second.computed == ("im0", "im1")
    assert (folder / "im2.npz").stat().st_mtime == 1_000_000
    assert _same(first.boxes, second.boxes)
    third = ensure_proposals(three_records, tmp_path, CFG, workers=1, progress=False)
    assert third.computed == () and _same(first.boxes, third.boxes)
    assert third.seconds_per_image > 0  # taken from the entries
    assert not list(folder.glob(".*tmp"))  # no temporary files left behind


def test_changed_image_is_recomputed(three_records, make_image, write_image, tmp_path):
    first = ensure_proposals(three_records, tmp_path, CFG, workers=1, progress=False)
    write_image(three_records[1].path, make_image(2))  # same size, other content
    second = ensure_proposals(three_records, tmp_path, CFG, workers=1, progress=False)
    assert second.computed == ("im1",)
    assert np.array_equal(second.boxes["im1"], first.boxes["im2"])


def test_unreadable_and_mismatched_images_fail_by_name(three_records, make_record, tmp_path):
    broken = tmp_path / "images" / "broken.png"
    broken.write_bytes(b"\x89PNG garbage")
    records = [
        three_records[0],
        make_record("broken", broken),
        make_record("missing", tmp_path / "nowhere.png"),
        make_record("wrongsize", three_records[1].path, size=(100, 100)),
    ]
    run = ensure_proposals(records, tmp_path / "cache", CFG, workers=2, progress=False)
    assert list(run.boxes) == ["im0"]
    assert set(run.failed) == {"broken", "missing", "wrongsize"}
    assert "broken.png" in run.failed["broken"] and "decode" in run.failed["broken"]
    assert "nowhere.png" in run.failed["missing"] and "not found" in run.failed["missing"]
    assert "120x160" in run.failed["wrongsize"]


def test_mat_mode_imports_into_the_cache(three_records, tmp_path):
    mat = tmp_path / "ss.mat"
    ids = np.empty(2, dtype=object)
    ids[:] = ["im0", "im2"]
    boxes = np.empty(2, dtype=object)
    boxes[0] = np.array([[1, 1, 50, 40], [11, 21, 30, 60]], np.float64)  # 1-based y1 x1 y2 x2
    boxes[1] = np.array([[1, 1, 120, 160]], np.float64)
    scipy.io.savemat(mat, {"images": ids, "boxes": boxes})
    cfg = ProposalConfig(mode="mat", mat_file=str(mat))
    run = ensure_proposals(three_records, tmp_path / "cache", cfg, workers=1, progress=False)
    assert np.array_equal(run.boxes["im0"], [[0, 0, 40, 50], [20, 10, 60, 30]])
    assert np.array_equal(run.boxes["im2"], [[0, 0, 160, 120]])
    assert list(run.failed) == ["im1"] and "im1" in run.failed["im1"]
    again = ensure_proposals(three_records, tmp_path / "cache", cfg, workers=1, progress=False)
    assert again.computed == () and _same(run.boxes, again.boxes)
    assert cache_folder(tmp_path / "cache", cfg).name.startswith("mat-")


def _corrupt_cases():
    from data.cache import save_arrays

    def other_version(path):
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files if k != "cache_version"}
        save_arrays(path, version=99, **arrays)

    def wrong_shape(path):
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["boxes"] = arrays["boxes"].reshape(-1, 2)
        save_arrays(path, **arrays)

    return {
        "truncated": lambda p: p.write_bytes(p.read_bytes()[:100]),
        "garbage": lambda p: p.write_bytes(os.urandom(500)),
        "wrong shape": wrong_shape,
        "other version": other_version,
    }


@pytest.mark.parametrize("case", ["truncated", "garbage", "wrong shape", "other version"])
def test_a_corrupt_entry_is_reported_once_and_recomputed_to_the_same_boxes(three_records, tmp_path, caplog, case):
    first = ensure_proposals(three_records, tmp_path, CFG, workers=1, progress=False)
    entry = cache_folder(tmp_path, CFG) / "im1.npz"
    _corrupt_cases()[case](entry)
    with caplog.at_level("INFO"):
        second = ensure_proposals(three_records, tmp_path, CFG, workers=1, progress=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "im1.npz is corrupt" in warnings[0]
    assert second.computed == ("im1",) and _same(first.boxes, second.boxes)
    assert "proposals cache: computed 1, reused 2" in caplog.text


def test_two_runs_at_once_compute_each_image_once(three_records, tmp_path):
    records = three_records + [replace(r, image_id=f"{r.image_id}b") for r in three_records]
    runs = []
    threads = [threading.Thread(target=lambda: runs.append(ensure_proposals(records, tmp_path, CFG, 1, False)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a, b = runs
    assert sorted(a.computed + b.computed) == sorted(r.image_id for r in records)  # each once, by one run
    assert _same(a.boxes, b.boxes) and list(a.boxes) == [r.image_id for r in records]


@pytest.mark.parametrize("workers", [1, 2])
def test_iter_proposals_gives_proposes_boxes_in_record_order(three_records, make_image, workers):
    """The demo's stream: computed ahead by workers, yet exactly ``propose`` on each image, in order."""
    got = list(iter_proposals(three_records, CFG, workers))
    assert [p.record.image_id for p in got] == ["im0", "im1", "im2"]
    for i, p in enumerate(got):
        assert np.array_equal(p.boxes, propose(make_image(i), CFG))
        assert p.seconds > 0 and p.segmented_size == p.record.size  # small images are not shrunk
