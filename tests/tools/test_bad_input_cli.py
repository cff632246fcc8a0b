"""The bad-input catalogue through the command lines the issue names: eval_voc and compute_proposals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data.voc_write import write_annotation, write_classes
from tools import compute_proposals, eval_voc
from tools._cli import run_cli

IDS = ("000001", "000002")


@pytest.fixture
def voc_root(tmp_path) -> Path:
    root = tmp_path / "VOC"
    for image_id in IDS:
        write_annotation(root / "Annotations" / f"{image_id}.xml", image_id, (120, 160), np.array([[10., 20, 60, 80]]),
                         np.array([0]), np.zeros(1, bool), np.zeros(1, bool), ["cat"])  # fmt: skip
        (root / "JPEGImages").mkdir(exist_ok=True)
        (root / "JPEGImages" / f"{image_id}.jpg").write_bytes(b"")
    write_classes(root, ["cat"])
    (root / "ImageSets" / "Main").mkdir(parents=True)
    return root


def test_eval_voc_reads_a_split_saved_with_bom_and_crlf(voc_root, tmp_path, capsys):
    """The issue's first case: this used to fail with 'annotation file not found' for '\\ufeff000001'."""
    (voc_root / "ImageSets" / "Main" / "test.txt").write_bytes(b"\xef\xbb\xbf000001\r\n000002\r\n")
    (tmp_path / "results").mkdir()  # no result files: every class has AP 0
    argv = ["--data-root", str(voc_root), "--split", "test", "--det-dir", str(tmp_path / "results")]
    assert run_cli(eval_voc.main, argv) == 0
    out = capsys.readouterr().out
    assert "mAP" in out and "cat" in out


def test_compute_proposals_refuses_a_traversal_id_and_writes_nothing(voc_root, tmp_path, capsys):
    """The issue's second case: refused for what it is, not because /etc/hostname.xml is missing."""
    split = voc_root / "ImageSets" / "Main" / "test.txt"
    split.write_text("000001\n../../../../etc/hostname\n")
    out = tmp_path / "proposals"
    argv = ["--data-root", str(voc_root), "--split", "test", "--out", str(out), "--workers", "1", "--no-progress"]
    assert run_cli(compute_proposals.main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"error: {split}:2: image id '../../../../etc/hostname' contains a '..' (parent folder) "
                       "component; refused before opening any file")
    assert not out.exists()


def test_compute_proposals_lists_each_unreadable_image_by_file(voc_root, tmp_path, capsys):
    """0-byte and decompression-bomb images are warned skips naming the file, never a traceback."""
    (voc_root / "ImageSets" / "Main" / "test.txt").write_text("\n".join(IDS) + "\n")
    bomb = voc_root / "JPEGImages" / "000002.jpg"  # a PNG header declaring 60000 x 60000 pixels
    bomb.write_bytes(bytes.fromhex("89504e470d0a1a0a0000000d49484452") + (60000).to_bytes(4, "big") * 2
                     + bytes.fromhex("0800000000") + b"\0" * 4)
    argv = ["--data-root", str(voc_root), "--split", "test", "--out", str(tmp_path / "p"), "--workers", "1",
            "--no-progress"]
    assert run_cli(compute_proposals.main, argv) == 2  # nothing could be processed
    err = capsys.readouterr().err
    assert "2 image(s) failed" in err and "error: no image could be processed" in err
    assert f"{voc_root / 'JPEGImages' / '000001.jpg'}: image file is empty (0 bytes)" in err
    assert f"{bomb}: " in err and ("CV_IO_MAX_IMAGE_PIXELS" in err or "cannot decode" in err)
