"""The CPU demo's parts: its config, task sets, teacher traces, student and report.

The demo runs as a recipe (``kind: demo``, ``recipes/cpu-demo.yaml``; ``reasonloop demo`` is the
short way): :mod:`reasonloop.recipe.demo` plans these phases as steps of the recipe runner (each
resumable: a finished phase leaves a marker in ``OUT/steps/`` and is skipped on rerun):

1. **task** — Countdown problems: a training pool, a hard pool to explore, held-out test sets by
   difficulty (easy = 3 numbers, medium = 4, hard = 5).
2. **distill** — the programmatic teacher narrates its search (good and deliberately poor
   explorers); every trace is graded and stored (``store.db``).
3. **curate** — filters and selection into an SFT set (``data/imitate.jsonl``).
4. **backbone** — a small Llama built from a config, with a word-level tokenizer for the task
   (numbers are single tokens). One backbone; the seeds vary the fine-tuning.
5. **imitate** — SFT of the backbone on the distilled set.
6. **explore** — the imitated student samples the hard pool, up to K rollouts per problem.
7. **rs-sft** — rejection-sampling SFT *from the backbone* on D0 + the correct explored
   trajectories, with the same number of steps as imitation.
8. **dpo** — thought-only DPO + SFT term from the imitated checkpoint, on pairs from the pool.
   **grpo** (``grpo``) — GRPO from the imitated checkpoint on the hard pool, with the graders as
   reward, until it has spent what explore + RS-SFT of the same seed spent (tokens generated plus
   tokens trained on): the three methods compared at matched cost.
9. **control** — the ReasonSet comparison: the backbone trained on the same problems with
   answer-only solutions (no worked thought), same number of steps.
10. **eval** — greedy accuracy of every model on every held-out set, maj@k of imitate and RS-SFT on
    the hard set, written to ``report.md`` with the table and a plot.

Nothing is tuned by hand per run: sizes come from :class:`DemoConfig` (``--quick`` shrinks them).
"""

from __future__ import annotations

import json
import logging
import math
import random
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonloop.comparison import eval_scores, paired_error, phase_plot, sampling_error
from reasonloop.demo.student import make_student, make_task_tokenizer
from reasonloop.engines.countdown import solve
from reasonloop.errors import ConfigError
from reasonloop.evaluate.report import markdown_table, pyplot
from reasonloop.format import parse
from reasonloop.problems.countdown import DIFFICULTY, make_problems, parse_problem
from reasonloop.progress import Update
from reasonloop.records import Generator, Problem, Trajectory
from reasonloop.verify import grade

log = logging.getLogger(__name__)

SETS = DIFFICULTY
TEACHER = "teacher:countdown-search"


@dataclass(frozen=True, slots=True)
class DemoConfig:
    out: str = "runs/demo"
    seeds: tuple[int, ...] = (0,)
    train_problems: int = 3600
    explore_problems: int = 800
    test_problems: int = 300
    hard_test_problems: int = 1000  # the bucket self-improvement is measured on: a tighter error
    poor_teacher_share: float = 0.3
    max_thought_lines: int = 8
    # student
    number_tokens: int = 999  # integers up to this are single tokens
    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    max_length: int = 256  # tokens of prompt + response (the teacher's longest is ~220)
    # training
    sft_steps: int = 800
    batch_size: int = 16
    learning_rate: float = 3e-3
    dpo_steps: int = 30
    dpo_beta: float = 0.1
    dpo_sft_weight: float = 1.0
    dpo_learning_rate: float = 3e-4
    # exploration
    max_rollouts: int = 8
    rs_per_problem: int = 4  # distinct correct rollouts kept per explored puzzle (longest first)
    rs_repeat: int = 3  # times each kept rollout appears in D_1 (they are few next to D_0)
    explore_batch: int = 4
    explore_temperature: float = 1.0
    max_new_tokens: int = 224
    maj_k: int = 4
    control: bool = True  # also train the answer-only control (the ReasonSet comparison)
    # GRPO from the imitated student on the explore pool, per seed, with the cost (tokens generated
    # + trained on) of that seed's explore + DPO (``grpo_budget: dpo``) or explore + RS-SFT
    # (``rs-sft``) as its budget: the matched-cost comparison of RS-SFT, DPO and GRPO. A list
    # (``[dpo, rs-sft]``) runs GRPO once per budget, each its own model and row. Off by default
    # (it adds ~5 minutes per seed at the DPO budget; generating a token costs far more time than
    # training on one, so RS-SFT's budget takes ~17); recipes/cpu-demo.yaml and
    # `reasonloop demo --grpo` turn it on.
    grpo: bool = False
    grpo_budget: str | tuple[str, ...] = "dpo"
    grpo_group_size: int = 8
    grpo_prompts_per_step: int = 8
    grpo_loss: str = "dr_grpo"
    grpo_learning_rate: float = 1e-4
    grpo_max_steps: int = 2000  # a bound only: the token budget ends the run

    @classmethod
    def quick(cls, out: str = "runs/demo-quick") -> DemoConfig:
        return cls(
            out=out,
            seeds=(0,),
            train_problems=600,
            explore_problems=40,
            test_problems=40,
            hard_test_problems=40,
            sft_steps=150,
            dpo_steps=10,
            grpo_max_steps=20,
            max_rollouts=4,
            maj_k=2,
        )

    def __post_init__(self) -> None:
        budgets = self.grpo_budgets
        for b in budgets:
            if b not in GRPO_AT:
                raise ConfigError(
                    f"must be one of {list(GRPO_AT)} (or a list of them), got {b!r}",
                    field="grpo_budget",
                )
        if not budgets or len(set(budgets)) != len(budgets):
            raise ConfigError(
                f"needs one or more distinct budgets, got {list(budgets)}", field="grpo_budget"
            )

    @property
    def grpo_budgets(self) -> tuple[str, ...]:
        """The budgets GRPO runs at (``grpo_budget`` as a tuple)."""
        b = self.grpo_budget
        return (b,) if isinstance(b, str) else tuple(b)

    @property
    def n_hard_test(self) -> int:
        """Size of the hard held-out set (never smaller than the others)."""
        return max(self.test_problems, self.hard_test_problems)


def task_sets(cfg: DemoConfig) -> dict[str, list[Problem]]:
    """The training pool (``train_problems`` puzzles, a third of each size: the student must see
    5-number puzzles to copy and combine five numbers at all), the hard pool to explore, and the
    held-out test sets. The teacher's bounded search solves about half of each size (on the default
    run 649 / 621 / 658 kept of 3, 4 and 5 numbers)."""
    third = cfg.train_problems // 3
    sets = {
        "train": [
            p
            for n, m in SETS.values()
            for p in make_problems(third, n_numbers=n, max_number=m, seed=0, split="train")
        ],
        "explore": make_problems(
            cfg.explore_problems,
            n_numbers=SETS["hard"][0],
            max_number=SETS["hard"][1],
            seed=0,
            split="explore",
        ),
    }
    for name, (n, m) in SETS.items():
        count = cfg.n_hard_test if name == "hard" else cfg.test_problems
        sets[f"test-{name}"] = make_problems(count, n_numbers=n, max_number=m, seed=0, split="test")
    held_out = {p.problem for name in SETS for p in sets[f"test-{name}"]}
    for pool in ("train", "explore"):  # the test sets stay whole; training never sees them
        sets[pool] = [p for p in sets[pool] if p.problem not in held_out]
    seen = {p.problem for p in sets["train"]}  # exploring a distilled puzzle would prove nothing
    sets["explore"] = [p for p in sets["explore"] if p.problem not in seen]
    return sets


def distill(
    cfg: DemoConfig, problems: list[Problem], on_progress: Update | None = None
) -> list[Trajectory]:
    """The teacher's traces: a good explorer on most problems, a poor one on the rest."""
    out = []
    for i, p in enumerate(problems):
        if on_progress is not None and i % 64 == 0:
            on_progress(i)
        rng = random.Random(p.id)
        quality = "poor" if rng.random() < cfg.poor_teacher_share else "good"
        trace = solve(
            parse_problem(p.problem), quality=quality, rng=rng, max_lines=cfg.max_thought_lines
        )
        text = trace.text
        v = grade(p, text)
        parsed = parse(text)
        out.append(
            Trajectory(
                problem_id=p.id,
                text=text,
                thought=parsed.thought,
                solution=parsed.solution,
                extracted=v.extracted,
                verdict=v,
                tokens=len(text),
                finish_reason="stop",
                generator=Generator(engine=TEACHER, model=f"search-{quality}", role="teacher"),
            )
        )
    return out


def sft_rows(problems: dict[str, Problem], trajs: list[Trajectory]) -> list[dict[str, Any]]:
    return [
        {
            "messages": [
                {"role": "user", "content": problems[t.problem_id].problem},
                {"role": "assistant", "content": t.text},
            ]
        }
        for t in trajs
    ]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    tmp.replace(path)
    return path


def build_backbone(cfg: DemoConfig, texts: list[str], out: Path, seed: int) -> str:
    """The untrained student: a small Llama from a config and the task's tokenizer, saved."""
    tok = make_task_tokenizer(texts, max_number=cfg.number_tokens)
    model = make_student(
        tok,
        hidden_size=cfg.hidden_size,
        layers=cfg.layers,
        heads=cfg.heads,
        max_position_embeddings=cfg.max_length + cfg.max_new_tokens,
        seed=seed,
    )
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def _percent(metrics: dict[str, float]) -> float:
    return 100 * metrics.get("pass@1", metrics.get("acc", 0.0))


def _acc(results: dict, name: str, set_name: str) -> float | None:
    m = results.get(name, {}).get(set_name)
    return None if m is None else _percent(m)


# the self-improvement methods the demo compares, by their model names, and how the report names
# them (GRPO's, one per budget: :func:`methods`)
METHODS = {"rs-sft": "explore + RS-SFT", "dpo": "thought-only DPO"}
GRPO_AT = {"dpo": "DPO", "rs-sft": "RS-SFT"}  # the methods whose cost GRPO's budget can match


def grpo_name(budget: str) -> str:
    """The model (and step) name of GRPO at ``budget``: ``grpo`` at DPO's cost (the first the
    demo ran, so older run directories keep their names), ``grpo-BUDGET`` at another's."""
    return "grpo" if budget == "dpo" else f"grpo-{budget}"


def methods(cfg: DemoConfig) -> dict[str, str]:
    """:data:`METHODS` and, with GRPO on, GRPO at each of ``cfg``'s budgets."""
    grpo = {grpo_name(b): f"GRPO at {GRPO_AT[b]}'s cost" for b in cfg.grpo_budgets}
    return {**METHODS, **(grpo if cfg.grpo else {})}


def write_demo_report(
    root: Path,
    cfg: DemoConfig,
    results: dict,
    curated: dict,
    rows: list,
    seconds: float,
    costs: dict[int, dict[str, int | None]] | None = None,
) -> dict:
    """``report.md``, ``phases.png`` (and with GRPO ``cost.png``) and ``summary.json`` in ``root``.
    ``costs``: per seed, the tokens each method spent beyond imitation (``DemoRun.costs``)."""
    sets = [f"test-{b}" for b in SETS]
    seeds = cfg.seeds

    def mean_sd(prefix: str, s: str) -> tuple[float, float]:
        vals = [
            v for v in (_acc(results, f"{prefix}-s{seed}", s) for seed in seeds) if v is not None
        ]
        if not vals:
            return float("nan"), float("nan")
        return statistics.mean(vals), statistics.pstdev(vals) if len(vals) > 1 else 0.0

    table = []
    backbone = {s: _acc(results, "backbone", s) or 0.0 for s in sets}

    def fmt(v, sd=None):
        return "-" if v is None else (f"{v:.1f}" if sd is None else f"{v:.1f} ± {sd:.1f}")

    table.append(["backbone (untrained)", "-", *(fmt(backbone[s]) for s in sets), "+0.0"])
    for label, prefix in (
        ("imitate (SFT on distilled)", "imitate"),
        ("explore + RS-SFT (from backbone)", "rs-sft"),
    ):
        cells = [mean_sd(prefix, s) for s in sets]
        gain = cells[-1][0] - backbone[sets[-1]]
        data = (
            str(curated["kept"])
            if prefix == "imitate"
            else f"{curated['kept']} + {statistics.mean(r['explored_correct'] for r in rows):.0f}"
            + (f" x{cfg.rs_repeat}" if cfg.rs_repeat > 1 else "")
        )
        shown = [fmt(m, sd if len(seeds) > 1 else None) for m, sd in cells]
        table.append([label, data, *shown, f"{gain:+.1f}"])
    grpo_rows = [
        (f"GRPO (from imitate, at {GRPO_AT[b]}'s cost)", grpo_name(b)) for b in cfg.grpo_budgets
    ]
    for label, prefix in (("thought-only DPO + SFT (from imitate)", "dpo"), *grpo_rows):
        cells = [mean_sd(prefix, s) for s in sets]
        if math.isnan(cells[-1][0]):
            continue
        shown = [fmt(m, sd if len(seeds) > 1 else None) for m, sd in cells]
        table.append([label, "-", *shown, f"{cells[-1][0] - backbone[sets[-1]]:+.1f}"])
    for label, name in (("control: answer-only SFT", "control"),):
        if name in results:
            table.append(
                [
                    label,
                    "-",
                    *(fmt(_acc(results, name, s)) for s in sets),
                    f"{(_acc(results, name, sets[-1]) or 0) - backbone[sets[-1]]:+.1f}",
                ]
            )
    header = [
        "model",
        "train rows",
        *(f"{s.removeprefix('test-')} (%)" for s in sets),
        "gain on hard",
    ]
    maj_rows = []
    for label, name in (("imitate", "imitate-maj"), ("explore + RS-SFT", "rs-sft-maj")):
        if name in results:
            maj_rows.append(
                [
                    label,
                    *(
                        f"{100 * results[name][s].get(f'maj@{cfg.maj_k}', 0):.1f}"
                        if s in results[name]
                        else "-"
                        for s in sets
                    ),
                ]
            )
    bars = []
    for name, seeded, label in (
        ("backbone", False, "backbone"),
        ("imitate", True, "imitate"),
        ("rs-sft", True, "RS-SFT"),
        ("dpo", True, "DPO"),
        *(
            (grpo_name(b), True, "GRPO" if len(cfg.grpo_budgets) == 1 else f"GRPO@{GRPO_AT[b]}")
            for b in cfg.grpo_budgets
        ),
        ("control", False, "control"),
    ):
        cells = [
            mean_sd(name, s) if seeded else ((_acc(results, name, s) or 0.0), 0.0) for s in sets
        ]
        errors = [sd for _, sd in cells] if len(seeds) > 1 else None  # one seed: no spread
        bars.append((label, [m for m, _ in cells], errors))
    phase_plot(root / "phases.png", [s.removeprefix("test-") for s in sets], bars)
    n_hard = cfg.n_hard_test
    imitate_hard = mean_sd("imitate", sets[-1])
    rs_hard = mean_sd("rs-sft", sets[-1])
    others = {m: mean_sd(m, sets[-1]) for m in methods(cfg) if m != "rs-sft"}
    others = {m: v for m, v in others.items() if not math.isnan(v[0])}
    lines = [
        "# reasonloop CPU demo — Countdown",
        "",
        f"Seeds {list(seeds)}; {cfg.sft_steps} SFT steps per model; held-out sets of {cfg.test_problems} "
        f"puzzles (easy = 3 numbers, medium = 4) and {n_hard} (hard = 5). Greedy decoding. "
        f"RS-SFT trains on D_0 + each kept explored rollout {cfg.rs_repeat} times. "
        f"Total time {seconds / 60:.1f} min.",
        "",
        markdown_table(header, table),
        "",
        f"maj@{cfg.maj_k} (sampled, T=0.8; hard: its first {cfg.test_problems} puzzles):",
        "",
        markdown_table(["model", *(s.removeprefix("test-") for s in sets)], maj_rows)
        if maj_rows
        else "(not run)",
        "",
        "![phases](phases.png)",
        "",
        "## What the numbers say",
        "",
        _verdicts(
            backbone, imitate_hard, rs_hard, results, sets, n_hard, len(seeds), others, methods(cfg)
        ),
        *matched_cost(root, cfg, results, costs or {}),
    ]
    (root / "report.md").write_text("\n".join(lines) + "\n")
    final = {
        "backbone": backbone[sets[-1]],
        "imitate": imitate_hard[0],
        "improved": rs_hard[0],
        **{m: v[0] for m, v in others.items()},
        "minutes": seconds / 60,
    }
    (root / "summary.json").write_text(json.dumps(final, indent=2) + "\n")
    return {**final, "table": {"header": header, "rows": table}}


def _verdicts(
    backbone,
    imitate,
    rs,
    results,
    sets,
    n: int,
    seeds: int,
    others: dict | None = None,
    labels: dict[str, str] | None = None,
) -> str:
    """The report's plain statements. ``imitate`` and ``rs`` are (mean, sd over seeds) on the hard
    set. With one seed no seed spread was measured, so the gain is weighed against the sampling
    error alone and the report says so; with two or more, against the larger of the two."""
    out = []
    hard = sets[-1]
    out.append(
        f"- Imitation vs backbone on hard: {imitate[0]:.1f}% vs {backbone[hard]:.1f}% "
        + (
            "(imitation helps)."
            if imitate[0] > backbone[hard] + 5
            else "(imitation did not help at this scale)."
        )
    )
    diff = rs[0] - imitate[0]
    noise = sampling_error(imitate[0], rs[0], n)
    error = f"sampling error of the difference on {n} puzzles ±{noise:.1f} (95%)"
    if seeds < 2:
        out.append(
            f"- Explore + RS-SFT vs imitation on hard: {diff:+.1f} points; {error}; seed spread "
            "not measured (one seed: run with --seeds 3 to measure it). "
            + (
                "Larger than the sampling error: self-improvement helps on this seed."
                if diff > noise
                else "Not larger than the sampling error: no measurable gain from "
                "self-improvement here."
            )
        )
    else:
        spread = max(imitate[1], rs[1])
        out.append(
            f"- Explore + RS-SFT vs imitation on hard: {diff:+.1f} points (mean of {seeds} "
            f"seeds); seed spread (sd over seeds) {spread:.1f}, {error}. "
            + (
                "Larger than both: self-improvement helps."
                if diff > max(noise, spread)
                else "Not larger than both: no measurable gain from self-improvement here."
            )
        )
    if "control" in results:
        c = _acc(results, "control", hard) or 0.0
        out.append(
            f"- Worked thoughts vs answer-only training on hard: {imitate[0]:.1f}% vs {c:.1f}%."
        )
    for method, (mean, _) in (others or {}).items():
        what = (labels or METHODS).get(method, method)
        what = what[0].upper() + what[1:]
        of = f" (mean of {seeds} seeds)" if seeds > 1 else ""
        out.append(
            f"- {what} from the imitated model on hard: {mean:.1f}%{of} (imitate {imitate[0]:.1f}%)."
        )
    return "\n".join(out)


def matched_cost(root: Path, cfg: DemoConfig, results: dict, costs: dict) -> list[str]:
    """The report's matched-cost section and ``cost.png``: per seed and method, the tokens spent
    beyond imitation (generated + trained on) and the hard-set accuracy against the same seed's
    imitated model, with the sampling error of the difference. Empty without GRPO results (the
    comparison is what GRPO's budget is matched for)."""
    hard, n = f"test-{list(SETS)[-1]}", cfg.n_hard_test
    labels = methods(cfg)
    grpo = [grpo_name(b) for b in cfg.grpo_budgets]
    matched = " / ".join(METHODS[b] for b in cfg.grpo_budgets)
    seeds = [
        s for s in cfg.seeds if any(_acc(results, f"{g}-s{s}", hard) is not None for g in grpo)
    ]
    if not cfg.grpo or not seeds:
        return []
    table, points = [], []
    beats: dict[str, list[bool]] = {m: [] for m in labels}
    beats_paired: dict[str, list[bool]] = {m: [] for m in labels}

    def scores(model: str) -> dict[str, float]:
        return eval_scores(root / "evals" / f"{model}-k1" / hard)

    for seed in seeds:
        base = _acc(results, f"imitate-s{seed}", hard)
        base_scores = scores(f"imitate-s{seed}")
        for method, label in labels.items():
            acc, cost = _acc(results, f"{method}-s{seed}", hard), costs.get(seed, {}).get(method)
            if acc is None or base is None:
                continue
            diff, err = acc - base, sampling_error(base, acc, n)
            paired = paired_error(base_scores, scores(f"{method}-s{seed}"))
            beats[method].append(diff > err)
            if paired is not None:
                beats_paired[method].append(diff > paired)
            points.append((method, seed, cost, acc))
            table.append(
                [
                    label,
                    str(seed),
                    "-" if cost is None else f"{cost / 1e6:.2f}",
                    f"{acc:.1f}",
                    f"{diff:+.1f} ± {err:.1f}",
                    "-" if paired is None else f"± {paired:.1f}",
                ]
            )
    lines = [
        "",
        "## Self-improvement at matched cost",
        "",
        f"Cost: tokens generated plus tokens trained on beyond imitation, in millions (explore's "
        f"rollouts count for RS-SFT and for DPO; GRPO stops at the step where it has spent what "
        f"{matched} of its seed spent). Hard set: {n} held-out puzzles; the error is the "
        "95% sampling error of the difference with the same seed's imitated model, treating the "
        "two evaluations as independent samples (conservative); `paired` is the error of the "
        "same difference taken puzzle by puzzle (both models answered the same puzzles), "
        "smaller where the two agree on most puzzles.",
        "",
        markdown_table(
            ["method", "seed", "cost (M tokens)", "hard (%)", "vs imitate (points)", "paired"],
            table,
        ),
        "",
    ]
    for method, label in labels.items():
        won, won_paired = beats[method], beats_paired[method]
        if won:
            lines.append(
                f"- {label} beats imitation on hard by more than the sampling error in "
                f"{sum(won)} of {len(won)} seeds"
                + (
                    f"; by more than the paired error in {sum(won_paired)} of {len(won_paired)}."
                    if won_paired
                    else "."
                )
            )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for method, label in labels.items():
        xs = [c / 1e6 for m, _, c, _ in points if m == method and c is not None]
        ys = [a for m, _, c, a in points if m == method and c is not None]
        ax.scatter(xs, ys, label=label, s=24)
    base = [_acc(results, f"imitate-s{s}", hard) or 0.0 for s in seeds]
    ax.scatter([0.0] * len(base), base, label="imitate", s=24, marker="x", color="black")
    ax.set_xlabel("tokens generated + trained on beyond imitation (millions)")
    ax.set_ylabel("hard held-out accuracy, greedy (%)")
    ax.set_title("Self-improvement methods at matched cost (one point per seed)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(root / "cost.png", dpi=110)
    plt.close(fig)
    return [*lines, "", "![cost](cost.png)"]
