"""Fine-tuning pieces: window labels by IoU band, mini-batches with a quarter positives."""

from pathlib import Path

import numpy as np
import pytest
import torch

from data.errors import InputError
from data.records import ImageRecord
from detection.models.head import BACKGROUND, FcHead
from detection.training.config import FinetuneConfig
from detection.training.windows import build_windows, sample_fg_bg, window_labels
from svm.row_store import RowStore


def record(boxes, labels, difficult=None):
    g = len(boxes)
    return ImageRecord("img", Path("img.jpg"), (100, 200), np.array(boxes, np.float32).reshape(-1, 4),
                       np.array(labels, np.int64), np.array(difficult or [False] * g), np.zeros(g, bool))


def test_window_labels_follow_the_iou_bands():
    rec = record([[0, 0, 100, 100]], [4])
    props = np.array([[0, 0, 100, 60], [0, 0, 100, 45], [0, 0, 100, 5], [0, 0, 100, 55]], np.float32)
    w = build_windows(rec, props, 5)  # IoUs: 1 (gt), .6, .45, .05, .55
    labels = window_labels(w, FinetuneConfig())
    assert labels.tolist() == [5, 5, BACKGROUND, -1, 5]


def test_batches_hold_a_quarter_positives():
    labels = torch.tensor([1] * 50 + [0] * 500 + [-1] * 20)
    cfg = FinetuneConfig()
    idx = sample_fg_bg(labels, cfg.batch_size, cfg.fg_fraction, np.random.default_rng(0))
    assert len(idx) == 128 and len(set(idx.tolist())) == 128
    assert (labels[idx] > 0).sum() == 32 and (labels[idx] == 0).sum() == 96
    few = sample_fg_bg(torch.tensor([1] * 5 + [0] * 500), cfg.batch_size, cfg.fg_fraction, np.random.default_rng(0))
    assert (few < 5).sum() == 5 and len(few) == 128  # short of positives: negatives fill in


class FakeSource:
    """pool5 vectors that depend only on the window, like cached conv5 maps: each box's own, whatever
    other boxes it is pooled with."""

    def __init__(self):
        self.boxes_pooled = 0

    def pool5(self, record, boxes, sw=None):
        self.boxes_pooled += len(boxes)
        return torch.stack([torch.randn(16, generator=torch.Generator().manual_seed(int(b.sum() * 1000)))
                            + b[0] / 100 for b in boxes])


def _train(checkpoint, every=None, stop_at=None, steps=30, **pool):
    """Fine-tune a fresh tiny head for ``steps`` steps; ``stop_at`` raises KeyboardInterrupt at that
    step; ``pool``: finetune's memory_budget and spill. Counts the windows pooled (``boxes_pooled``)."""
    from detection.training import finetune as ft

    rec = record([[10, 10, 60, 60], [100, 20, 180, 90]], [0, 1])
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (120, 2))
    props = np.concatenate([xy, xy + rng.uniform(20, 80, (120, 2))], 1).astype(np.float32)
    windows = [build_windows(rec, props, 2)]
    torch.manual_seed(0)  # what new_head does: dropout then draws from torch's global generator
    head = FcHead(16, 8, 8, 2, dropout=0.5)
    calls = 0

    def forward(x, masks=None):
        nonlocal calls
        calls += 1
        if calls == stop_at:
            raise KeyboardInterrupt
        return FcHead.forward(head, x, masks)

    head.forward = forward
    cfg = FinetuneConfig(iterations=steps, lr=0.01, lr_step=12, batch_size=16, windows_per_image=64)
    source = FakeSource()
    ft.finetune(head, [rec], windows, source, cfg, seed=1, checkpoint=checkpoint, progress=False,
                checkpoint_every=every or 1000, **pool)
    _train.boxes_pooled = source.boxes_pooled
    return head.state_dict()


def test_a_resumed_fine_tuning_is_bit_identical_to_an_uninterrupted_one(tmp_path):
    """Batches (numpy RNG), dropout masks (torch RNG), momentum and the lr step are all restored."""
    plain = _train(None)
    ckpt = tmp_path / "ckpt.pt"
    try:
        _train(ckpt, every=5, stop_at=18)  # dies in step 18, after the lr step at 12; last checkpoint: 15
    except KeyboardInterrupt:
        pass
    assert torch.load(ckpt, weights_only=True)["step"] == 15
    torch.manual_seed(123)  # the resumed process's global generator is elsewhere
    resumed = _train(ckpt, every=5)
    assert all(torch.equal(plain[k], resumed[k]) for k in plain)


def test_a_pool_of_windows_on_disk_trains_the_head_of_one_in_memory(tmp_path):
    """Fine-tuning's pool past its memory budget goes to files, read back row by row for each batch:
    the head is bit-identical to the unbounded one's, and the files are gone afterwards."""
    plain = _train(None)
    spill = tmp_path / "finetune_spill"
    spill.mkdir()
    (spill / "0.rows").write_bytes(b"a killed run's file")
    bounded = _train(None, memory_budget=0, spill=spill)
    assert all(torch.equal(plain[k], bounded[k]) for k in plain)
    assert not spill.exists()


def test_only_the_windows_a_batch_draws_are_pooled_and_the_head_is_the_same(monkeypatch):
    """The pool's vectors are pooled only for the windows some step will draw (replayed from the
    steps' own stream): the head of a run whose steps draw past them fails loudly, and pooling all
    of them trains the same head."""
    from detection.training import finetune as ft

    few = _train(None, steps=3)
    drew = _train.boxes_pooled
    assert drew >= 16  # 3 batches of 16
    replay = ft.batch_draws
    monkeypatch.setattr(ft, "batch_draws", lambda y, cfg, seed: np.ones(len(y), bool))  # keep the whole pool
    every = _train(None, steps=3)
    assert _train.boxes_pooled > drew  # the whole pool (up to 64 windows)
    assert all(torch.equal(few[k], every[k]) for k in few)
    monkeypatch.setattr(ft, "batch_draws", lambda y, cfg, seed: replay(y, cfg, seed + 1))  # not the steps' stream
    with pytest.raises(RuntimeError, match="did not keep"):
        _train(None, steps=3)


def test_the_pool_past_its_budget_is_on_disk_and_reads_back_the_same_rows(tmp_path):
    from detection.runtime.distributed import SINGLE
    from detection.training.finetune import draw_windows, gather_rows, keep_drawn, pool_windows

    recs = [record([[10, 10, 60, 60]], [0]), record([[100, 20, 180, 90]], [1])]
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (80, 2))
    props = np.concatenate([xy, xy + rng.uniform(20, 80, (80, 2))], 1).astype(np.float32)
    windows = [build_windows(r, props, 2) for r in recs]
    cfg = FinetuneConfig(windows_per_image=32)
    pools = [draw_windows(windows, cfg, np.random.default_rng(1)) for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(pools[0][:2], pools[1][:2]))  # the same draws
    stores = [RowStore(16, None, None, np.float16)]
    pool_windows(recs, windows, pools[0][2], FakeSource(), SINGLE, stores[0], False)
    stores.append(RowStore(16, stores[0].rows(0) * 16 * 2, tmp_path / "spill", np.float16))  # image 0's rows fit
    pool_windows(recs, windows, pools[1][2], FakeSource(), SINGLE, stores[1], False)
    assert stores[1].spills == 1 and stores[1].disk_bytes > 0  # the first image in memory, the second on disk
    _, image, picked = pools[0]
    row, _ = keep_drawn(np.ones(len(image), bool), picked)
    batch = np.random.default_rng(2).permutation(len(image))[:40]
    got = [gather_rows(s, image.numpy()[batch], row[batch]) for s in stores]
    assert torch.equal(got[0].view(torch.int16), got[1].view(torch.int16))
    for s in stores:
        s.close()


@pytest.mark.parametrize("corrupt, problem", [
    (lambda p: p.write_bytes(b"garbage, not a checkpoint"), "fine-tuning checkpoint file is unreadable"),
    (lambda p: torch.save({"head": {}, "step": torch.tensor(3)}, p), "fine-tuning checkpoint does not fit"),
])
def test_a_corrupt_checkpoint_is_reported_by_name_and_left_alone(tmp_path, corrupt, problem):
    ckpt = tmp_path / "finetune_ckpt.pt"
    corrupt(ckpt)
    before = ckpt.read_bytes()
    with pytest.raises(InputError, match=problem) as err:
        _train(ckpt)
    assert str(ckpt) in str(err.value) and ckpt.read_bytes() == before
