"""Every trunk ends in a stride-16 conv5 map; missing ImageNet weights give a clear InputError."""

import math
from pathlib import Path

import pytest
import torch
from skimage import data as skdata
from torchvision import models

from data.errors import InputError
from detection.models.backbones import BACKBONES, WithinChannelLRN, build_trunk, fold_batch_norm, normalise, zf5_trunk

CHANNELS = {"mobilenet_v2": 320, "zf5": 256, "alexnet": 256, "vgg16": 512}


@pytest.mark.parametrize("name", BACKBONES)
def test_trunk_is_stride_16(name):
    trunk, info = build_trunk(name, pretrained=False)
    assert info.stride == 16 and info.channels == CHANNELS[name]
    image = torch.zeros(1, 3, 224, 320, dtype=torch.uint8)
    with torch.no_grad():
        out = trunk(normalise(image))
    n, c, h, w = out.shape
    assert (n, c) == (1, CHANNELS[name])
    # 224 / 16 = 14, 320 / 16 = 20; padding conventions may add or drop one cell.
    assert abs(h - math.ceil(224 / 16)) <= 1 and abs(w - math.ceil(320 / 16)) <= 1, (h, w)


def receptive_field_centres(trunk: torch.nn.Module, axis: int) -> list[tuple[int, float]]:
    """(cell, centre) of two middle conv5 cells along ``axis`` (3: x, 2: y), the centre in input pixel
    indices, measured with autograd: the midpoint of the input pixels with a non-zero gradient.

    The image is long along ``axis`` (1024 px: wider than any trunk's receptive field, ~520 px for
    the dilated MobileNetV2) and short across it (32 px). The gradient's support is the cell's receptive
    field; summing |gradient| over a batch of random images keeps the pixels that one ReLU or
    max-pool switch would hide in a single image.
    """
    size = [4, 3, 32, 32]
    size[axis] = 1024
    x = torch.randn(*size, generator=torch.Generator().manual_seed(0), requires_grad=True)
    out = trunk(x)
    centres = []
    for cell in (out.shape[axis] // 2, out.shape[axis] // 2 + 1):
        index = [slice(None), slice(None), out.shape[2] // 2, out.shape[3] // 2]
        index[axis] = cell
        (grad,) = torch.autograd.grad(out[tuple(index)].sum(), x, retain_graph=True)
        support = grad.abs().sum(dim=tuple(d for d in range(4) if d != axis)).nonzero().flatten()
        assert 0 < support[0] and support[-1] < 1023, "receptive field cut off by the image border"
        centres.append((cell, (int(support[0]) + int(support[-1])) / 2))
    return centres


@pytest.mark.slow  # ~10-25 s each on a 2-core CPU (VGG16 backward on 1024 px)
@pytest.mark.parametrize("name", BACKBONES)
def test_declared_stride_and_centre_offset_are_the_measured_ones(name):
    """conv5 cell l is centred on input pixel stride * l + centre_offset, along x and along y."""
    trunk, info = build_trunk(name, pretrained=False)
    for axis in (3, 2):
        for cell, centre in receptive_field_centres(trunk.eval(), axis):
            assert centre == info.stride * cell + info.centre_offset, (name, axis, cell, centre)


def _caffe_within_channel_lrn(x: torch.Tensor, size: int, alpha: float, beta: float) -> torch.Tensor:
    """Slow reference, value by value: Caffe's WITHIN_CHANNEL LRN (zero padding counts in the mean)."""
    n, c, h, w = x.shape
    out = torch.empty_like(x)
    r = size // 2
    for b in range(n):
        for k in range(c):
            for i in range(h):
                for j in range(w):
                    window = x[b, k, max(0, i - r):i + r + 1, max(0, j - r):j + r + 1]
                    mean_sq = window.square().sum() / (size * size)
                    out[b, k, i, j] = x[b, k, i, j] / (1 + alpha * mean_sq) ** beta
    return out


@pytest.mark.parametrize("size", [3, 5])
def test_within_channel_lrn_matches_caffe(size):
    x = torch.randn(2, 3, 5, 4, generator=torch.Generator().manual_seed(1)) * 300  # large: LRN matters
    lrn = WithinChannelLRN(size, alpha=5e-5, beta=0.75)
    ref = _caffe_within_channel_lrn(x, size, 5e-5, 0.75)
    with torch.no_grad():  # the in-place inference path
        got = lrn(x)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-4)
    assert (got.abs() < x.abs()).float().mean() > 0.9  # the inputs are large enough to be normalised
    # the training path: same values, and gradients equal to those of the reference
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ya, yb = lrn(xa), _caffe_within_channel_lrn(xb, size, 5e-5, 0.75)
    torch.testing.assert_close(ya, ref, rtol=1e-5, atol=1e-4)
    (ga,), (gb,) = torch.autograd.grad(ya.square().sum(), xa), torch.autograd.grad(yb.square().sum(), xb)
    torch.testing.assert_close(ga, gb, rtol=1e-4, atol=1e-4)


def test_zf5_gives_the_papers_13x13_conv5_on_224():
    trunk, _ = build_trunk("zf5", pretrained=False)
    with torch.no_grad():
        out = trunk(torch.zeros(1, 3, 224, 224))
    assert out.shape == (1, 256, 13, 13)


def test_zf5_state_dict_is_the_plain_layer_list():
    """Checkpoints key the five convs as 0, 4, 8, 10, 12 (LRN, ReLU and pooling hold no state)."""
    state = zf5_trunk().state_dict()
    assert sorted(state) == sorted(f"{i}.{p}" for i in (0, 4, 8, 10, 12) for p in ("weight", "bias"))
    assert state["8.weight"].shape == (384, 256, 3, 3) and not state["12.bias"].any()  # zero biases


def test_zf5_init_keeps_the_signal():
    """conv5 of a fresh trunk is not vanishing on a normalised image (no pre-training could start)."""
    torch.manual_seed(0)
    image = torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8)
    with torch.no_grad():
        out = zf5_trunk()(normalise(image))
    assert out.std() > 0.1 and (out > 0).float().mean() > 0.2, (out.std(), (out > 0).float().mean())


def test_folded_batch_norm_is_the_plain_zf5_with_the_same_outputs():
    """A ZF-5 trained with BN (running statistics, affine) folds into the released layer list,
    computing the same conv5 as the BN trunk in eval mode."""
    torch.manual_seed(0)
    with_bn = zf5_trunk(batch_norm=True)
    for m in with_bn.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # as after training: statistics and affine far from identity
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.3, 3)
            m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-0.5, 0.5)
    folded = fold_batch_norm(with_bn.eval()).eval()
    assert list(folded.state_dict()) == list(zf5_trunk().state_dict())
    image = torch.randn(2, 3, 90, 123)
    with torch.no_grad():
        expected, got = with_bn(image), folded(image)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    """torch.hub pointed at an empty folder (no cached weights); restored afterwards."""
    old = torch.hub.get_dir()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path
    torch.hub.set_dir(old)


@pytest.mark.parametrize("name", ["alexnet", "vgg16"])
def test_missing_imagenet_weights_say_how_to_get_them(name, empty_torch_home):
    with pytest.raises(InputError) as err:
        build_trunk(name, pretrained=True)
    message = str(err.value)
    assert "\n" not in message
    assert "download" in message and "https://" in message  # where to get them
    assert str(empty_torch_home) in message  # and where to put them
    assert "--pretrained none" in message  # or how to do without


CAT_IDS = {281, 282, 283, 284, 285}  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat


def test_imagenet_mobilenet_v2_sees_a_cat():
    """The offline MobileNetV2 weights are the real ImageNet ones: Chelsea the cat is a cat."""
    weights = models.MobileNet_V2_Weights.IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / weights.url.rsplit("/", 1)[-1]
    if not cached.is_file():
        pytest.skip(f"MobileNetV2 ImageNet weights not cached at {cached} (make setup downloads them)")
    net = models.mobilenet_v2(weights=weights).eval()
    image = torch.from_numpy(skdata.chelsea()).permute(2, 0, 1)  # (3, H, W) uint8 RGB
    with torch.no_grad():
        logits = net(weights.transforms()(image).unsqueeze(0))
    top5 = set(logits[0].topk(5).indices.tolist())
    assert top5 & CAT_IDS, top5
