"""Classification datasets (embedded cache, ImageFolder) and the crops / views the network sees."""

import cv2
import numpy as np
import pytest
import torch

from data.errors import InputError
from detection.classification import dataset
from detection.classification.config import EmbeddedSetConfig
from detection.classification.dataset import (
    center_crops,
    embedded_sets,
    folder_sets,
    full_image,
    random_crops,
    resize_shorter,
)


def test_pack_unpack_round_trip():
    ims = [np.random.default_rng(i).integers(0, 255, (h, w, 3), dtype=np.uint8) for i, (h, w) in
           enumerate([(4, 6), (5, 4), (4, 4)])]
    pixels, shapes = dataset._pack(ims)
    for a, b in zip(ims, dataset._unpack(pixels, shapes)):
        np.testing.assert_array_equal(a, b)


def test_embedded_sets_are_cached_and_balanced(tmp_path):
    train, test = embedded_sets(EmbeddedSetConfig(2, 1), 24, tmp_path, progress=False)
    assert len(train) == 26 and len(test) == 13
    assert np.bincount(train.labels).tolist() == [2] * 13
    assert test.majority_rate() == pytest.approx(1 / 13)
    assert len(list(tmp_path.rglob("*.npz"))) == 2
    again, _ = embedded_sets(EmbeddedSetConfig(2, 1), 24, tmp_path, progress=False)  # from the cache
    for a, b in zip(train.images, again.images):
        np.testing.assert_array_equal(a, b)


def test_typical_looks_and_object_scales_change_the_images_and_the_cache_key(tmp_path):
    plain, _ = embedded_sets(EmbeddedSetConfig(1, 1, typicality=0.0), 24, tmp_path, progress=False)
    typical, _ = embedded_sets(EmbeddedSetConfig(1, 1, typicality=1.0), 24, tmp_path, progress=False)
    small, _ = embedded_sets(EmbeddedSetConfig(1, 1, typicality=0.0, object_share=(0.3, 0.3)), 24, tmp_path,
                             progress=False)
    assert len(list((tmp_path / "cls_embedded").iterdir())) == 3
    assert typical.labels.tolist() == plain.labels.tolist() == small.labels.tolist()
    assert not np.array_equal(typical.images[1], plain.images[1])  # an object (label 0 is background)
    assert not np.array_equal(small.images[1], plain.images[1])


def _write(path, h=20, w=30, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8))


def test_folder_sets_split_each_class(tmp_path):
    for c in ("cat", "dog"):
        for i in range(5):
            _write(tmp_path / c / f"{i}.png", seed=i)
    train, held = folder_sets(tmp_path, 16, 0.2, seed=0, progress=False)
    assert train.classes == ("cat", "dog")
    assert np.bincount(train.labels).tolist() == [4, 4] and np.bincount(held.labels).tolist() == [1, 1]
    assert all(min(im.shape[:2]) == 16 for im in train.images + held.images)


def test_folder_sets_use_train_and_val_folders(tmp_path):
    for split, n in (("train", 3), ("val", 2)):
        for c in ("a", "b"):
            for i in range(n):
                _write(tmp_path / split / c / f"{i}.jpg")
    train, held = folder_sets(tmp_path, 16, 0.2, seed=0, progress=False)
    assert (len(train), len(held)) == (6, 4)


def test_folder_errors_name_the_class_or_the_file(tmp_path):
    _write(tmp_path / "a" / "0.png")
    _write(tmp_path / "a" / "1.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="class 'empty' has no images"):
        folder_sets(tmp_path, 16, 0.2, 0, progress=False)
    (tmp_path / "empty" / "bad.jpg").write_bytes(b"not an image")
    _write(tmp_path / "empty" / "ok.png")
    with pytest.raises(InputError, match="bad.jpg"):
        folder_sets(tmp_path, 16, 0.2, 0, progress=False)
    with pytest.raises(InputError, match="no class sub-folders"):
        folder_sets(tmp_path / "a", 16, 0.2, 0, progress=False)


def test_folder_class_with_one_image_is_refused(tmp_path):
    _write(tmp_path / "a" / "0.png")
    _write(tmp_path / "b" / "0.png")
    _write(tmp_path / "b" / "1.png")
    with pytest.raises(InputError, match="class 'a' has 1 image"):
        folder_sets(tmp_path, 16, 0.2, 0, progress=False)


def test_resize_shorter_keeps_aspect():
    assert resize_shorter(np.zeros((20, 40, 3), np.uint8), 10).shape == (10, 20, 3)
    assert resize_shorter(np.zeros((30, 15, 3), np.uint8), 30).shape == (60, 30, 3)


def test_crops_and_views():
    im = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    center = center_crops([im], 4)
    assert center.shape == (1, 3, 4, 4)
    np.testing.assert_array_equal(center[0].permute(1, 2, 0).numpy(), im[1:5, 2:6])
    assert full_image(im).shape == (1, 3, 6, 8)
    a = random_crops([im] * 8, 4, True, torch.Generator().manual_seed(0))
    b = random_crops([im] * 8, 4, True, torch.Generator().manual_seed(0))
    assert a.shape == (8, 3, 4, 4) and torch.equal(a, b)
    windows = {im[y:y + 4, x:x + 4].tobytes() for y in range(3) for x in range(5)}
    flipped = {im[y:y + 4, x:x + 4][:, ::-1].tobytes() for y in range(3) for x in range(5)}
    for crop in a:
        assert crop.permute(1, 2, 0).contiguous().numpy().tobytes() in windows | flipped
    no_flip = random_crops([im] * 8, 4, False, torch.Generator().manual_seed(0))
    assert all(c.permute(1, 2, 0).contiguous().numpy().tobytes() in windows for c in no_flip)
