"""End-to-end fine-tuning: sampling, the multi-task loss, pooling with a gradient, exact resume."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from data.boxes import encode
from data.errors import InputError
from data.records import ImageRecord
from detection.features.conv5 import Conv5Maps
from detection.features.spp_source import pool_windows, pool_windows_grad
from detection.models.head import BACKGROUND, JOINT_BBOX_STDS, FcHead
from detection.training.config import E2EConfig, FinetuneConfig
from detection.training.e2e import finetune_e2e, multitask_loss
from detection.training.windows import build_windows, sample_fg_bg


def record(i, boxes, labels):
    g = len(boxes)
    return ImageRecord(f"img{i}", Path(f"img{i}.jpg"), (160, 200), np.array(boxes, np.float32).reshape(-1, 4),
                       np.array(labels, np.int64), np.zeros(g, bool), np.zeros(g, bool))


def test_an_images_windows_are_a_quarter_positives_then_negatives_sorted():
    labels = torch.tensor([2] * 40 + [BACKGROUND] * 100 + [-1] * 10)
    idx = np.sort(sample_fg_bg(labels, 64, 0.25, np.random.default_rng(0)))  # as finetune_e2e draws them
    assert len(idx) == 64 and len(set(idx.tolist())) == 64
    assert (labels[idx] > 0).sum() == 16 and (labels[idx] == BACKGROUND).sum() == 48
    few = np.sort(sample_fg_bg(torch.tensor([1] * 3 + [BACKGROUND] * 5), 64, 0.25, np.random.default_rng(0)))
    assert few.tolist() == list(range(8))  # short of both: everything usable, never a -1


def test_multitask_loss_is_cross_entropy_plus_smooth_l1_on_positives():
    torch.manual_seed(0)
    head = FcHead(6, 5, 5, 3, dropout=0.0, joint_bbox=True).eval()
    pool5 = torch.randn(4, 6)
    labels = torch.tensor([0, 2, 3, 0])
    boxes = torch.tensor([[0, 0, 10, 10], [5, 5, 20, 30], [1, 2, 8, 9], [3, 3, 9, 9]], dtype=torch.float32)
    gts = boxes + torch.tensor([1.0, -1.0, 2.0, 0.5])
    got = multitask_loss(head, pool5, labels, boxes, gts, True, 2.0, total=8)
    logits, deltas = head.forward_with_boxes(pool5)
    want = sum(-torch.log_softmax(logits[i], 0)[labels[i]] for i in range(4))
    for i in (1, 2):  # the positives, each on its own class's deltas
        t = encode(boxes[i:i + 1], gts[i:i + 1])[0] / torch.tensor(JOINT_BBOX_STDS)
        d = (deltas[i, labels[i] - 1] - t).abs()
        want = want + 2.0 * torch.where(d < 1, 0.5 * d * d, d - 0.5).sum()
    assert torch.allclose(got, want / 8, atol=1e-6)
    ce_only = multitask_loss(head, pool5, labels, boxes, gts, False, 2.0, total=8)
    assert torch.allclose(ce_only, nn.functional.cross_entropy(logits, labels, reduction="sum") / 8)


def test_pool_windows_grad_matches_pool_windows_at_several_scales():
    gen = torch.Generator().manual_seed(0)
    maps = Conv5Maps((torch.randn(3, 8, 10, generator=gen), torch.randn(3, 16, 20, generator=gen)), (0.5, 1.0))
    boxes = torch.tensor([[0, 0, 40, 40], [10, 20, 300, 250], [50, 60, 90, 80], [0, 0, 319, 255]], dtype=torch.float32)
    want = pool_windows(maps, boxes, 16, 0.0, (2, 1), share_identical=False)
    leaves = [m.clone().requires_grad_() for m in maps.maps]
    got = pool_windows_grad(lambda i: leaves[i], maps.scales, boxes, 16, 0.0, (2, 1))
    assert torch.equal(got.detach(), want)
    got.sum().backward()
    assert all(leaf.grad is not None and leaf.grad.abs().sum() > 0 for leaf in leaves)  # both scales chosen


class FakeRegions:
    """A 1x1 conv 'trained block' on fixed random per-image maps, pooled with a gradient (1 scale)."""

    def __init__(self, stop_at=None):
        self.trained = nn.Conv2d(4, 3, 1)
        self.calls, self.stop_at = 0, stop_at

    def __call__(self, rec, boxes):
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        fmap = torch.randn(1, 4, 10, 13, generator=torch.Generator().manual_seed(int(rec.image_id[3:])))
        return pool_windows_grad(lambda i: self.trained(fmap)[0], (1.0,), boxes, 16, 0.0, (2, 1))


def _train(checkpoint, every=1000, stop_at=None, joint=True):
    recs = [record(i, [[10 + i, 10, 80, 90], [100, 20, 180 - i, 150]], [0, 1]) for i in range(3)]
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (60, 2))
    props = np.concatenate([xy, xy + rng.uniform(20, 90, (60, 2))], 1).astype(np.float32)
    windows = [build_windows(r, props, 2) for r in recs]
    torch.manual_seed(0)
    regions = FakeRegions(stop_at)
    head = FcHead(15, 8, 8, 2, dropout=0.5, joint_bbox=joint)
    cfg = FinetuneConfig(iterations=12, lr=0.01, lr_step=7, batch_size=16, mode="e2e",
                         e2e=E2EConfig(joint_bbox=joint))
    finetune_e2e(regions.trained, head, recs, windows, regions, cfg, seed=1, checkpoint=checkpoint,
                 progress=False, checkpoint_every=every)
    return {**head.state_dict(), **{f"trunk.{k}": v for k, v in regions.trained.state_dict().items()}}


def test_e2e_training_moves_the_conv_weights():
    torch.manual_seed(0)
    before = nn.Conv2d(4, 3, 1).weight.detach().clone()  # FakeRegions' first draw
    after = _train(None)
    assert not torch.equal(after["trunk.weight"], before)


def test_a_resumed_e2e_fine_tuning_is_bit_identical_to_an_uninterrupted_one(tmp_path):
    plain = _train(None)
    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        _train(ckpt, every=3, stop_at=2 * 10 + 1)  # dies in step 11; last checkpoint after step 9
    assert torch.load(ckpt, weights_only=True)["step"] == 9
    torch.manual_seed(123)
    resumed = _train(ckpt, every=3)
    assert all(torch.equal(plain[k], resumed[k]) for k in plain)


def test_an_fc_only_checkpoint_is_refused_by_name(tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        _train(ckpt, every=3, stop_at=2 * 10 + 1)
    with pytest.raises(InputError, match="ckpt.pt"):
        _train(ckpt, every=3, joint=False)  # another head: the checkpoint does not fit


def test_joint_bbox_needs_e2e():
    with pytest.raises(InputError, match="joint_bbox"):
        FinetuneConfig(e2e=E2EConfig(joint_bbox=True))


@pytest.mark.parametrize("backbone, freeze", [("zf5", 1), ("mobilenet_v2", 15)])
def test_the_loss_reaches_the_trained_blocks_of_each_trunk(backbone, freeze):
    from detection.models.backbones import build_trunk
    from detection.models.trunk_blocks import split_trunk

    torch.manual_seed(0)
    trunk, info = build_trunk(backbone, pretrained=False)
    frozen, trained = split_trunk(trunk, freeze)
    for p in trunk.parameters():
        p.requires_grad_(False)
    for p in trained.parameters():
        p.requires_grad_(True)
    with torch.no_grad():
        cached = frozen(torch.randn(1, 3, 160, 192))
    boxes = torch.tensor([[0.0, 0.0, 100.0, 90.0], [40.0, 30.0, 190.0, 150.0]])
    pool5 = pool_windows_grad(lambda i: trained(cached)[0], (1.0,), boxes, info.stride, info.centre_offset, (2, 1))
    pool5.square().sum().backward()
    first_conv = next(m for m in trained.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in frozen.parameters())
