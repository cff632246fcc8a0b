"""detection.runtime.distributed without torchrun: one process, collectives that return their input."""

import pytest
import torch

from detection.models.head import FcHead
from detection.runtime.distributed import SINGLE, Dist, init_from_env


def test_a_plain_run_is_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    d, device = init_from_env("cpu")
    assert d is SINGLE and device == torch.device("cpu")
    assert d.is_main and not d.active
    assert d.shard([1, 2, 3]) == [1, 2, 3]
    assert d.all_gather({"a": 1}) == [{"a": 1}] and d.broadcast(7) == 7 and d.all_sum(2.5) == 2.5
    d.barrier()


def test_images_go_to_rank_i_mod_world():
    items = list(range(7))
    shards = [Dist(rank, 3).shard(items) for rank in range(3)]
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]
    assert all(Dist(r, 3).owner(i) == r for r in range(3) for i in shards[r])


def test_bad_world_size_is_one_line(monkeypatch):
    from data.errors import InputError

    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(InputError, match="WORLD_SIZE"):
        init_from_env("cpu")


@pytest.mark.parametrize("p", [0.5, 0.0])
def test_drawn_masks_are_the_ones_dropout_draws(p):
    """Distributed fine-tuning draws a batch's dropout masks itself; they must be nn.Dropout's."""
    torch.manual_seed(0)
    head = FcHead(10, 8, 6, 3, dropout=p).train()
    x = torch.randn(5, 10)
    torch.manual_seed(1)
    plain = head(x)
    torch.manual_seed(1)
    masks = head.draw_masks(5)
    assert (masks is None) == (p == 0)
    split = torch.cat([head(x[:2], None if masks is None else (masks[0][:2], masks[1][:2])),
                       head(x[2:], None if masks is None else (masks[0][2:], masks[1][2:]))])
    torch.testing.assert_close(split, plain, rtol=0, atol=1e-6)
