"""The STILL-2 comparison's shared pieces: the sampling error of a difference of two accuracies
(unpaired, and paired where both runs kept each problem's score), and the plot of held-out
accuracy per phase (backbone, imitate, explore + RS-SFT, ..., control) by difficulty. The CPU
demo's report and a loop recipe's report both draw from here, so that their numbers and figures
mean the same thing.

Not here: the tables themselves (each report knows its own rows) and any seed statistics beyond the
error bars a caller passes in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from reasonloop.evaluate.report import load_result, pyplot


def sampling_error(a: float, b: float, n: int) -> float:
    """Half-width of a 95% interval (normal approximation) for the difference of two accuracies in
    percent, each measured on ``n`` problems (independent samples: a conservative bound for the
    paired comparison the reports make)."""
    var = sum(p / 100 * (1 - p / 100) / n for p in (a, b))
    return 196 * var**0.5


def paired_error(base: Mapping[str, float], other: Mapping[str, float]) -> float | None:
    """Half-width of a 95% interval (normal approximation) for the difference of two accuracies
    in percent measured on the same problems: ``base`` and ``other`` map each problem id to its
    score (the mean verdict of its samples, :attr:`EvalResult.scores`), and the error is that of
    the mean per-problem difference — what a paired test (McNemar's, for one sample per problem)
    weighs. Problems both models solve or both miss add nothing to it, so it is smaller than
    :func:`sampling_error` when the two models agree on most problems. None when the two were
    not scored on the same problems (or on fewer than two)."""
    if len(base) < 2 or set(base) != set(other):
        return None
    diffs = [other[k] - base[k] for k in base]
    n = len(diffs)
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1)
    return 196 * (var / n) ** 0.5


def eval_scores(out_dir: str | Path) -> dict[str, float]:
    """The per-problem scores an eval run kept in ``OUT/metrics.json`` (empty where the run is
    missing, or was written before scores were kept)."""
    out_dir = Path(out_dir)
    return load_result(out_dir).scores if (out_dir / "metrics.json").is_file() else {}


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


__all__ = ["eval_scores", "paired_error", "phase_plot", "sampling_error"]
