"""Turn graded samples into an :class:`~reasonloop.records.EvalResult`: accuracy, pass@k, maj@k,
and the same broken down by level, subject and domain where the benchmark has them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from reasonloop.evaluate.metrics import ks_for, maj_at_k, mean_accuracy, pass_at_k
from reasonloop.records import EvalResult, Problem
from reasonloop.verify.answers import Equal


@dataclass(frozen=True, slots=True)
class Outcome:
    """One graded sample of one problem."""

    problem_id: str
    extracted: str | None
    correct: bool
    tokens: int


def problem_metrics(
    outcomes: Sequence[Outcome], ks: Iterable[int], *, equal: Equal | None = None
) -> dict[str, float]:
    """Per-problem metrics: ``acc`` (mean over samples), ``pass@k`` and ``maj@k`` for each k."""
    correct = [o.correct for o in outcomes]
    answers = [o.extracted for o in outcomes]
    n, c = len(correct), sum(correct)
    out = {"acc": mean_accuracy(correct)}
    for k in ks:
        if k <= n:
            out[f"pass@{k}"] = pass_at_k(n, c, k)
            if k > 1:
                out[f"maj@{k}"] = maj_at_k(answers, correct, k, equal=equal)
    return out


def _mean_dicts(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    keys = sorted({k for r in rows for k in r}, key=_metric_order)
    return {k: sum(r.get(k, 0.0) for r in rows) / len(rows) for k in keys} if rows else {}


def _metric_order(name: str) -> tuple[int, int, str]:
    head, _, k = name.partition("@")
    rank = {"acc": 0, "pass": 1, "maj": 2}.get(head, 3)
    return (rank, int(k) if k.isdigit() else 0, name)


def summarize(
    benchmark: str,
    model: str,
    strategy: str,
    problems: Sequence[Problem],
    outcomes: Mapping[str, Sequence[Outcome]],
    *,
    equal: Equal | None = None,
) -> EvalResult:
    """Aggregate over problems that have at least one outcome. Breakdown keys look like
    ``level=3``, ``subject=Algebra``, ``domain=math``; each maps to the same metric names."""
    n_samples = max((len(v) for v in outcomes.values()), default=0)
    ks = ks_for(n_samples) if n_samples else [1]
    per_problem: dict[str, dict[str, float]] = {}
    tokens: list[int] = []
    for p in problems:
        outs = outcomes.get(p.id)
        if not outs:
            continue
        per_problem[p.id] = problem_metrics(outs, ks, equal=equal)
        tokens += [o.tokens for o in outs]
    groups: dict[str, list[dict[str, float]]] = defaultdict(list)
    for p in problems:
        if p.id not in per_problem:
            continue
        for key, value in (("level", p.level), ("subject", p.subject), ("domain", p.domain)):
            if value:
                groups[f"{key}={value}"].append(per_problem[p.id])
    breakdown = {
        g: {**_mean_dicts(rows), "n": float(len(rows))} for g, rows in sorted(groups.items())
    }
    # a breakdown with a single group (e.g. every problem is math) says nothing: drop it
    for key in ("level", "subject", "domain"):
        names = [g for g in breakdown if g.startswith(key + "=")]
        if len(names) == 1:
            del breakdown[names[0]]
    return EvalResult(
        benchmark=benchmark,
        model=model,
        strategy=strategy,
        n_problems=len(per_problem),
        metrics=_mean_dicts(list(per_problem.values())),
        breakdown=breakdown,
        mean_tokens=sum(tokens) / len(tokens) if tokens else None,
        scores={pid: m["acc"] for pid, m in per_problem.items()},
    )
