"""The box-regression samples written as the SVM stage goes: rows on disk, read back on demand."""

import numpy as np

from detection.pipeline.bbox_samples import RowFile, SampleWriter, load_samples


def _image(rng, m, d=5):
    return (rng.random((m, d)).astype(np.float32), rng.random((m, 4)).astype(np.float32),
            rng.random((m, 4)).astype(np.float32), rng.integers(0, 3, m), rng.random(m).astype(np.float32))


def test_rows_written_image_by_image_read_back_as_one_array(tmp_path):
    rng = np.random.default_rng(0)
    images = [_image(rng, m) for m in (2, 0, 5, 1)]
    writer = SampleWriter(tmp_path / "s.npz", tmp_path / "s_x.npy")
    for image in images:
        writer.add(*image)
    assert not (tmp_path / "s.npz").exists() and not (tmp_path / "s_x.npy").exists()  # nothing final before finish
    writer.finish(0.25)
    s = load_samples(tmp_path / "s.npz", tmp_path / "s_x.npy")
    assert isinstance(s["x"], RowFile) and s["x"].dtype == np.float16
    expected = np.concatenate([i[0] for i in images]).astype(np.float16)
    assert s["x"].shape == (8, 5) and len(s["x"]) == 8 and np.asarray(s["x"]).tobytes() == expected.tobytes()
    assert np.array_equal(s["x"][np.array([6, 0, 3])], expected[[6, 0, 3]]) and np.array_equal(s["x"][2:4], expected[2:4])
    assert np.array_equal(s["labels"], np.concatenate([i[3] for i in images])) and float(s["pool_scale"]) == 0.25
    assert np.array_equal(np.load(tmp_path / "s_x.npy"), expected)  # a plain .npy to numpy
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_an_aborted_or_mismatched_pair_is_not_read(tmp_path):
    rng = np.random.default_rng(1)
    writer = SampleWriter(tmp_path / "s.npz", tmp_path / "s_x.npy")
    writer.add(*_image(rng, 3))
    writer.abort()
    assert list(tmp_path.iterdir()) == [] and load_samples(tmp_path / "s.npz", tmp_path / "s_x.npy") is None
    for m in (3, 4):  # rows of another run beside this run's npz
        w = SampleWriter(tmp_path / f"s{m}.npz", tmp_path / f"s{m}_x.npy")
        w.add(*_image(rng, m))
        w.finish(1.0)
    assert load_samples(tmp_path / "s3.npz", tmp_path / "s4_x.npy") is None
    empty = SampleWriter(tmp_path / "e.npz", tmp_path / "e_x.npy")
    empty.finish(1.0)
    assert load_samples(tmp_path / "e.npz", tmp_path / "e_x.npy")["x"].shape == (0, 0)


def test_rows_read_leave_no_mapping_resident(tmp_path):
    """What box regression reads of the rows does not stay mapped in this process (the pages of a map
    held open count in its RSS: VOC 2007's whole 4.3 GiB file by the stage's end)."""
    writer = SampleWriter(tmp_path / "s.npz", tmp_path / "s_x.npy")
    writer.add(*_image(np.random.default_rng(2), 64, d=1024))
    writer.finish(1.0)
    s = load_samples(tmp_path / "s.npz", tmp_path / "s_x.npy")
    rows = s["x"][np.arange(0, 64, 2)]
    assert rows.shape == (32, 1024)
    maps = open("/proc/self/maps").read()  # the process's mappings (Linux)
    assert str(tmp_path / "s_x.npy") not in maps
