"""Scores of several training runs, grouped by setting, as mean and spread over training seeds.

One run of a detector moves by points between training seeds (the main job: 22.6 to 24.5 mAP over
seeds 0-2), more than most effects the paper reports, so a comparison is between means with their
spread. Runs whose settings are equal but for the seed form one group; a run whose seed is already
in its group (the same run listed twice, or a rerun) starts another group, so no group counts one
seed twice.

The spread is the sample standard deviation (``ddof=1``), the usual "mean ± std" of a few seeds.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Run:
    """One trained and tested run.

    Attributes:
        name: what the run is, e.g. "SPP 1-scale 688"; runs of one group share it.
        setting: everything that must be equal to average runs (config without the seed, data).
        seed: the training seed.
        map: mAP in [0, 1].
        ap: class name -> AP in [0, 1], or None for a class without ground truth.
        label: a short name of where it came from (a work dir's folder), in the column's head.
        source: where it came from, in full, listed under the table.
    """

    name: str
    setting: str
    seed: int
    map: float
    ap: Mapping[str, float | None]
    label: str = ""
    source: str = ""


@dataclass(frozen=True)
class RunGroup:
    """Runs with one setting and distinct seeds, in the order they were given."""

    runs: tuple[Run, ...]

    @property
    def name(self) -> str:
        return self.runs[0].name

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(r.seed for r in self.runs)

    def map(self) -> tuple[float, float]:
        """(mean, sample std) of the mAP; std is NaN for one run."""
        return mean_std([r.map for r in self.runs])

    def ap(self, cls: str) -> tuple[float, float] | None:
        """(mean, sample std) of one class's AP, or None where a run has no AP for it."""
        values = [r.ap.get(cls) for r in self.runs]
        return None if any(v is None for v in values) else mean_std(values)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample standard deviation with ddof=1) of ``values``; the std is NaN for one value."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def group_runs(runs: Sequence[Run]) -> list[RunGroup]:
    """Runs grouped by ``setting``, groups in order of their first run; seeds never repeat in a group."""
    groups: list[list[Run]] = []
    for run in runs:
        home = next((g for g in groups if g[0].setting == run.setting and run.seed not in {r.seed for r in g}),
                    None)
        if home is None:
            groups.append([run])
        else:
            home.append(run)
    return [RunGroup(tuple(g)) for g in groups]


def _cell(stat: tuple[float, float] | None) -> str:
    if stat is None:
        return "-"
    mean, std = stat
    return f"{100 * mean:.1f}" if math.isnan(std) else f"{100 * mean:.1f} ± {100 * std:.1f}"


def markdown_table(groups: Sequence[RunGroup], caption: str) -> str:
    """A Markdown table: one column per group, one row per class, the mAP, each seed's mAP.

    Args:
        groups: from :func:`group_runs`; the classes are those of the first run.
        caption: the top-left cell, e.g. "AP % (voc07, test)".
    """
    classes = list(groups[0].runs[0].ap)
    head = [f"{g.name}{_labels(g)}: {_seeds(g)}" for g in groups]
    lines = [f"| {caption} | " + " | ".join(head) + " |", "|---|" + "---|" * len(groups)]
    lines += [f"| {c} | " + " | ".join(_cell(g.ap(c)) for g in groups) + " |" for c in classes]
    lines.append("| **mAP** | " + " | ".join(f"**{_cell(g.map())}**" for g in groups) + " |")
    if any(len(g.runs) > 1 for g in groups):
        lines.append("| mAP per seed | " + " | ".join(" / ".join(f"{100 * r.map:.1f}" for r in g.runs)
                                                     for g in groups) + " |")
    return "\n".join(lines) + "\n"


def _labels(group: RunGroup) -> str:
    labels = [r.label for r in group.runs if r.label]
    return f" ({' '.join(labels)})" if labels else ""


def _seeds(group: RunGroup) -> str:
    seeds = " ".join(str(s) for s in group.seeds)
    return f"seed {seeds}" if len(group.runs) == 1 else f"seeds {seeds}, mean ± std"
