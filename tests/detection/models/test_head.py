"""The fc head's test-time levers: truncated SVD and int8 fc layers."""

import pytest
import torch

from data.errors import InputError
from detection.models.head import FcHead, apply_test_levers, quantize_int8, truncate_svd


def test_truncated_svd_keeps_the_layer_at_full_rank():
    head = FcHead(40, 30, 20, 3)
    x = torch.randn(5, 40)
    full = head.features(x, "fc6")
    head.fc6 = truncate_svd(head.fc6, 30)
    assert torch.allclose(head.features(x, "fc6"), full, atol=1e-5)


def test_int8_head_is_close_to_float32_and_refused_on_gpu():
    torch.manual_seed(0)
    head = FcHead(64, 48, 32, 3).eval()
    x = torch.relu(torch.randn(200, 64))
    full = head.features(x, "fc7")
    q = quantize_int8(head)
    assert type(q.fc6).__module__.startswith("torch.ao.nn.quantized")  # really int8 layers
    approx = q.features(x, "fc7")
    assert ((approx - full).norm() / full.norm()).item() < 0.05
    assert head.fc6.weight.dtype == torch.float32  # the float head is left as it was
    with pytest.raises(InputError, match="CPU"):
        apply_test_levers(head, None, None, True, torch.device("cuda"))
