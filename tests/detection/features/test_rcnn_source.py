"""R-CNN's per-window extractor: crop with context, mean padding, warp, whole-map pyramid pooling."""

import cv2
import numpy as np
import torch
from torch import nn

from data.records import ImageRecord
from detection.features.rcnn_source import MEAN_COLOUR, RCNNSource, warp_windows, warped_pool5_grad
from detection.models.backbones import TrunkInfo, normalise
from detection.models.spp import pooled_length, spatial_pyramid_pool


def _image(h=40, w=48, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_warp_at_scale_one_is_the_plain_crop():
    image = _image()
    # 32 px warp with 8 px context: the box [12, 12, 28, 28] grows 2x to [4, 4, 36, 36], 32 px wide.
    got = warp_windows(image, np.array([[12.0, 12.0, 28.0, 28.0]]), size=32, padding=8)
    assert got.shape == (1, 32, 32, 3)
    assert np.array_equal(got[0], image[4:36, 4:36])


def test_warp_without_context_stretches_the_box():
    image = _image()
    box = np.array([[8.0, 4.0, 24.0, 36.0]])  # 16 wide, 32 high -> 32 x 32: x doubled
    got = warp_windows(image, box, size=32, padding=0)[0]
    expect = cv2.resize(image[4:36, 8:24], (32, 32), interpolation=cv2.INTER_LINEAR)
    assert np.abs(got[1:-1, 1:-1].astype(int) - expect[1:-1, 1:-1]).max() <= 1


def test_outside_the_image_is_mean_colour():
    image = np.zeros((40, 48, 3), np.uint8)
    # Box at the top-left corner: its context (8 px of the 32 at warp size = 4 image px) lies outside.
    got = warp_windows(image, np.array([[0.0, 0.0, 16.0, 16.0]]), size=32, padding=8)[0]
    assert (got[:6, :6] == np.array(MEAN_COLOUR, np.uint8)).all()
    assert (got[10:, 10:] == 0).all()
    # The mean colour becomes ~0 after normalisation (R-CNN pads mean-subtracted crops with 0).
    x = normalise(torch.tensor(MEAN_COLOUR, dtype=torch.uint8).view(1, 3, 1, 1))
    assert x.abs().max() < 0.01


class _Trunk(nn.Module):
    """A tiny stride-4 "trunk" (3 -> 2 channels)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 2, 4, stride=4)

    def forward(self, x):
        return torch.relu(self.conv(x))


def test_source_pools_the_warped_window_through_the_trunk(tmp_path):
    image = _image(60, 80, seed=1)
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    record = ImageRecord("a", path, (60, 80), np.zeros((0, 4), np.float32), np.zeros(0, np.int64),
                         np.zeros(0, bool), np.zeros(0, bool))
    info = TrunkInfo("tiny", 2, 4, 32, 1.5)
    trunk = _Trunk().eval()
    boxes = torch.tensor([[10.0, 5.0, 50.0, 40.0], [0.0, 0.0, 80.0, 60.0], [70.0, 50.0, 79.0, 59.0]])
    levels = (4, 2, 1)
    got = RCNNSource(trunk, info, levels, 4, batch_size=2, device=torch.device("cpu")).pool5(record, boxes)
    assert got.shape == (3, pooled_length(2, levels))
    assert not got.is_inference()  # usable as fine-tuning input
    crops = warp_windows(image, boxes.numpy(), 32, 4)
    for i in range(3):
        x = normalise(torch.from_numpy(crops[i:i + 1]).permute(0, 3, 1, 2))
        fmap = trunk(x)[0].detach()  # (2, 8, 8)
        expect = spatial_pyramid_pool(fmap, torch.tensor([[0, 0, 7, 7]]), levels)[0]
        torch.testing.assert_close(got[i], expect, rtol=1e-5, atol=1e-5)
    empty = RCNNSource(trunk, info, levels, 4, 2, torch.device("cpu")).pool5(record, torch.zeros(0, 4))
    assert empty.shape == (0, pooled_length(2, levels))


def test_warped_pool5_grad_gives_the_source_numbers_and_trains_only_the_second_part(tmp_path):
    image = _image(60, 80, seed=2)
    path = tmp_path / "b.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    record = ImageRecord("b", path, (60, 80), np.zeros((0, 4), np.float32), np.zeros(0, np.int64),
                         np.zeros(0, bool), np.zeros(0, bool))
    info = TrunkInfo("tiny", 2, 4, 32, 1.5)
    torch.manual_seed(0)
    frozen, trained = nn.Sequential(nn.Conv2d(3, 4, 2, stride=2), nn.ReLU()), nn.Sequential(nn.Conv2d(4, 2, 2, stride=2))
    boxes = torch.tensor([[10.0, 5.0, 50.0, 40.0], [0.0, 0.0, 80.0, 60.0]])
    levels = (2, 1)
    want = RCNNSource(nn.Sequential(frozen, trained), info, levels, 4, 2, torch.device("cpu")).pool5(record, boxes)
    for p in frozen.parameters():
        p.requires_grad_(False)
    got = warped_pool5_grad(image, boxes, frozen, trained, info, levels, 4, torch.device("cpu"))
    torch.testing.assert_close(got.detach(), want, rtol=1e-5, atol=1e-5)
    got.sum().backward()
    assert trained[0].weight.grad is not None and trained[0].weight.grad.abs().sum() > 0
    assert frozen[0].weight.grad is None
