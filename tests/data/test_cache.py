"""Cache keys, the file hasher and the one atomic write, on tiny files."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from data.cache import atomic_write, atomic_write_text, file_digest, load_arrays, params_key, save_arrays


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


def test_arrays_round_trip_and_a_corrupt_entry_reads_as_missing(tmp_path):
    path = tmp_path / "entry.npz"
    save_arrays(path, boxes=np.arange(8, dtype=np.float32).reshape(2, 4), digest=np.array("abc"))
    got = load_arrays(path, ("boxes", "digest"))
    assert got["boxes"].tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]] and str(got["digest"]) == "abc"
    assert load_arrays(path, ("boxes", "absent")) is None  # incomplete: recomputed
    save_arrays(path, boxes=np.zeros((1, 4)))
    path.write_bytes(path.read_bytes()[:20])  # truncated
    assert load_arrays(path, ("boxes",)) is None and not path.exists()
