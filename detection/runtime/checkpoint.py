"""The one training checkpoint: everything the steps after it depend on, so that a resumed run ends
bit-identical to an uninterrupted one.

Besides the weights, the optimiser (momentum buffers) and the schedule, that is every random
stream a step draws from: torch's global generator (dropout masks; CUDA's too on a GPU), and the
run's own data stream, a numpy ``Generator`` (fine-tuning's mini-batches) or a torch
``Generator`` (the classifier's crops). Written atomically: a kill keeps the previous checkpoint.
A checkpoint holds hours of training, so one that cannot be read or does not fit the run is
reported by name and left as it is, never deleted or silently replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from data.cache import atomic_write
from data.errors import InputError
from data.model_files import load_torch_file

DataStream = np.random.Generator | torch.Generator
_KEYS = ("model", "opt", "sched", "torch_rng", "data_rng", "fits")


def save_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer,
                    sched: torch.optim.lr_scheduler.LRScheduler, data: DataStream, fits: int,
                    **extra: Any) -> None:
    """Write the state after the last step; ``fits`` is what a resuming run must match (its number of
    training items), ``extra`` the loop's own counters (step or epoch, smoothed loss, history)."""
    state = {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
             "torch_rng": torch.get_rng_state(), "data_rng": _stream_state(data), "fits": fits, **extra}
    device = next(model.parameters()).device
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    atomic_write(path, lambda f: torch.save(state, f))


def read_checkpoint(path: Path, fits: int, what: str) -> dict | None:
    """The checkpoint at ``path`` (``what``: "fine-tuning checkpoint", ...), None when there is none.

    Raises:
        InputError: naming the file, when it is unreadable or not of this run.
    """
    if not path.is_file():
        return None
    state = load_torch_file(path, what)
    missing = [k for k in _KEYS if k not in state]
    problem = (f"no {', '.join(missing)}" if missing else
               f"it holds {int(state['fits'])} training items, this run {fits}" if int(state["fits"]) != fits else None)
    if problem:
        raise InputError(path, f"{what} does not fit this run ({problem}); run without --resume to start again")
    return state


def restore_checkpoint(state: dict, path: Path, model: nn.Module, opt: torch.optim.Optimizer,
                       sched: torch.optim.lr_scheduler.LRScheduler, data: DataStream) -> None:
    """Put a checkpoint's state back, in place (the loop's own counters stay in ``state``).

    Raises:
        InputError: naming the file, when its weights or optimiser do not fit ``model``.
    """
    try:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
    except (RuntimeError, KeyError, ValueError) as err:
        raise InputError(path, f"not a checkpoint of this network ({str(err).splitlines()[0][:120]}); "
                               "run without --resume") from None
    sched.load_state_dict(state["sched"])
    if isinstance(data, np.random.Generator):
        data.bit_generator.state = state["data_rng"]
    else:
        data.set_state(state["data_rng"])
    torch.set_rng_state(state["torch_rng"])
    device = next(model.parameters()).device
    if "cuda_rng" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], device)


def _stream_state(data: DataStream) -> Any:
    return data.bit_generator.state if isinstance(data, np.random.Generator) else data.get_state()
