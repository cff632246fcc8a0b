"""One vector per whole image: the pyramid pooling of its conv5 map, cached per image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from data.errors import InputError
from detection.features.conv5 import compute_conv5
from detection.features.image_vectors import ImageVectorCache, ImageVectorConfig, image_vector, view_image
from detection.models.backbones import build_trunk
from detection.models.head import FcHead
from detection.models.spp import pyramid_pool_whole

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def trunk():
    torch.manual_seed(0)
    return build_trunk("zf5", pretrained=False)[0].eval()


@pytest.fixture()
def image():
    return np.random.default_rng(0).integers(0, 256, (70, 130, 3), dtype=np.uint8)  # wide: aspect kept


def test_the_vector_is_the_pyramid_pooling_of_the_images_conv5_map(trunk, image):
    cfg = ImageVectorConfig(side=96)
    conv5 = compute_conv5(trunk, image, (96,), CPU).maps[0]  # the detector's conv5 of the whole image
    assert conv5.shape[1:] == (5, 10)  # fewer rows than the 6x6 level's bins: they overlap, as appendix A allows
    want = pyramid_pool_whole(conv5[None], (6, 3, 2, 1))[0].numpy()  # adaptive max pooling, not ours
    np.testing.assert_array_equal(image_vector(trunk, image, cfg, CPU), want)


def test_one_level_is_the_pyramids_own_level(trunk, image):
    full = image_vector(trunk, image, ImageVectorConfig(side=96), CPU)
    c = 256  # ZF-5's conv5
    np.testing.assert_array_equal(image_vector(trunk, image, ImageVectorConfig(side=96, levels=(1,)), CPU), full[-c:])
    np.testing.assert_array_equal(
        image_vector(trunk, image, ImageVectorConfig(side=96, levels=(6,)), CPU), full[: 36 * c]
    )


def test_the_centre_crop_is_square_and_centred(image):
    full, centre = view_image(image, 64, "full"), view_image(image, 64, "center")
    assert full.shape == (64, 119, 3) and centre.shape == (64, 64, 3)
    np.testing.assert_array_equal(centre, full[:, 27:91])


def test_fc7_is_the_heads_fc7_of_the_pooled_vector(trunk, image):
    torch.manual_seed(1)
    head = FcHead(256 * 50, 16, 8, 3).eval()
    pool5 = torch.from_numpy(image_vector(trunk, image, ImageVectorConfig(side=64), CPU))[None]
    got = image_vector(trunk, image, ImageVectorConfig(side=64, layer="fc7"), CPU, head)
    assert got.shape == (8,)
    np.testing.assert_allclose(got, head.features(pool5, "fc7")[0].detach().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="needs a head"):
        image_vector(trunk, image, ImageVectorConfig(side=64, layer="fc6"), CPU)


def test_the_cache_reuses_a_vector_and_recomputes_a_corrupt_one(trunk, image, tmp_path):
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), image[:, :, ::-1])
    cfg = ImageVectorConfig(side=64)
    cache = ImageVectorCache(tmp_path / "cache", trunk, cfg, CPU)
    first = cache.vectors([path, path], progress=False)
    assert cache.computed == 1 and np.array_equal(first[0], first[1])
    np.testing.assert_array_equal(first[0], image_vector(trunk, image, cfg, CPU))
    entry = next(cache.folder.glob("*.npz"))
    entry.write_bytes(b"not an npz")
    again = ImageVectorCache(tmp_path / "cache", trunk, cfg, CPU)
    np.testing.assert_array_equal(again.get(path), first[0])
    assert again.computed == 1
    other = ImageVectorCache(tmp_path / "cache", trunk, ImageVectorConfig(side=64, levels=(6,)), CPU)
    assert other.folder != cache.folder


def test_bad_configs_are_input_errors():
    for kwargs, flag in (
        ({"levels": (6, 0)}, "--levels"),
        ({"view": "warp"}, "--view"),
        ({"side": 8}, "--side"),
        ({"layer": "fc8"}, "--layer"),
        ({"levels": (2, 2)}, "--levels"),
    ):
        with pytest.raises(InputError, match=flag):
            ImageVectorConfig(**kwargs)
