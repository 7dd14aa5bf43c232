"""The run's report: STILL-2's table (one row per model, the data that made it, accuracy per
benchmark, gain over the backbone), how the explore pool was chosen, the exploration rounds (or the
GRPO rounds), what cleaning dropped from D_0 and from each round's explored rollouts (and why), and
a plot.

Everything is read back from the steps' summaries (``steps/*.json``), so a report can be written for
a run that stopped half-way: what did not run shows as ``-``.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonloop.evaluate.report import markdown_table, pyplot
from reasonloop.explore import BUCKETS
from reasonloop.recipe.commands import slug
from reasonloop.recipe.pool import describe

if TYPE_CHECKING:
    from reasonloop.recipe.runner import Loop


def percent(metrics: dict[str, float]) -> float:
    """Accuracy in %: mean accuracy over samples (pass@1 for greedy decoding)."""
    return 100 * metrics.get("acc", metrics.get("pass@1", 0.0))


def model_rows(loop: Loop) -> list[dict[str, Any]]:
    """One row per model: name, label, distilled and explored data counts, accuracy (%) per
    benchmark (None when not evaluated) and the mean gain over the backbone."""
    r, marker = loop.r, loop.marker
    benches = r.eval.benchmarks

    def accuracy(model: str) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for b in benches:
            v = marker(f"eval-{model}-{slug(b)}")
            out[b] = None if v is None else percent(v["metrics"])
        return out

    d0 = (marker("curate-imitate") or {}).get("kept")
    rows = [
        {"model": "backbone", "label": "backbone", "distilled": None, "explored": None},
        {"model": "imitate", "label": "imitate (SFT on D_0)", "distilled": d0, "explored": None},
    ]
    for i in loop.rounds():
        if r.improve.method == "rs-sft":
            data = marker(f"rs-data-r{i}") or {}
            label, explored = f"round {i}: RS-SFT from backbone", data.get("explored")
        elif r.improve.method == "grpo":
            done = marker(f"grpo-r{i}")
            label = f"round {i}: GRPO from {loop.policy(i)}"
            explored = None if done is None else f"{done['rollouts']} rollouts"
        else:
            pairs = (marker(f"dpo-pairs-r{i}") or {}).get("pairs")
            label = f"round {i}: DPO from {loop.dpo_start(i)}"
            explored = None if pairs is None else f"{pairs} pairs"
            if (marker(f"dpo-r{i}") or {}).get("skipped"):
                label += " (skipped: no pairs)"
        rows.append({"model": f"round-{i}", "label": label, "distilled": d0, "explored": explored})
    base = accuracy("backbone")
    for row in rows:
        row["accuracy"] = acc = accuracy(row["model"])
        gains = [acc[b] - base[b] for b in benches if acc[b] is not None and base[b] is not None]  # type: ignore[operator]
        row["gain"] = statistics.mean(gains) if gains else None
    return rows


def explore_rows(loop: Loop) -> list[list[str]]:
    out = []
    for i in loop.rounds():
        v = loop.marker(f"explore-r{i}")
        if v is None:
            continue
        b = v.get("buckets", {})
        out.append(
            [
                str(i),
                v["model"],
                str(v["problems"]),
                str(v["solved"]),
                *(str(b.get(k, 0)) for k in BUCKETS),
                str(v["rollouts"]),
            ]
        )
    return out


def grpo_rows(loop: Loop) -> list[list[str]]:
    """Per GRPO round: its start, steps, rollouts, their accuracy, reward and tokens."""
    out = []
    for i in loop.rounds():
        v = loop.marker(f"grpo-r{i}")
        if v is None:
            continue
        n = v["rollouts"]
        out.append(
            [
                str(i),
                loop.policy(i),
                str(v["steps"]),
                str(n),
                f"{100 * v['correct'] / n:.1f}" if n else "-",
                f"{v['mean_reward_first']:.3f} → {v['mean_reward_last']:.3f}",
                str(v["generated_tokens"]),
                str(v.get("trained_tokens", "-")),  # not counted before trained tokens were
                str(v["dropped_groups"]),
            ]
        )
    return out


def pool_lines(loop: Loop) -> list[str]:
    """How the explore pool was chosen (empty before the pool step has run)."""
    v = loop.marker("explore-pool")
    if v is None:
        return []
    lines = ["## Explore pool", "", describe(v) + ".", ""]
    levels = ", ".join(f"{k}: {n}" for k, n in v.get("levels", {}).items())
    lines.append(f"- levels in the pool: {levels or '-'}")
    if "probe" in v:
        p = v["probe"]
        rates = ", ".join(f"{k}: {n}" for k, n in v.get("pass_rates", {}).items())
        lines.append(
            f"- probe: {p['model']} sampled {p['problems']} unseen problems {p['rollouts']} times "
            f"each (stage `{p['stage']}`); pass rates in the pool: {rates or '-'}"
        )
    return [*lines, ""]


def cleaning_rows(loop: Loop) -> list[list[str]]:
    """Per data set (D_0, each round's explored rollouts): seen, kept and drops per reason."""
    out = []
    sets = [("D_0 (teacher)", "curate-imitate")]
    if loop.r.improve.method == "rs-sft":
        sets += [(f"round {i} explored", f"rs-data-r{i}") for i in loop.rounds()]
    for label, step in sets:
        v = loop.marker(step)
        if v is None:
            continue
        dropped = ", ".join(f"{k} {n}" for k, n in (v.get("dropped") or {}).items())
        out.append([label, str(v["seen"]), str(v["kept"]), dropped or "-"])
    return out


def _dpo_start(dpo_from: str) -> str:
    model = "the imitated model" if dpo_from == "imitate" else "the previous round's model"
    return f" (each round's DPO starts from {model}: `dpo_from: {dpo_from}`)"


def _cell(x: Any) -> str:
    return "-" if x is None else str(x)


def _acc(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def write_report(loop: Loop) -> dict[str, Any]:
    """Write ``report.md``, ``report.png`` and ``summary.json``; return the summary."""
    r, root = loop.r, loop.layout.root
    benches = list(r.eval.benchmarks)
    rows = model_rows(loop)
    header = ["model", "distilled", "explored", *(f"{b} (%)" for b in benches), "gain (avg)"]
    table = [
        [
            row["label"],
            _cell(row["distilled"]),
            _cell(row["explored"]),
            *(_acc(row["accuracy"][b]) for b in benches),
            "-" if row["gain"] is None else f"{row['gain']:+.1f}",
        ]
        for row in rows
    ]
    plotted = _plot(root / "report.png", rows, benches, r.name)
    ex = explore_rows(loop)
    lines = [
        f"# {r.name}",
        "",
        f"Student `{r.student.model}`; teacher `{r.teacher.engine}` ({r.teacher.method}); "
        f"{r.improve.rounds} round(s) of {r.improve.method}"
        + (_dpo_start(r.improve.dpo_from) if r.improve.method == "dpo" else "")
        + f". Accuracy: {r.eval.strategy} "
        f"decoding, {r.eval.max_tokens} tokens at most. `distilled`: rows of D_0; `explored`: "
        "selected correct rollouts (RS-SFT), preference pairs (DPO) or rollouts trained on (GRPO).",
        "",
        markdown_table(header, table),
        "",
    ]
    lines += pool_lines(loop)
    if ex:
        lines += [
            "## Exploration",
            "",
            markdown_table(
                [
                    "round",
                    "model",
                    "problems",
                    "solved",
                    "at once",
                    "with search",
                    "unsolved",
                    "rollouts",
                ],
                ex,
            ),
            "",
        ]
    grpo = grpo_rows(loop)
    if grpo:
        lines += [
            "## GRPO",
            "",
            f"Online RL on the explore pool, rewarded by the graders; rollouts stored under stage "
            f"`grpo-rI` (loss `{r.improve.grpo.loss_type}`, {r.improve.grpo.prompts_per_step} "
            f"prompts x {r.improve.grpo.group_size} rollouts per step).",
            "",
            markdown_table(
                [
                    "round",
                    "from",
                    "steps",
                    "rollouts",
                    "correct (%)",
                    "mean reward (first → last step)",
                    "generated tokens",
                    "trained tokens",
                    "all-equal groups dropped",
                ],
                grpo,
            ),
            "",
        ]
    cleaned = cleaning_rows(loop)
    if cleaned:
        lines += [
            "## Cleaning",
            "",
            "Explored rollouts pass D_0's curate filters, dedup and decontamination before they "
            "join D_i (`wrong_answer`: incorrect rollouts; `not_selected`: past the selection's "
            "per-problem limit).",
            "",
            markdown_table(["data", "seen", "kept", "dropped (reason count)"], cleaned),
            "",
        ]
    if plotted:
        lines += ["![accuracy per stage](report.png)", ""]
    (root / "report.md").write_text("\n".join(lines), encoding="utf-8")
    summary = {"report": str(root / "report.md"), "rows": rows}
    (root / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _plot(path: Path, rows: list[dict[str, Any]], benches: list[str], title: str) -> bool:
    """Grouped bars: one group per benchmark, one bar per model. False when nothing is measured."""
    if not any(v is not None for row in rows for v in row["accuracy"].values()):
        return False

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(benches) * len(rows) / 2), 3.8))
    width = 0.8 / len(rows)
    for k, row in enumerate(rows):
        xs = [j + (k - (len(rows) - 1) / 2) * width for j in range(len(benches))]
        ys = [row["accuracy"][b] or 0.0 for b in benches]
        ax.bar(xs, ys, width, label=row["model"])
    ax.set_xticks(range(len(benches)), benches)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
