"""Cutting a trunk into fixed and trained blocks."""

import pytest
import torch

from data.errors import InputError
from detection.models.backbones import build_trunk
from detection.models.trunk_blocks import block_starts, split_trunk


def test_zf5_has_five_conv_blocks_and_the_halves_compose_to_the_trunk():
    torch.manual_seed(0)
    trunk, _ = build_trunk("zf5", pretrained=False)
    assert block_starts(trunk) == [0, 4, 8, 10, 12]  # conv1 (+ReLU, LRN, pool), conv2 (...), conv3, conv4, conv5
    frozen, trained = split_trunk(trunk, 2)
    assert isinstance(trained[0], torch.nn.Conv2d) and trained[0] is trunk[8]  # shared, not copied
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(trained(frozen(x)), trunk(x))
    assert len(split_trunk(trunk, 0)[0]) == 0


def test_mobilenet_blocks_are_its_feature_stages():
    trunk, _ = build_trunk("mobilenet_v2", pretrained=False)
    assert block_starts(trunk) == list(range(18))
    with pytest.raises(InputError, match="freeze_blocks"):
        split_trunk(trunk, 18)
