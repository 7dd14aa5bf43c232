"""The STILL-2 comparison's shared pieces: the sampling error of a difference of two accuracies,
and the plot of held-out accuracy per phase (backbone, imitate, explore + RS-SFT, ..., control) by
difficulty. The CPU demo's report and a loop recipe's report both draw from here, so that their
numbers and figures mean the same thing.

Not here: the tables themselves (each report knows its own rows) and any seed statistics beyond the
error bars a caller passes in.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reasonloop.evaluate.report import pyplot


def sampling_error(a: float, b: float, n: int) -> float:
    """Half-width of a 95% interval (normal approximation) for the difference of two accuracies in
    percent, each measured on ``n`` problems (independent samples: a conservative bound for the
    paired comparison the reports make)."""
    var = sum(p / 100 * (1 - p / 100) / n for p in (a, b))
    return 196 * var**0.5


Bar = tuple[str, Sequence[float], Sequence[float] | None]  # label, value per set, error per set


def phase_plot(
    path: Path,
    sets: Sequence[str],
    bars: Sequence[Bar],
    *,
    title: str = "Countdown: each phase of the loop",
    ylabel: str = "held-out accuracy, greedy (%)",
) -> None:
    """Grouped bars: one group per set (x axis, labelled ``sets``), one bar per phase (``bars``,
    in order, with error bars where given), saved as a PNG at ``path``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    width = 0.8 / len(bars)
    for i, (label, values, errors) in enumerate(bars):
        ax.bar(
            [j + (i - (len(bars) - 1) / 2) * width for j in range(len(sets))],
            list(values),
            width,
            yerr=list(errors) if errors is not None else None,
            label=label,
            capsize=2,
        )
    ax.set_xticks(range(len(sets)), list(sets))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["phase_plot", "sampling_error"]
