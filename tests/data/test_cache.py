"""Cache keys, the file hasher and the one atomic write, on tiny files."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from data.cache import (
    ArraySpec,
    atomic_write,
    atomic_write_text,
    corrupt_entries_reported,
    file_digest,
    load_arrays,
    params_key,
    save_arrays,
)


def test_params_key_ignores_key_order_and_follows_every_value():
    a = params_key({"scales": [688], "dtype": "float16", "nested": {"x": 1, "y": 2}})
    assert a == params_key({"nested": {"y": 2, "x": 1}, "dtype": "float16", "scales": [688]})
    assert a != params_key({"scales": [480], "dtype": "float16", "nested": {"x": 1, "y": 2}})
    assert a != params_key({"scales": [688], "dtype": "float16", "nested": {"x": 1, "y": 3}})
    assert len(a) == 12


def test_file_digest_is_the_sha1_of_the_bytes_and_follows_them(tmp_path):
    path = tmp_path / "image.jpg"
    payload = bytes(range(256)) * 5000  # > one 1 MiB read chunk
    path.write_bytes(payload)
    assert file_digest(path) == hashlib.sha1(payload).hexdigest()
    path.write_bytes(payload[:-1] + b"x")
    assert file_digest(path) != hashlib.sha1(payload).hexdigest()


def test_atomic_write_leaves_the_old_file_and_no_temporary_when_writing_fails(tmp_path):
    path = tmp_path / "sub" / "model.txt"
    atomic_write_text(path, "old")

    def fail(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError) as err:
        atomic_write(path, fail)
    assert err.value.errno == 28 and err.value.filename == str(path)  # names the file for the user
    assert path.read_text() == "old"
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.txt"]


LAYOUT = {"boxes": ArraySpec(("R", 4), "f"), "scores": ArraySpec(("R",), "f"), "digest": ArraySpec((), "U")}


def _entry(path, version=2, **override):
    arrays = {"boxes": np.arange(8, dtype=np.float32).reshape(2, 4), "scores": np.array([0.5, 0.25], np.float32),
              "digest": np.array("abc")}
    save_arrays(path, version=version, **{**arrays, **override})


def test_arrays_round_trip(tmp_path):
    path = tmp_path / "entry.npz"
    _entry(path)
    got = load_arrays(path, LAYOUT, version=2)
    assert got["boxes"].tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]] and str(got["digest"]) == "abc"
    assert load_arrays(tmp_path / "absent.npz", LAYOUT, version=2) is None
    save_arrays(path, boxes=np.zeros((3, 4), np.float32), scores=np.zeros(3, np.float32), digest=np.array("x"))
    assert load_arrays(path, LAYOUT, version=2) is not None  # no version field: the folder's version


@pytest.mark.parametrize("corrupt, problem", [
    (lambda p: p.write_bytes(p.read_bytes()[:200]), "unreadable"),
    (lambda p: p.write_bytes(b"\x00garbage" * 50), "unreadable"),
    (lambda p: _entry(p, boxes=np.zeros((2, 5), np.float32)), "boxes has shape (2, 5)"),
    (lambda p: _entry(p, scores=np.zeros(3, np.float32)), "scores has shape (3,)"),  # R differs
    (lambda p: _entry(p, scores=np.array(["a", "b"])), "scores has dtype <U1"),
    (lambda p: save_arrays(p, version=2, boxes=np.zeros((2, 4), np.float32), digest=np.array("a")), "no array 'scores'"),
    (lambda p: _entry(p, version=1), "written by version 1 of its producer, this is version 2"),
])
def test_a_corrupt_entry_is_reported_once_left_for_the_rewrite_and_read_as_missing(tmp_path, caplog, corrupt,
                                                                                  problem):
    path = tmp_path / "entry.npz"
    _entry(path)
    corrupt(path)
    before = corrupt_entries_reported()
    for _ in range(3):
        assert load_arrays(path, LAYOUT, version=2) is None
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and problem in warnings[0] and str(path) in warnings[0]
    assert corrupt_entries_reported() == before + 1
    assert path.exists()  # left for the recomputation to replace atomically
    _entry(path)  # the recomputation
    assert load_arrays(path, LAYOUT, version=2)["scores"].tolist() == [0.5, 0.25]
