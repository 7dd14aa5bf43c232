"""The run's report: STILL-2's table (one row per model, the data that made it, accuracy per
benchmark, gain over the backbone; with ``control: true`` the answer-only control too), each
model's difference from imitate per benchmark with its 95% sampling error, the time, tokens
generated and tokens trained per phase, how the explore pool was chosen, the exploration rounds
(or the GRPO rounds), what cleaning dropped from D_0 and from each round's explored rollouts (and
why), and the demo's plot of accuracy per phase (:func:`reasonloop.comparison.phase_plot`).

Everything is read back from the steps' summaries (``steps/*.json``), so a report can be written for
a run that stopped half-way: what did not run shows as ``-``.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonloop.comparison import eval_scores, paired_error, phase_plot, sampling_error
from reasonloop.evaluate.report import markdown_table
from reasonloop.explore import BUCKETS
from reasonloop.recipe.commands import slug
from reasonloop.recipe.pool import describe
from reasonloop.recipe.steps import seconds

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
        if r.improve.method_of(i) == "rs-sft":
            data = marker(f"rs-data-r{i}") or {}
            label, explored = f"round {i}: RS-SFT from backbone", data.get("explored")
        elif r.improve.method_of(i) == "grpo":
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
    if r.control:
        done = marker("sft-control") or {}
        label = "control: answer-only SFT from backbone"
        if done.get("matched_steps"):
            label += f" ({done['matched_steps']} steps: imitate's tokens)"
        rows.append(
            {
                "model": "control",
                "label": label,
                "distilled": (marker("control-data") or {}).get("rows"),
                "explored": None,
            }
        )
    base = accuracy("backbone")
    for row in rows:
        row["accuracy"] = acc = accuracy(row["model"])
        gains = [acc[b] - base[b] for b in benches if acc[b] is not None and base[b] is not None]  # type: ignore[operator]
        row["gain"] = statistics.mean(gains) if gains else None
    return rows


def difference_rows(loop: Loop, rows: list[dict[str, Any]]) -> list[list[str]]:
    """Per model other than imitate, per benchmark: its accuracy minus imitate's, ± the 95%
    sampling error of that difference (:func:`reasonloop.comparison.sampling_error`, on the
    number of problems evaluated), then the paired error where both evaluations kept their
    per-problem scores (:func:`reasonloop.comparison.paired_error`)."""
    benches = loop.r.eval.benchmarks
    imitate = next(row for row in rows if row["model"] == "imitate")["accuracy"]
    out = []
    for row in rows:
        if row["model"] == "imitate":
            continue
        cells = []
        for b in benches:
            a, base = row["accuracy"][b], imitate[b]
            done = loop.marker(f"eval-imitate-{slug(b)}")
            if a is None or base is None or done is None:
                cells.append("-")
                continue
            err = sampling_error(a, base, max(1, done["problems"]))
            paired = paired_error(
                eval_scores(loop.layout.eval_dir("imitate", b)),
                eval_scores(loop.layout.eval_dir(row["model"], b)),
            )
            cells.append(
                f"{a - base:+.1f} ± {err:.1f}"
                + ("" if paired is None else f" (paired ± {paired:.1f})")
            )
        out.append([row["label"], *cells])
    return out


def phase_of(step: str) -> str:
    """The phase a step belongs to: the model it makes or measures (``backbone``, ``imitate``,
    ``round-I``, ``control``), ``teacher`` for the imitation data."""
    for prefix in ("eval-", "export-"):
        if step.startswith(prefix):
            rest = step.removeprefix(prefix)
            for model in ("backbone", "imitate", "control"):
                if rest == model or rest.startswith(f"{model}-"):
                    return model
            if rest.startswith("round-"):
                return "-".join(rest.split("-")[:2])
    if step in ("distill", "rel", "curate-imitate"):
        return "teacher"
    if step in ("sft-imitate", "explore-pool"):
        return "imitate"
    if step in ("control-data", "sft-control"):
        return "control"
    tail = step.rsplit("-r", 1)
    if len(tail) == 2 and tail[1].isdigit():
        return f"round-{tail[1]}"
    return step  # backbone (build or convert)


def phase_rows(loop: Loop) -> list[list[str]]:
    """Per phase, in run order: its finished steps, their seconds, tokens generated (teacher,
    exploration, GRPO's rollouts, evaluation) and tokens trained (prompt + response tokens the
    training steps processed; ``?`` where the trainer did not count them)."""
    phases: dict[str, dict[str, Any]] = {}
    for step in loop.steps():
        v, secs = loop.marker(step.name), seconds(loop.layout.root, step.name)
        if v is None:
            continue
        p = phases.setdefault(phase_of(step.name), {"steps": [], "s": 0.0, "gen": 0, "train": 0})
        p["steps"].append(step.name)
        p["s"] += secs or 0.0
        if isinstance(v, dict):
            p["gen"] += int(v.get("generated_tokens") or 0)
            if "global_step" in v or "trained_tokens" in v:  # SFT/DPO steps, or a GRPO round
                tokens = v.get("trained_tokens")
                p["train"] = None if tokens is None or p["train"] is None else p["train"] + tokens
    out = [
        [
            name,
            f"{p['s'] / 60:.1f}",
            str(p["gen"]) if p["gen"] else "-",
            "?" if p["train"] is None else (str(p["train"]) if p["train"] else "-"),
            ", ".join(p["steps"]),
        ]
        for name, p in phases.items()
    ]
    total = sum(p["s"] for p in phases.values())
    return [*out, ["total", f"{total / 60:.1f}", "", "", ""]] if out else []


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
    sets += [
        (f"round {i} explored", f"rs-data-r{i}")
        for i in loop.rounds()
        if loop.r.improve.method_of(i) == "rs-sft"
    ]
    for label, step in sets:
        v = loop.marker(step)
        if v is None:
            continue
        dropped = ", ".join(f"{k} {n}" for k, n in (v.get("dropped") or {}).items())
        out.append([label, str(v["seen"]), str(v["kept"]), dropped or "-"])
    return out


def _methods(methods: tuple[str, ...]) -> str:
    """``rs-sft`` when every round has that method, else ``rs-sft, grpo`` in round order."""
    return methods[0] if len(set(methods)) == 1 else ", ".join(methods) or "-"


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
    diffs = difference_rows(loop, rows)
    phases = phase_rows(loop)
    ex = explore_rows(loop)
    lines = [
        f"# {r.name}",
        "",
        f"Student `{r.student.model}`; teacher `{r.teacher.engine}` ({r.teacher.method}); "
        f"{r.improve.rounds} round(s) of {_methods(r.improve.methods())}"
        + (_dpo_start(r.improve.dpo_from) if "dpo" in r.improve.methods() else "")
        + f". Accuracy: {r.eval.strategy} "
        f"decoding, {r.eval.max_tokens} tokens at most. `distilled`: rows of D_0; `explored`: "
        "selected correct rollouts (RS-SFT), preference pairs (DPO) or rollouts trained on (GRPO).",
        "",
        markdown_table(header, table),
        "",
    ]
    if diffs:
        lines += [
            "## Against imitate",
            "",
            "Each model's accuracy minus imitate's (points), ± the 95% sampling error of the "
            "difference (normal approximation, the problems of each benchmark as independent "
            "samples: conservative for this paired comparison); `paired`: the error of the same "
            "difference taken problem by problem (both models answered the same problems), "
            "smaller where the two agree on most problems.",
            "",
            markdown_table(["model", *benches], diffs),
            "",
        ]
    if phases:
        lines += [
            "## Time and tokens per phase",
            "",
            "Minutes of each phase's finished steps (as each step measured itself: a resumed run "
            "counts every part once); tokens generated by the teacher, exploration, GRPO's "
            "rollouts and evaluation; tokens trained: prompt + response tokens the training "
            "steps processed.",
            "",
            markdown_table(["phase", "minutes", "generated", "trained", "steps"], phases),
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
    """The demo's plot (one group per benchmark, one bar per model). False when nothing is
    measured."""
    if not any(v is not None for row in rows for v in row["accuracy"].values()):
        return False
    bars = [(row["model"], [row["accuracy"][b] or 0.0 for b in benches], None) for row in rows]
    phase_plot(path, benches, bars, title=title)
    return True
