"""The same numbers on a GPU as on the CPU for what SPP-net's speed and end-to-end fine-tuning rest
on: pyramid pooling (forward and its arg-max gradient), SPP-net's and R-CNN's pool5 features of a
ZF-5 trunk, and the gradient end-to-end fine-tuning sends through the pooling into the trained
blocks of each trunk. Skipped without a CUDA device (CI has none); run with ``pytest -m gpu`` on one."""

import pytest
import torch

from data.voc import load_voc
from detection.features.rcnn_source import RCNNSource
from detection.features.spp_source import SPPSource, pool_windows_grad
from detection.models.backbones import build_trunk
from detection.models.spp import spatial_pyramid_pool
from detection.models.trunk_blocks import split_trunk

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]

CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def _full_fp32_on_the_gpu():
    """TF32 convolutions / matmuls (cuDNN's default) round to ~1e-3; compare exact float32 here."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _random_cells(gen: torch.Generator, r: int, h: int, w: int) -> torch.Tensor:
    """(r, 4) int64 inclusive cell windows (left, top, right, bottom) inside an (h, w) map."""
    a = torch.randint(0, w, (r, 2), generator=gen).sort(1).values
    b = torch.randint(0, h, (r, 2), generator=gen).sort(1).values
    return torch.stack([a[:, 0], b[:, 0], a[:, 1], b[:, 1]], 1)


def test_pyramid_pooling_and_its_gradient_on_cuda_equal_the_cpu():
    gen = torch.Generator().manual_seed(0)
    fmap = torch.randn(64, 37, 51, generator=gen, dtype=torch.float64)
    cells = _random_cells(gen, 500, 37, 51)
    upstream = torch.randn(500, 64 * 50, generator=gen, dtype=torch.float64)
    results = []
    for device in ("cpu", CUDA):
        x = fmap.detach().to(device).requires_grad_()  # a fresh leaf per device
        out = spatial_pyramid_pool(x, cells.to(device))
        out.backward(upstream.to(device))
        results.append((out.detach().cpu(), x.grad.cpu()))
    (out_cpu, grad_cpu), (out_gpu, grad_gpu) = results
    assert torch.equal(out_gpu, out_cpu)  # max pooling picks, it does not round
    # the same arg-max cells receive the same sums (atomic adds on the GPU: another order)
    assert torch.allclose(grad_gpu, grad_cpu, rtol=1e-12, atol=1e-12)
    assert (grad_cpu != 0).sum() > 1000


@pytest.mark.parametrize("method", ["spp", "rcnn"])
def test_pool5_of_a_zf5_trunk_on_cuda_equals_the_cpu(tiny_voc, method):
    record = load_voc(tiny_voc, "test").records[0]
    torch.manual_seed(0)
    trunk, info = build_trunk("zf5", pretrained=False)
    trunk.eval()
    gen = torch.Generator().manual_seed(1)
    xy = torch.rand(40, 2, generator=gen) * 250
    boxes = torch.cat([xy, xy + 30 + torch.rand(40, 2, generator=gen) * 200], 1)
    pooled = []
    for device in (torch.device("cpu"), CUDA):
        net = trunk.to(device)
        if method == "spp":
            source = SPPSource(net, info, (480, 688), (6, 3, 2, 1), device)
        else:
            source = RCNNSource(net, info, (6, 3, 2, 1), 16, 16, device)
        pooled.append(source.pool5(record, boxes).cpu())
    cpu, gpu = pooled
    assert cpu.shape == (40, info.channels * 50)
    assert ((gpu - cpu).norm() / cpu.norm()).item() < 1e-4


@pytest.mark.parametrize("backbone, freeze", [("zf5", 1), ("mobilenet_v2", 14)])
def test_the_e2e_gradient_into_the_trained_blocks_on_cuda_equals_the_cpu(backbone, freeze):
    torch.manual_seed(0)
    trunk, info = build_trunk(backbone, pretrained=False)
    # eval: as build_trunk returns it and fine-tuning keeps it (batch norm on running statistics).
    # float64, so that rounding cannot move a bin's arg-max cell between the devices.
    trunk.eval().double()
    frozen, trained = split_trunk(trunk, freeze)
    gen = torch.Generator().manual_seed(2)
    images = [torch.randn(1, 3, h, w, generator=gen, dtype=torch.float64) for h, w in ((224, 288), (320, 416))]
    xy = torch.rand(30, 2, generator=gen) * 150
    boxes = torch.cat([xy, xy + 20 + torch.rand(30, 2, generator=gen) * 120], 1)
    upstream = torch.randn(30, info.channels * 50, generator=gen, dtype=torch.float64)
    grads = []
    for device in (torch.device("cpu"), CUDA):
        trunk.to(device)  # frozen and trained are views of its blocks
        trained.zero_grad()
        with torch.no_grad():
            cached = [frozen(x.to(device)) for x in images]  # the fixed blocks' cache
        pool5 = pool_windows_grad(lambda i: trained(cached[i])[0], (0.7, 1.0), boxes, info.stride,
                                  info.centre_offset, (6, 3, 2, 1))
        pool5.backward(upstream.to(device))
        grads.append(torch.cat([p.grad.flatten().cpu() for p in trained.parameters() if p.grad is not None]))
    cpu, gpu = grads
    assert cpu.abs().sum() > 0 and cpu.shape == gpu.shape
    assert ((gpu - cpu).norm() / cpu.norm()).item() < 1e-10
