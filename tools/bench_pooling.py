"""Time the two ways the pyramid pooling runs: the sparse table (forward only, on the conv5 cache's
float16 maps or float32) against torchvision's roi_pool (one call per level), forward alone and
forward + backward (end-to-end fine-tuning). ``detection.models.spp`` uses the faster of each.

Prints the median seconds of each variant, run interleaved so that a busy machine slows all of
them alike, and checks that they give the same vectors.

Examples:
  python tools/bench_pooling.py --threads 1
  python tools/bench_pooling.py --channels 1280 --height 75 --width 100 --windows 2000 --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torchvision.ops import roi_pool

from detection.models.spp import SPP_LEVELS, spatial_pyramid_pool
from tools._cli import run_cli


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--channels", type=int, default=320, help="conv5 channels (MobileNetV2's pooled layer: 320)")
    p.add_argument("--height", type=int, default=43, help="conv5 cells (688 px / stride 16 = 43)")
    p.add_argument("--width", type=int, default=57, help="conv5 cells (a 4:3 image at 688 px)")
    p.add_argument("--windows", type=int, default=2000, help="windows pooled forward (a test image's proposals)")
    p.add_argument("--batch", type=int, default=128, help="windows pooled forward + backward (a fine-tuning batch)")
    p.add_argument("--repeat", type=int, default=9, help="timed runs of each variant; the median is printed")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: torch's, all cores; 1 measures best on a shared machine)")
    return p.parse_args(argv)


def roi_levels(fmap: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """The pyramid as torchvision's roi_pool, one call per level."""
    rois = torch.cat([torch.zeros_like(cells[:, :1]), cells], 1).to(fmap.dtype)
    return torch.cat([roi_pool(fmap[None], rois, n, 1.0).flatten(1) for n in SPP_LEVELS], 1)


def medians(variants: dict[str, Callable[[], object]], repeat: int, device: torch.device) -> dict[str, float]:
    """Median wall seconds of each variant, the variants run in turn ``repeat`` times."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeat + 1):  # the first round warms up
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t[1:]) for name, t in times.items()}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    fmap = torch.randn(args.channels, args.height, args.width, generator=gen).clamp(min=0).to(device)
    x = torch.randint(0, args.width, (args.windows, 2), generator=gen).sort(1).values
    y = torch.randint(0, args.height, (args.windows, 2), generator=gen).sort(1).values
    cells = torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], 1).to(device)
    half = fmap.half()
    with torch.no_grad():
        assert torch.equal(spatial_pyramid_pool(fmap, cells), roi_levels(fmap, cells)), "the two differ"
        forward = medians({"sparse table, float16": lambda: spatial_pyramid_pool(half, cells),
                           "sparse table, float32": lambda: spatial_pyramid_pool(fmap, cells),
                           "roi_pool, float32": lambda: roi_levels(fmap, cells)}, args.repeat, device)
    batch = cells[:args.batch]

    def backward(pool: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        return lambda: pool(fmap.clone().requires_grad_(), batch).sum().backward()

    both = medians({"spatial_pyramid_pool (roi_pool inside)": backward(spatial_pyramid_pool),
                    "roi_pool, float32": backward(roi_levels)}, args.repeat, device)
    shape = f"{args.channels} x {args.height} x {args.width} map on {device.type}"
    print(f"forward, {args.windows} windows of a {shape} (median of {args.repeat}):")
    for name, seconds in forward.items():
        print(f"  {name:40s} {seconds:.4f} s")
    print(f"forward + backward, {len(batch)} windows:")
    for name, seconds in both.items():
        print(f"  {name:40s} {seconds:.4f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
