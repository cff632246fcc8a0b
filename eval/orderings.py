"""The paper's orderings, checked on the records: "the pyramid beats one level", "the full image
beats the centre crop", "5 scales beat 1". A table spec names each as two of its rows::

    orderings:
      - {better: spp5, worse: spp1, claim: "5 scales over 1 (Table 10: 59.2 against 58.0)"}

and the results page says, under the table, by how much the ``better`` row leads on the records,
paired run by run (the same seed; for a folder table's one record, the same random split), and
whether the ordering holds in every pair, in none (reversed) or in some. The text is rendered from
the records like every figure, so that it cannot drift from them.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eval.across_seeds import mean_std
from eval.run_records import RowSpec, TableSpec, runs_by_seed

TIE = 0.05  # points: a difference the page shows as +0.0 is no evidence either way


def score(kind: str, record: Mapping[str, Any]) -> list[float]:
    """A record's figures in points, higher is better: mAP (detector, reference), the SVMs' mAP or
    mean class accuracy (image_svm: one per random split where a record holds several), minus the
    centre-crop top-1 error (classifier)."""
    if kind == "classifier":
        return [-100 * record["top1"]["center_crop"]]
    if kind == "image_svm":
        return [100 * s for s in record["scores"]]
    return [100 * record["map"]]


def paired_differences(spec: TableSpec, better: RowSpec, worse: RowSpec,
                       records: Path) -> tuple[list[float], str]:
    """better - worse in points, one per pair of runs on the same data, and what a pair is: "split"
    where both rows hold one record of the same random splits (a folder table), else "seed" (each
    record's figure: the mean over its splits)."""
    a, b = runs_by_seed(spec, better, records), runs_by_seed(spec, worse, records)
    seeds = sorted(set(a) & set(b))
    if len(seeds) == 1:
        sa, sb = score(spec.kind, a[seeds[0]]), score(spec.kind, b[seeds[0]])
        if len(sa) == len(sb) > 1:
            return [x - y for x, y in zip(sa, sb)], "split"
    return [statistics.fmean(score(spec.kind, a[s])) - statistics.fmean(score(spec.kind, b[s])) for s in seeds], "seed"


def verdict(diffs: list[float], tie: float = TIE) -> str:
    """"holds" when the better row leads in every pair by more than ``tie`` points (the page's
    rounding), "reversed" when it trails in every pair, "a tie" when no pair differs, else the counts."""
    ahead, behind = sum(d > tie for d in diffs), sum(d < -tie for d in diffs)
    if ahead == len(diffs):
        return "holds"
    if behind == len(diffs):
        return "reversed"
    if ahead == behind == 0:
        return "a tie"
    counts = [(ahead, "holds"), (behind, "reversed"), (len(diffs) - ahead - behind, "tied")]
    return ", ".join(f"{word} in {n}" for n, word in counts if n) + f" of {len(diffs)}"


def ordering_lines(spec: TableSpec, records: Path) -> list[str]:
    """Markdown: one bullet per ordering of the spec (mean ± std of the paired differences, each
    pair's, the verdict), or nothing for a spec without orderings."""
    if not spec.orderings:
        return []
    rows = {r.id: r for r in spec.rows}
    lines = []
    for better, worse, claim in spec.orderings:
        diffs, unit = paired_differences(spec, rows[better], rows[worse], records)
        if not diffs:
            lines.append(f"- {claim}, `{better}` − `{worse}`: not measured yet")
            continue
        mean, std = mean_std(diffs)
        spread = "" if len(diffs) == 1 else f" ± {std:.1f}"
        each = " / ".join(f"{d:+.1f}" for d in diffs) if len(diffs) <= 3 else f"{len(diffs)} {unit}s"
        lines.append(f"- {claim}, `{better}` − `{worse}`: **{mean:+.1f}{spread}** points ({each}; paired by "
                     f"{unit}): **{verdict(diffs)}**")
    return ["The paper's orderings on these records (a positive difference: the paper's order):", "", *lines, ""]
