"""The phase-by-phase dilated conv against torch's own dilated conv (the slow, obvious reference)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detection.models.backbones import build_trunk
from detection.models.dilated_conv import PhaseDilatedConv2d, phase_dilated, phase_dilated_conv2d


@pytest.mark.parametrize("size", [(8, 8), (7, 9), (1, 5)])
@pytest.mark.parametrize("dilation, kernel, groups", [(2, 3, 6), (2, 3, 1), (3, 3, 2), (2, 5, 6), (2, 1, 1)])
def test_phase_conv_equals_the_dilated_conv_forward_and_backward(size, dilation, kernel, groups):
    torch.manual_seed(0)
    x = torch.randn(2, 6, *size, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 6 // groups, kernel, kernel, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)
    ref = F.conv2d(x, w, b, padding=dilation * (kernel // 2), dilation=dilation, groups=groups)
    out = phase_dilated_conv2d(x, w, b, dilation, groups)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref)
    grad = torch.randn_like(ref)
    expected = torch.autograd.grad(ref, (x, w, b), grad)
    for got, want in zip(torch.autograd.grad(out, (x, w, b), grad), expected):
        torch.testing.assert_close(got, want)


def test_the_module_keeps_the_convs_parameters_and_refuses_what_it_cannot_compute():
    conv = nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=4)
    phase = PhaseDilatedConv2d.from_conv(conv)
    assert phase.weight is conv.weight and phase.bias is conv.bias
    x = torch.randn(1, 4, 6, 5)
    torch.testing.assert_close(phase(x), conv(x))
    for bad in (nn.Conv2d(4, 4, 3, stride=2, padding=2, dilation=2), nn.Conv2d(4, 4, 3, padding=1, dilation=2),
                nn.Conv2d(4, 4, 2, padding=1, dilation=2)):
        with pytest.raises(ValueError, match="not a stride-1"):
            PhaseDilatedConv2d.from_conv(bad)


def test_our_mobilenet_trunk_computes_the_same_map_with_the_same_state_dict():
    trunk, _ = build_trunk("mobilenet_v2", pretrained=False)
    x = torch.randn(1, 3, 72, 88)
    with torch.no_grad():
        ref = trunk(x)
        keys = list(trunk.state_dict())
        phased = phase_dilated(trunk)
        assert list(phased.state_dict()) == keys
        assert sum(isinstance(m, PhaseDilatedConv2d) for m in phased.modules()) == 4  # blocks 14-17's 3x3
        torch.testing.assert_close(phased(x), ref)


def test_end_to_end_fine_tuning_runs_the_trained_blocks_dilated_convs_phase_by_phase(tmp_path):
    """make_regions (the e2e training forward) swaps the trained blocks' dilated convs in the trunk
    itself, so that what fine-tuning trains is what trunk.pt saves; the frozen blocks stay as they are."""
    from detection.features.config import FeatureConfig
    from detection.training.e2e_regions import make_regions

    trunk, info = build_trunk("mobilenet_v2", pretrained=False)
    keys = list(trunk.state_dict())
    make_regions("spp", FeatureConfig(), 14, trunk, info, tmp_path, torch.device("cpu"))
    swapped = [name for name, m in trunk.named_modules() if isinstance(m, PhaseDilatedConv2d)]
    assert len(swapped) == 4 and all(int(name.split(".")[0]) >= 14 for name in swapped)
    assert list(trunk.state_dict()) == keys
