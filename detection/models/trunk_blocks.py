"""Cutting a trunk into a fixed first part and a trained rest (end-to-end fine-tuning).

A *block* is a run of top-level children of the trunk's ``nn.Sequential`` that starts with a child
holding a convolution: ZF-5's five blocks are conv1 (+ ReLU, LRN, pool), conv2 (+ ...), conv3, conv4
and conv5; MobileNetV2's 18 blocks are its feature stages. Fast R-CNN sec. 4.5 keeps the first
blocks fixed: they learn generic edges, and on a CPU their output can then be cached per image.
"""

from __future__ import annotations

from torch import nn

from data.errors import InputError


def block_starts(trunk: nn.Sequential) -> list[int]:
    """Indices of the top-level children that begin a block (hold a ``nn.Conv2d``)."""
    starts = [i for i, child in enumerate(trunk) if any(isinstance(m, nn.Conv2d) for m in child.modules())]
    return [0, *starts[1:]]  # whatever comes before the first conv belongs to the first block


def split_trunk(trunk: nn.Sequential, freeze_blocks: int) -> tuple[nn.Sequential, nn.Sequential]:
    """(frozen, trained): the first ``freeze_blocks`` blocks and the rest, sharing ``trunk``'s modules.

    ``trained(frozen(x)) == trunk(x)``; updating ``trained``'s parameters updates ``trunk``.

    Raises:
        InputError: ``freeze_blocks`` leaves no block to train.
    """
    starts = block_starts(trunk)
    if freeze_blocks >= len(starts):
        raise InputError("finetune.e2e.freeze_blocks", f"the trunk has {len(starts)} blocks; freeze fewer than that")
    cut = starts[freeze_blocks]
    children = list(trunk)
    return nn.Sequential(*children[:cut]), nn.Sequential(*children[cut:])
