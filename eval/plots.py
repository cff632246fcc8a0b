"""Precision/recall curves of a VOC evaluation, one PNG per class (matplotlib, Agg backend)."""

from __future__ import annotations

import logging
from pathlib import Path

from eval.voc_ap import VOCResult

log = logging.getLogger(__name__)


def plot_pr_curves(result: VOCResult, out_dir: Path) -> list[Path]:
    """Write ``<out_dir>/pr_<class>.png`` for every class.

    Args:
        result: an evaluation from :func:`eval.voc_ap.evaluate_voc`.
        out_dir: output folder (created).

    Returns:
        the K paths written, in class order.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display on the servers; must precede pyplot's import
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in result.classes:
        recall, precision = result.curves[name]
        ap = result.ap[name]
        fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
        ax.plot(recall, precision, drawstyle="steps-post")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision")
        label = "no ground truth" if ap is None else f"AP {100 * ap:.1f} ({result.metric})"
        ax.set_title(f"{name}: {label}")
        ax.grid(True, alpha=0.3)
        path = out_dir / f"pr_{name}.png"
        fig.savefig(path, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    log.info("wrote %d precision/recall plots to %s", len(paths), out_dir)
    return paths
