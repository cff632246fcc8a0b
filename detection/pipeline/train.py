"""Training a detector, stage by stage, each resumable (R-CNN / SPP-net training recipe).

  1. proposals   selective search on every training image (per-image cache), in worker processes
  2. conv5       SPP-net only: conv5 maps of every training image (per-image cache); with
                 finetune.mode=e2e the fixed first blocks' maps instead
  3. finetune    fc6, fc7, fc8 on pooled windows (skipped when finetune.enabled is false); with
                 finetune.mode=e2e the conv layers too (detection.training.e2e), saved as trunk.pt,
                 whose conv5 maps (another cache folder: keyed by the weights) stages 4-5 use
  4. svm         one pass of hard-negative mining over the training images; the same pass keeps
                 the pool5 vectors of proposals near a ground truth for step 5
  5. bbox        per-class ridge regression on those pool5 vectors

``detection.pipeline.stages`` runs them: a stage is done when its output exists and ``meta.json``
lists it; ``resume`` skips done stages. Stages 1, 2 and 3 continue an interrupted run where it
stopped (per-image caches, fine-tuning checkpoints); 4 and 5 start again from their beginning. Either way the result is bit-identical to
an uninterrupted run's.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch

from data.cache import atomic_write, corrupt_entries_reported, file_digest
from data.datasets import dataset_source
from data.errors import InputError
from data.model_files import load_module_state
from data.records import Dataset
from detection.config import DetectorConfig
from detection.features.rcnn_cache import CachedRCNNSource
from detection.models.head import FcHead
from detection.pipeline.disk import CacheEstimate, check_disk_space, training_estimates
from detection.pipeline.mining_features import (
    features_folder,
    sharded_feature_pass,
)
from detection.pipeline.sharded import sharded_conv5, sharded_proposals
from detection.pipeline.stages import Stage, StageBook, run_stages
from detection.pipeline.svm_stage import fit_bbox, mine_svms
from detection.runtime.distributed import SINGLE, Dist
from detection.runtime.usage import StageMeter
from detection.training.e2e import finetune_e2e
from detection.training.e2e_regions import make_regions
from detection.training.finetune import finetune
from detection.training.sgd import CHECKPOINT_EVERY
from detection.training.windows import ImageWindows, build_windows
from detection.workdir import (
    WorkDir,
    build_network,
    classifier_file,
    load_finetuned_trunk,
    make_source,
    new_head,
    trains_trunk,
    trunk_weights_file,
)
from proposals.store import cache_folder as proposal_cache_folder
from svm.row_store import memory_budget_bytes

log = logging.getLogger(__name__)

TRAIN_STAGES = ("proposals", "conv5", "finetune", "svm", "bbox")  # in order; meta.json lists those done


def train_detector(cfg: DetectorConfig, work: WorkDir, dataset: Dataset, device: torch.device,
                   workers: int, resume: bool, progress: bool = True,
                   checkpoint_every: int = CHECKPOINT_EVERY,
                   d: Dist = SINGLE, meter: StageMeter | None = None,
                   untrained: Sequence[str] = (), memory_gb: float | None = None) -> None:
    """Run every stage not yet done for ``cfg`` on the training split ``dataset`` (``stages.run_stages``
    says what done means and how a run resumes).

    meta.json records the trunk file a work dir is trained from, by path and SHA-1 (``trunk_file``),
    so that detection refuses it if it changes.

    ``d``: in a torchrun job every rank calls this; proposals, conv5 maps, the fine-tuning pool5
    pass and the mining feature pass are sharded over the ranks by image, fine-tuning runs under
    DDP, SVM mining is shared by class, and rank 0 alone writes meta.json and the models and fits
    the box regressors (the other ranks return after the SVMs).

    ``meter`` records each stage's wall and CPU time (the stage table train_det prints); ``workers``
    are the processes for proposals and for fitting SVMs.

    ``untrained``: classes without a training object, left out (``data.class_counts.check_trainable``):
    they get no SVM, and meta.json lists them so that detection never reports them.

    ``memory_gb``: the memory budget in GiB of fine-tuning's pool of windows and of the SVM stage
    (None: ``svm.row_store.memory_budget_bytes`` derives it from the memory available when each stage
    starts); does not change the model.
    """
    book = StageBook(work, TRAIN_STAGES, resume, d)
    book.meta.update({"classes": list(dataset.classes), "untrained_classes": list(untrained),
                      **dataset_source(dataset), "train_split": dataset.split, "cache_dir": str(work.cache)})
    book.write()
    run = _Training(cfg, work, dataset, device, workers, progress, checkpoint_every, d, untrained, book, memory_gb)
    run.open_network()
    check_disk_space(run.disk_estimates())  # before any stage: a full disk hours in loses the hours
    run_stages(run.stages(), book, meter or StageMeter())
    if isinstance(run.source, CachedRCNNSource):
        log.info("%s", run.source.summary())
    if d.is_main and corrupt_entries_reported():
        log.warning("%d corrupt cache entries were found (each reported above) and recomputed",
                    corrupt_entries_reported())


class _Training:
    """What the stages of one training run share: the network, its pool5 source, the windows."""

    def __init__(self, cfg: DetectorConfig, work: WorkDir, dataset: Dataset, device: torch.device, workers: int,
                 progress: bool, checkpoint_every: int, d: Dist, untrained: Sequence[str], book: StageBook,
                 memory_gb: float | None = None) -> None:
        self.cfg, self.work, self.dataset, self.device, self.workers = cfg, work, dataset, device, workers
        self.progress, self.checkpoint_every, self.d, self.untrained, self.book = (progress, checkpoint_every, d,
                                                                                  untrained, book)
        self.e2e, self.spp = trains_trunk(cfg), cfg.method == "spp"
        self.windows: list[ImageWindows] = []
        self.memory_gb = memory_gb

    def open_network(self) -> None:
        """The trunk (weights named in meta.json) and the pool5 source the stages train on."""
        cfg, work = self.cfg, self.work
        self.weights = trunk_weights_file(cfg, self.book.meta.get("trunk_file"))
        if self.weights is not None:  # the work dir names the trunk file it was trained from
            self.book.meta["trunk_file"] = {"path": str(self.weights.resolve()), "sha1": file_digest(self.weights)}
        self.trunk, self.info = build_network(cfg, self.device, self.weights)
        if self.e2e and self.d.active:
            raise InputError("finetune.mode", "e2e fine-tuning runs in one process; torchrun shards fc-only "
                                              "fine-tuning only (run without torchrun)")
        if self.e2e:  # the conv layers are trained: the fixed blocks' output is what gets cached
            self.regions = make_regions(cfg.method, cfg.features, cfg.finetune.e2e.freeze_blocks, self.trunk, self.info,
                                        work.cache, self.device)
            self.source = None
        else:
            self.source = make_source(cfg, self.trunk, self.info, work, self.device, cache_conv5=True)

    def stages(self) -> list[Stage]:
        """The recipe (the module's docstring), in order."""
        work, e2e = self.work, self.e2e
        return [
            Stage("proposals", self.proposals, always=True,
                  disk=lambda: (proposal_cache_folder(work.cache / "proposals", self.cfg.proposals),)),
            Stage("conv5", self.conv5, always=True, timed=self.spp, disk=self.conv5_folder),
            Stage("finetune", self.finetune, self.finetuned, load=self.load_finetuned, disk=self.finetuned,
                  after=lambda: work.finetune_ckpt.unlink(missing_ok=True)),
            *([Stage("conv5 of the fine-tuned trunk", self.conv5_finetuned, always=True, recorded=False,
                     timed=self.spp)] if e2e else []),
            Stage("svm", self.svm, lambda: (work.svms, work.bbox_samples, work.bbox_samples_x),
                  after=self.drop_mining_entries,
                  disk=lambda: (work.svms, work.bbox_samples, work.bbox_samples_x, *self.pool5_cache())),
            Stage("bbox", lambda: fit_bbox(self.cfg, work, self.dataset.num_classes, self.progress), lambda: (work.bbox,),
                  main_only=True, disk=lambda: (work.bbox,)),
        ]

    def disk_estimates(self) -> list[CacheEstimate]:
        """What this run's caches will still write (``detection.pipeline.disk``), logged."""
        work = self.work
        folders = {"proposals": proposal_cache_folder(work.cache / "proposals", self.cfg.proposals),
                   **{"conv5": f for f in self.conv5_folder() if self.spp}, **{"rcnn_pool5": f for f in self.pool5_cache()},
                   "mining_features": work.root / "mining_features", "work": work.root}
        estimates = training_estimates(self.cfg, self.info, self.dataset.records, folders, self.d.active)
        log.info("caches still to write: about %.2f GiB (%s)", sum(e.nbytes for e in estimates) / 2**30,
                 ", ".join(f"{e.name} {e.nbytes / 2**30:.2f} GiB" for e in estimates))
        return estimates

    def finetuned(self) -> tuple[Path, ...]:
        """What fine-tuning writes: head.pt (e2e: and trunk.pt)."""
        return (self.work.head, *([self.work.trunk] if self.e2e else []))

    def conv5_folder(self) -> tuple[Path, ...]:
        """The conv5 cache folder this run fills (e2e: the fixed blocks')."""
        cache = getattr(self.regions if self.e2e else self.source, "cache", None)
        return (cache.folder,) if cache is not None else ()

    def pool5_cache(self) -> tuple[Path, ...]:
        """R-CNN's pool5 cache folder (features.rcnn_cache), filled by fine-tuning and the SVM pass."""
        return (self.source.folder,) if isinstance(self.source, CachedRCNNSource) else ()

    def proposals(self) -> None:
        """1. Selective search (per-image cache, continues where it stopped; sharded over ranks)."""
        run = sharded_proposals(self.dataset.records, self.work.cache / "proposals", self.cfg.proposals,
                                self.workers, self.progress, self.d)
        if run.failed:
            log.warning("skipping %d training images without proposals", len(run.failed))
            self.dataset = Dataset(self.dataset.root, self.dataset.split, self.dataset.classes,
                                   tuple(r for r in self.dataset.records if r.image_id in run.boxes))
        self.book.meta["num_train_images"] = len(self.dataset.records)
        self.windows = [build_windows(r, run.boxes[r.image_id], self.dataset.num_classes)
                        for r in self.dataset.records]

    def conv5(self) -> None:
        """2. SPP-net's conv5 maps (e2e: the fixed blocks'), once per image, cached, sharded over ranks."""
        if self.spp:
            maps = (self.regions if self.e2e else self.source).cache
            sharded_conv5(maps, self.dataset.records, self.progress, self.d)

    def _new_head(self) -> FcHead:
        head = new_head(self.cfg, self.info, self.dataset.num_classes, classifier_file(self.cfg, self.weights))
        return head.to(self.device)

    def _memory_budget(self, what: str) -> int | None:
        """The stage's memory budget in bytes (``--memory-gb``, or a share of what is available now), logged."""
        budget = memory_budget_bytes(self.memory_gb)
        log.info("%s held in memory up to %s, the rest on disk", what,
                 "no bound" if budget is None else f"{budget / 2**30:.2f} GiB")
        return budget

    def finetune(self) -> None:
        """3. Fine-tuning (continues from its last checkpoint); rank 0 writes head.pt (and trunk.pt)."""
        cfg, work, self.head = self.cfg, self.work, self._new_head()
        if self.e2e:
            finetune_e2e(self.regions.trained, self.head, self.dataset.records, self.windows, self.regions,
                         cfg.finetune, cfg.seed, work.finetune_ckpt, self.progress, self.checkpoint_every)
            atomic_write(work.trunk, lambda f: torch.save(self.trunk.state_dict(), f))
        elif cfg.finetune.enabled:
            budget = self._memory_budget("fine-tuning: the pool of windows")
            spill = work.root / ("finetune_spill" if not self.d.active else f"finetune_spill.rank{self.d.rank}")
            finetune(self.head, self.dataset.records, self.windows, self.source, cfg.finetune, cfg.seed,
                     work.finetune_ckpt, self.progress, self.checkpoint_every, self.d, budget, spill)
        if self.d.is_main:
            atomic_write(work.head, lambda f: torch.save(self.head.state_dict(), f))
        self.head.eval()

    def load_finetuned(self) -> None:
        self.head = self._new_head()
        load_module_state(self.head, self.work.head, "fine-tuned head", self.device)
        load_finetuned_trunk(self.cfg, self.work, self.trunk, self.device)
        self.head.eval()

    def conv5_finetuned(self) -> None:
        """e2e: SVMs and box regressors read the fine-tuned trunk's conv5 (its own cache folder)."""
        self.source = make_source(self.cfg, self.trunk, self.info, self.work, self.device, cache_conv5=True)
        if self.spp:
            sharded_conv5(self.source.cache, self.dataset.records, self.progress, self.d)

    def svm(self) -> None:
        """4. SVMs with hard-negative mining (+ bbox-regression samples); restarts from its beginning."""
        cfg, d = self.cfg, self.d
        self.entries = features_folder(self.work.root, cfg, self.work.head) if d.active else None
        if self.entries is not None:  # the feature pass sharded by image, then the mining by class
            sharded_feature_pass(cfg, self.entries, self.dataset.records, self.windows, self.source, self.head, d,
                                 self.progress)
        budget = self._memory_budget("SVM stage: positives and negative cache")
        mine_svms(cfg, self.work, self.dataset, self.windows, self.source, self.head, self.progress, self.entries, d,
                  self.workers, self.untrained, budget)

    def drop_mining_entries(self) -> None:
        """svms.npz and bbox_samples.npz hold the result of the sharded feature pass now."""
        if self.entries is not None:
            shutil.rmtree(self.entries.parent, ignore_errors=True)
