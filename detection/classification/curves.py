"""The training curves PNG: loss (training and held-out) and held-out accuracy per epoch."""

from __future__ import annotations

from pathlib import Path

from data.cache import atomic_write


def plot_curves(history: list[dict], majority: float, path: Path, title: str = "") -> None:
    """Write ``path`` (PNG, atomically) from :func:`detection.classification.train.fit`'s history."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; chosen here so importing this module changes nothing
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="training (random crops)")
    ax_loss.plot(epochs, [h["held_loss"] for h in history], "s-", label="held-out (center crop)")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_loss.legend()
    ax_acc.plot(epochs, [100 * h["held_accuracy"] for h in history], "o-", label="held-out, center crop")
    ax_acc.axhline(100 * majority, color="grey", linestyle="--", label=f"majority class {100 * majority:.1f}%")
    ax_acc.set(xlabel="epoch", ylabel="top-1 accuracy (%)", title="held-out accuracy", ylim=(0, 100))
    ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.set_xticks(epochs if len(epochs) <= 20 else epochs[:: max(1, len(epochs) // 10)])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
