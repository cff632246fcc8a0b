"""The bad-input catalogue, data side: split and class files, unsafe names, symlinks, odd images.

Each case builds the bad input so that the code before the fix would have read it (the files an
escaping id points to exist), and asserts on the one-line error naming the file, or on what is read.
The XML cases (malformed, entity bomb, external entity, missing tags, unknown class, zero-area and
far-outside boxes, missing files, empty split, no objects) live in test_data_voc.py; config files
in tests/detection/test_config.py; the command lines in tests/tools/test_bad_input_cli.py.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from data.cache import atomic_write_bytes
from data.errors import InputError
from data.images import read_image, size_mismatch
from data.records import ImageRecord
from data.safe_input import name_problem
from data.voc import load_voc, parse_annotation, read_classes, read_split, split_path
from proposals.config import ProposalConfig
from proposals.store import ensure_proposals

CLASSES = ("cat", "dog")
GOOD_XML = ("<annotation><size><width>100</width><height>50</height></size><object><name>dog</name>"
            "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>20</ymax></bndbox></object></annotation>")


def add_image(root: Path, image_id: str) -> None:
    """A readable annotation and an (undecoded) image file for ``image_id``, wherever it points."""
    for rel, payload in ((f"Annotations/{image_id}.xml", GOOD_XML), (f"JPEGImages/{image_id}.jpg", "jpeg")):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(payload)


@pytest.fixture
def voc(tmp_path) -> Path:
    """tmp_path/voc with images a and b; classes cat, dog; no split file yet."""
    root = tmp_path / "voc"
    for image_id in ("a", "b"):
        add_image(root, image_id)
    (root / "classes.txt").write_text("cat\ndog\n")
    split_path(root, "x").parent.mkdir(parents=True)
    return root


def write_split_bytes(root: Path, payload: bytes) -> Path:
    path = split_path(root, "x")
    path.write_bytes(payload)
    return path


# --- split and class files: encodings, line ends, comments -------------------------------------

@pytest.mark.parametrize("payload", [
    b"\xef\xbb\xbfa\r\nb\r\n",                                        # UTF-8 BOM + Windows line ends
    b"a\rb",                                                          # old Mac line ends, no final one
    b"# images kept for the demo\n\na   # the first\n  \n#b\nb -1\n",  # comments, blanks, a 2nd column
    "a\r\nb\r\n".encode("utf-16"),                                    # Notepad's "Unicode" (UTF-16 + BOM)
], ids=["bom-crlf", "cr-only", "comments-blanks-columns", "utf16-bom"])
def test_split_file_variants_read_the_same_ids(voc, payload):
    write_split_bytes(voc, payload)
    assert read_split(voc, "x") == ["a", "b"]
    assert [r.image_id for r in load_voc(voc, "x").records] == ["a", "b"]


def test_split_file_not_utf8_names_the_file(voc):
    path = write_split_bytes(voc, b"a\ncaf\xe9\n")  # Latin-1
    with pytest.raises(InputError, match="not UTF-8 text") as err:
        read_split(voc, "x")
    assert str(err.value).startswith(f"{path}: ")


def test_classes_file_with_bom_crlf_and_comments(voc):
    (voc / "classes.txt").write_bytes(b"\xef\xbb\xbf# our classes\r\ncat\r\n\r\ndog  # the second\r\n")
    assert read_classes(voc) == CLASSES


def test_class_name_that_is_a_path_is_refused_with_its_line(voc):
    # a class name becomes a result file name: comp4_det_<split>_<class>.txt
    (voc / "classes.txt").write_text("cat\n../../evil\n")
    with pytest.raises(InputError, match=r"class name '\.\./\.\./evil' contains a '\.\.'") as err:
        read_classes(voc)
    assert str(err.value).startswith(f"{voc / 'classes.txt'}:2: ")


# --- image ids that are not plain file names ---------------------------------------------------

def _escaping_ids(tmp_path: Path) -> list[tuple[str, str]]:
    return [
        (str(tmp_path / "outside"), "is an absolute path"),
        ("../../outside", "contains a '..' (parent folder) component"),
        ("..", "contains a '..'"),
        ("sub/c", "contains a path separator"),
        ("sub\\c", "contains a path separator"),
        ("C:c", "is an absolute path"),
        (".hidden", "starts with '.'"),
        ("\ufeffa", "invisible character U+FEFF"),  # a BOM in the middle of a concatenated file
        ("a\x00b", "control or invisible character U+0000"),
    ]


@pytest.mark.parametrize("case", range(9), ids=["absolute", "dotdot-path", "dotdot", "slash", "backslash",
                                                 "drive", "hidden", "bom-inside", "nul"])
def test_bad_image_id_is_refused_with_file_and_line_before_any_file_is_opened(voc, tmp_path, case):
    image_id, problem = _escaping_ids(tmp_path)[case]
    # What the id points to exists and is valid, so only the id check can refuse it: the absolute
    # id and ../../outside both reach tmp_path/outside.xml and .jpg; the others stay in the root.
    for ext, payload in ((".xml", GOOD_XML), (".jpg", "jpeg")):
        (tmp_path / f"outside{ext}").write_text(payload)
    if not image_id.startswith(("/", "..")) and "\x00" not in image_id:
        add_image(voc, image_id)
    # The id before it has no files: an id checked lazily, per image, would fail on that one first.
    path = write_split_bytes(voc, f"# header\nmissing\n\n{image_id}\n".encode())
    with pytest.raises(InputError) as err:
        load_voc(voc, "x")
    assert str(err.value).startswith(f"{path}:4: image id ")
    assert problem in str(err.value) and "refused before opening any file" in str(err.value)


def test_plain_ids_pass():
    for image_id in ("000005", "2008_000123", "a.b", "img#1", "ünïcode", "with space"):
        assert name_problem(image_id) is None, image_id


def test_bad_split_name_is_refused(voc):
    with pytest.raises(InputError, match="split: split name '../x' contains a '..'"):
        load_voc(voc, "../x")


# --- symlinks: read only from inside the dataset -----------------------------------------------

def test_image_symlinked_outside_the_root_is_refused(voc, tmp_path):
    (tmp_path / "hostname").write_text("secret")
    link = voc / "JPEGImages" / "b.jpg"
    link.unlink()
    link.symlink_to(tmp_path / "hostname")
    write_split_bytes(voc, b"a\nb\n")
    with pytest.raises(InputError, match="points outside the dataset") as err:
        load_voc(voc, "x")
    assert str(err.value).startswith(f"{link}: ") and str(tmp_path / "hostname") in str(err.value)


def test_annotation_symlinked_outside_the_root_is_refused(voc, tmp_path):
    (tmp_path / "elsewhere.xml").write_text(GOOD_XML)  # valid XML: only the location check refuses it
    link = voc / "Annotations" / "a.xml"
    link.unlink()
    link.symlink_to(tmp_path / "elsewhere.xml")
    write_split_bytes(voc, b"a\n")
    with pytest.raises(InputError, match="points outside the dataset") as err:
        load_voc(voc, "x")
    assert str(err.value).startswith(f"{link}: ")


def test_symlinked_image_and_annotation_folders_are_allowed(voc, tmp_path):
    """Sharing one image folder between copies of a dataset is common: a linked FOLDER is followed."""
    shared = tmp_path / "shared"
    shared.mkdir()
    for folder in ("JPEGImages", "Annotations"):
        (voc / folder).rename(shared / folder)
        (voc / folder).symlink_to(shared / folder, target_is_directory=True)
    write_split_bytes(voc, b"a\nb\n")
    ds = load_voc(voc, "x")
    assert [r.path for r in ds.records] == [voc / "JPEGImages" / "a.jpg", voc / "JPEGImages" / "b.jpg"]
    # ... but a per-file link inside the shared folder that leaves it is still refused
    (tmp_path / "hostname").write_text("secret")
    (shared / "JPEGImages" / "b.jpg").unlink()
    (shared / "JPEGImages" / "b.jpg").symlink_to(tmp_path / "hostname")
    with pytest.raises(InputError, match="points outside the dataset"):
        load_voc(voc, "x")


def test_links_that_stay_inside_the_root_and_a_linked_root_are_fine(voc, tmp_path):
    (voc / "extra").mkdir()
    (voc / "JPEGImages" / "b.jpg").rename(voc / "extra" / "b.jpg")
    (voc / "JPEGImages" / "b.jpg").symlink_to(voc / "extra" / "b.jpg")
    (tmp_path / "link_to_voc").symlink_to(voc, target_is_directory=True)
    write_split_bytes(voc, b"a\nb\n")
    assert len(load_voc(tmp_path / "link_to_voc", "x").records) == 2


def test_a_cache_entry_symlinked_outside_is_replaced_not_written_through(tmp_path):
    """Outputs stay inside the cache dir: the atomic write renames over a link, never follows it."""
    outside = tmp_path / "precious.npz"
    outside.write_bytes(b"keep me")
    entry = tmp_path / "cache" / "fast-123" / "a.npz"
    entry.parent.mkdir(parents=True)
    entry.symlink_to(outside)
    atomic_write_bytes(entry, b"new entry")
    assert outside.read_bytes() == b"keep me"
    assert not entry.is_symlink() and entry.read_bytes() == b"new entry"


# --- boxes not covered in test_data_voc.py -----------------------------------------------------

@pytest.mark.parametrize("bndbox", [(20, 1, 5, 5), (1, 8, 10, 7)])  # inverted x; zero-height
def test_inverted_and_zero_area_boxes(tmp_path, bndbox):
    xml = GOOD_XML.replace("<xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>20</ymax>",
                           "<xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax>".format(*bndbox))
    path = tmp_path / "a.xml"
    path.write_text(xml)
    with pytest.raises(InputError, match="inverted or empty box") as err:
        parse_annotation(path, {"cat": 0, "dog": 1})
    assert str(err.value).startswith(f"{path}: ")


# --- image files -------------------------------------------------------------------------------

def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height grey pixels and holds almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _jpeg(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


IMG = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)


@pytest.mark.parametrize("payload, problem", [
    (b"", "image file is empty (0 bytes)"),
    (_jpeg(IMG)[: len(_jpeg(IMG)) // 2], "cannot decode image"),                   # truncated
    (b"<html>404 not found</html>\n", "cannot decode image"),                     # not an image
    (_png_header_only(60000, 60000), "more pixels than CV_IO_MAX_IMAGE_PIXELS"),  # decompression bomb
], ids=["0-byte", "truncated", "not-an-image", "decompression-bomb"])
def test_unreadable_image_names_the_file(tmp_path, payload, problem):
    path = tmp_path / "bad.jpg"
    path.write_bytes(payload)
    with pytest.raises(InputError) as err:
        read_image(path)
    assert str(err.value).startswith(f"{path}: ") and problem in str(err.value)


def test_odd_but_valid_images_become_8bit_rgb(tmp_path):
    img16 = IMG.astype(np.uint16) * 257                       # 16-bit PNG: v * 257 reads back as v
    assert cv2.imwrite(str(tmp_path / "16.png"), cv2.cvtColor(img16, cv2.COLOR_RGB2BGR))
    rgba = np.dstack([IMG, np.full(IMG.shape[:2], 7, np.uint8)])  # alpha is dropped
    assert cv2.imwrite(str(tmp_path / "rgba.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    assert cv2.imwrite(str(tmp_path / "grey.png"), IMG[..., 0])
    for name, expected in (("16.png", IMG), ("rgba.png", IMG), ("grey.png", np.repeat(IMG[..., :1], 3, 2))):
        got = read_image(tmp_path / name)
        assert got.dtype == np.uint8 and got.shape == (30, 40, 3), name
        np.testing.assert_array_equal(got, expected, err_msg=name)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    image = pytest.importorskip("PIL.Image")
    flat = np.zeros((32, 32, 3), np.uint8)
    flat[:, :16] = (200, 40, 40)
    flat[:, 16:] = (30, 60, 220)
    image.fromarray(flat).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    got = read_image(tmp_path / "cmyk.jpg").astype(int)
    assert got.shape == (32, 32, 3)
    assert np.abs(got[8, 4] - (200, 40, 40)).max() <= 12 and np.abs(got[8, 28] - (30, 60, 220)).max() <= 12


def write_exif_rotated(path: Path, orientation: int = 6) -> None:
    """A 40 x 80 (height x width) JPEG, left half red, whose EXIF tag says: turn 90 degrees clockwise."""
    image = pytest.importorskip("PIL.Image")
    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[:, :40] = (255, 0, 0)
    im = image.fromarray(pixels)
    exif = im.getexif()
    exif[0x0112] = orientation  # Orientation
    im.save(path, exif=exif.tobytes(), quality=95)


def test_exif_orientation_is_applied_as_a_photo_viewer_does(tmp_path):
    write_exif_rotated(tmp_path / "phone.jpg")
    got = read_image(tmp_path / "phone.jpg").astype(int)
    assert got.shape == (80, 40, 3)  # upright: the red left half is now the top
    assert np.abs(got[5, 20] - (255, 0, 0)).max() <= 12 and got[75, 20].max() <= 12


def test_annotation_of_the_unturned_pixels_is_explained(tmp_path):
    write_exif_rotated(tmp_path / "phone.jpg")
    assert "EXIF orientation" in size_mismatch(tmp_path / "phone.jpg", (80, 40), (40, 80))
    assert "EXIF" not in size_mismatch(tmp_path / "phone.jpg", (80, 40), (80, 41))  # another mistake
    record = ImageRecord("phone", tmp_path / "phone.jpg", (40, 80), np.zeros((0, 4), np.float32),
                         np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, bool))
    run = ensure_proposals([record], tmp_path / "cache", ProposalConfig(), workers=1, progress=False)
    assert not run.boxes and "EXIF orientation turns it" in run.failed["phone"]
    assert run.failed["phone"].startswith(str(tmp_path / "phone.jpg"))
