"""tools/demo.py end to end on a tiny trained work dir, and its drawing on a hand-made case."""

from pathlib import Path

import numpy as np
import pytest

from data.images import read_image
from data.records import Detections, ImageRecord
from data.synthetic import generate
from tools import demo, train_det
from tools._cli import run_cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A detector trained in seconds: 8 synthetic images at one small scale (shorter side 256),
    100 proposals, tiny fc layers, 5 fine-tuning steps."""
    root = tmp_path_factory.mktemp("demo")
    data = root / "data"
    generate(data, 8, 2, seed=0)
    work = root / "work"
    status = train_det.main(["--data-root", str(data), "--work-dir", str(work), "--no-progress", "--workers", "2", "--scales", "256",
                             "--set", "proposals.max_proposals=100", "--set", "head.fc6=64",
                             "--set", "head.fc7=64", "--set", "finetune.iterations=5"])
    assert status == 0
    return data, work


def test_draw_detections_draws_the_box_and_label():
    image = np.zeros((60, 80, 3), np.uint8)
    dets = Detections(np.array([[10, 20, 50, 55]], np.float32), np.array([0.7], np.float32), np.array([1]))
    out = demo.draw_detections(image, dets, ("cat", "dog"))
    assert out.shape == image.shape and not image.any()  # a copy; the input is untouched
    colour = demo.PALETTE[1]
    assert tuple(out[40, 10]) == colour and tuple(out[40, 49]) == colour  # left and right edges
    assert not out[40, 30].any()  # the inside stays clear
    assert out[20:30, 10:50].any()  # the label sits at the top of the box


def test_tile_keeps_order_and_aspect():
    red, blue = np.zeros((50, 100, 3), np.uint8), np.zeros((100, 50, 3), np.uint8)
    red[..., 0], blue[..., 2] = 255, 255
    grid = demo.tile([red, blue, red], columns=2, width=40)
    assert grid.shape == (80 + 20, 80, 3)  # row 1: max(20, 80) tall; row 2: the last red, 20 tall
    assert tuple(grid[10, 20]) == (255, 0, 0) and tuple(grid[40, 60]) == (0, 0, 255)
    assert tuple(grid[40, 20]) == (255, 255, 255)  # under the short red image: white
    assert tuple(grid[90, 20]) == (255, 0, 0) and tuple(grid[90, 60]) == (255, 255, 255)


@pytest.mark.slow
def test_demo_writes_pngs_and_rejects_corrupt_images(trained, tmp_path, capsys):
    data, work = trained
    image = data / "JPEGImages" / "test_000000.jpg"
    second = data / "JPEGImages" / "test_000001.jpg"
    out = tmp_path / "out"
    grid = tmp_path / "grid.png"
    assert run_cli(demo.main, ["--work-dir", str(work), "--out", str(out), "--threshold", "-1",
                               "--grid", str(grid), str(image), str(second)]) == 0
    png = out / "test_000000.png"
    assert png.is_file()
    assert read_image(png).shape == read_image(image).shape
    drawn = [read_image(out / f"test_00000{i}.png") for i in (0, 1)]
    assert np.array_equal(read_image(grid), demo.tile(drawn, 3))  # PNG is lossless

    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    capsys.readouterr()
    assert run_cli(demo.main, ["--work-dir", str(work), "--out", str(out), str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "broken.jpg" in err and "\n" not in err
    assert not (out / "broken.png").exists()


def test_a_work_dir_without_a_working_size_warns_before_a_large_photo(caplog):
    """A work dir trained with proposals.resize_longer unset segments photos at their own size: minutes each."""
    photo, small = (ImageRecord.unannotated(Path(f"{n}.jpg"), shape[:2])
                    for n, shape in (("phone", (3024, 4032, 3)), ("voc", (375, 500, 3))))
    demo.warn_full_size([photo, small], resize_longer=500)
    demo.warn_full_size([small], resize_longer=None)
    assert not caplog.records
    demo.warn_full_size([photo, small], resize_longer=None)
    assert "1 image(s) up to 4032 px" in caplog.text and "proposals.resize_longer=500" in caplog.text
