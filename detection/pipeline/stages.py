"""A resumable list of stages: what ``meta.json`` says is done, what runs, on which ranks, timed.

Each :class:`Stage` names its outputs and the function that makes them; :func:`run_stages` does the
bookkeeping once for all of them. ``meta.json``'s ``stages_done`` is always a prefix of the recorded
stages' names, written atomically only after a stage's outputs are complete. With ``resume`` a
stage is skipped when it is listed and its outputs exist; otherwise it and every later stage run
again. Without ``resume`` the list is cleared before anything else, so a run killed early never
trusts an older run's files; a work dir trained by another version of the training code is trained
again. In a torchrun job every decision is rank 0's, broadcast.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from detection.runtime.distributed import SINGLE, Dist
from detection.runtime.usage import StageMeter, disk_bytes
from detection.workdir import TRAINING_VERSION, WorkDir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """One step of training.

    Attributes:
        name: its name in ``meta.json`` and in the stage table.
        make: computes its outputs.
        outputs: the files that must exist for it to count as done.
        load: when it is done, reads its outputs back instead (None: nothing to read).
        always: ``make`` runs even when done (a per-image cache that it fills resumes within, and
            later stages need what it returns).
        recorded: listed in ``meta.json`` (a step that only refills a cache is not).
        main_only: rank 0 alone runs it and every stage after it.
        after: run by rank 0 once the stage is recorded (deleting what its outputs now hold).
        timed: a row of the stage table (a step with nothing to do for this method has none).
        disk: the files and folders it writes, whose size its row of the stage table gives (None: no size).
    """

    name: str
    make: Callable[[], None]
    outputs: Callable[[], Sequence[Path]] = tuple
    load: Callable[[], None] | None = None
    always: bool = False
    recorded: bool = True
    main_only: bool = False
    after: Callable[[], None] | None = None
    timed: bool = True
    disk: Callable[[], Sequence[Path]] | None = None


class StageBook:
    """``meta.json`` of a work dir in training: the stages done and what the run was trained from."""

    def __init__(self, work: WorkDir, names: Sequence[str], resume: bool, d: Dist = SINGLE) -> None:
        self.work, self.names, self.d, self.team = work, tuple(names), d, d
        meta = d.broadcast(work.read_meta() if resume else {})
        if meta and meta.get("training_version", 1) != TRAINING_VERSION:
            log.warning("%s was trained by version %s of the training code, this is version %d: training it again "
                        "(cached proposals and conv5 maps are reused)", work.root, meta.get("training_version", 1),
                        TRAINING_VERSION)
            meta = {}
            if d.is_main:
                work.finetune_ckpt.unlink(missing_ok=True)
        if meta.get("torch_threads", torch.get_num_threads()) != torch.get_num_threads():
            log.warning("resuming with %d torch threads where the run began with %d: the model will differ from an "
                        "uninterrupted run's in its last bits (set OMP_NUM_THREADS=%d for the same)",
                        torch.get_num_threads(), meta["torch_threads"], meta["torch_threads"])
        done = list(meta.get("stages_done", []))
        while done and done != list(self.names[: len(done)]):
            done.pop()  # an unordered list (hand-edited?) keeps only its valid prefix
        # the model's last bits depend on the threads (docs/reliability.md)
        meta.update(training_version=TRAINING_VERSION, stages_done=done, torch_threads=torch.get_num_threads())
        self.meta: dict[str, Any] = meta
        self.done = done

    def write(self) -> None:
        if self.d.is_main:
            self.work.write_meta(self.meta)

    def is_done(self, stage: str, outputs: Sequence[Path]) -> bool:
        """Listed as done with its outputs present; if not, forget it and every later stage."""
        i = self.names.index(stage)
        missing = self.team.broadcast([str(p) for p in outputs if not Path(p).is_file()])
        if len(self.done) > i and not missing:
            return True
        if len(self.done) > i:
            log.warning("stage %s is listed as done but %s is missing; running it again", stage, missing[0])
            del self.done[i:]
            self.write()
        return False

    def finish(self, stage: str) -> None:
        self.done.append(stage)
        self.write()
        log.info("stage %s done", stage)


def run_stages(stages: Sequence[Stage], book: StageBook, meter: StageMeter) -> None:
    """Run ``stages`` in order: each not done (or ``always``), timed by ``meter``, recorded in ``book``."""
    d = book.d
    for stage in stages:
        if stage.main_only:
            if not d.is_main:
                return  # the rest is rank 0's
            book.team = SINGLE  # the other ranks have left: no more collectives
        done = stage.recorded and book.is_done(stage.name, stage.outputs())
        if done and not stage.always:
            if stage.load is not None:
                stage.load()
            continue
        if stage.timed:
            paths = stage.disk
            with meter.stage(stage.name, (lambda: disk_bytes(paths())) if paths is not None else None):
                stage.make()
        else:
            stage.make()
        if stage.recorded and not done:
            book.finish(stage.name)
            if stage.after is not None and d.is_main:
                stage.after()
            book.team.barrier()  # its outputs are on disk for every rank still working
