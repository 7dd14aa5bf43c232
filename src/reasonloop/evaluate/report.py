"""Write an evaluation's ``metrics.json``, ``report.md`` and PNG plots; compare several runs.

Plots (matplotlib, Agg backend, no display needed): accuracy vs k (pass@k and maj@k), accuracy by
level, and the response-length histogram split into correct and incorrect samples.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from reasonloop.errors import DataError
from reasonloop.evaluate.summary import Outcome
from reasonloop.records import EvalResult, from_dict, to_dict


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(result: EvalResult, plots: Sequence[str] = ()) -> str:
    parts = [
        f"# {result.benchmark} — {result.model} ({result.strategy})",
        "",
        f"{result.n_problems} problems; mean response length {result.mean_tokens or 0:.0f} tokens.",
        "",
        markdown_table(["metric", "%"], [[k, _pct(v)] for k, v in result.metrics.items()]),
    ]
    if result.breakdown:
        names = [k for k in result.metrics]
        rows = [
            [g, str(int(m.get("n", 0)))] + [_pct(m[k]) if k in m else "" for k in names]
            for g, m in result.breakdown.items()
        ]
        parts += ["", "## Breakdown", "", markdown_table(["group", "n", *names], rows)]
    for p in plots:
        parts += ["", f"![{Path(p).stem}]({Path(p).name})"]
    return "\n".join(parts) + "\n"


def plot_accuracy_vs_k(result: EvalResult, path: Path) -> Path | None:
    ks = sorted({int(k.split("@")[1]) for k in result.metrics if "@" in k})
    if len(ks) < 2:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for head in ("pass", "maj"):
        pts = [(k, result.metrics[f"{head}@{k}"]) for k in ks if f"{head}@{k}" in result.metrics]
        if head == "maj" and "pass@1" in result.metrics:
            pts = [(1, result.metrics["pass@1"]), *pts]
        if pts:
            ax.plot([k for k, _ in pts], [100 * v for _, v in pts], marker="o", label=f"{head}@k")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("k (samples)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{result.benchmark}: accuracy vs k")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_accuracy_by_level(result: EvalResult, path: Path) -> Path | None:
    levels = sorted((g for g in result.breakdown if g.startswith("level=")), key=_level_key)
    if not levels:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    values = [100 * result.breakdown[g].get("acc", 0.0) for g in levels]
    ax.bar([g.split("=", 1)[1] for g in levels], values, color="#4c72b0")
    ax.set_xlabel("level")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{result.benchmark}: accuracy by level")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_length_histogram(outcomes: Sequence[Outcome], title: str, path: Path) -> Path | None:
    if not outcomes:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    right = [o.tokens for o in outcomes if o.correct]
    wrong = [o.tokens for o in outcomes if not o.correct]
    top = max(o.tokens for o in outcomes) or 1
    bins = [top * i / 20 for i in range(21)]
    ax.hist(
        [right, wrong],
        bins=bins,
        label=[f"correct ({len(right)})", f"incorrect ({len(wrong)})"],
        color=["#55a868", "#c44e52"],
        stacked=True,
    )
    ax.set_xlabel("response length (tokens)")
    ax.set_ylabel("samples")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(
    out_dir: Path, result: EvalResult, outcomes: Mapping[str, Sequence[Outcome]]
) -> list[Path]:
    """Write metrics.json, report.md and plots into ``out_dir``; return the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    flat = [o for outs in outcomes.values() for o in outs]
    plots = [
        p
        for p in (
            plot_accuracy_vs_k(result, out_dir / "accuracy_vs_k.png"),
            plot_accuracy_by_level(result, out_dir / "accuracy_by_level.png"),
            plot_length_histogram(
                flat, f"{result.benchmark}: response length", out_dir / "length_hist.png"
            ),
        )
        if p is not None
    ]
    _atomic_write(out_dir / "metrics.json", json.dumps(to_dict(result), indent=2) + "\n")
    _atomic_write(out_dir / "report.md", render_markdown(result, [str(p) for p in plots]))
    return [out_dir / "metrics.json", out_dir / "report.md", *plots]


def load_result(run_dir: Path) -> EvalResult:
    path = Path(run_dir) / "metrics.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            "no metrics.json: is this an eval output directory?", where=str(path)
        ) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg})", where=f"{path}:{exc.lineno}") from None
    return from_dict(EvalResult, data, where=str(path))


def compare_table(results: Sequence[EvalResult]) -> tuple[list[str], list[list[str]]]:
    """STILL-2-style rows: model, benchmark, pass@1, best maj@k, mean tokens, gain over the first row."""
    header = ["model", "benchmark", "strategy", "n", "pass@1", "maj@k", "mean tokens", "gain"]
    rows = []
    base = results[0].metrics.get("pass@1", 0.0) if results else 0.0
    for r in results:
        maj = [k for k in r.metrics if k.startswith("maj@")]
        best = max(maj, key=lambda k: int(k.split("@")[1])) if maj else None
        p1 = r.metrics.get("pass@1", 0.0)
        rows.append(
            [
                r.model,
                r.benchmark,
                r.strategy,
                str(r.n_problems),
                _pct(p1),
                f"{_pct(r.metrics[best])} ({best})" if best else "-",
                f"{r.mean_tokens:.0f}" if r.mean_tokens is not None else "-",
                f"{100 * (p1 - base):+.1f}",
            ]
        )
    return header, rows


def _level_key(g: str) -> tuple[int, str]:
    v = g.split("=", 1)[1]
    return (int(v), v) if v.isdigit() else (10**6, v)


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display is ever opened)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
