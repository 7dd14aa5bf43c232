r"""Benchmark the math grader against plain Math-Verify on answers the tests never saw.

Usage::

    python benchmarks/grade_bench.py [--data DIR] [--workers N] [--repeats R] [--seed S]

Two held-out workloads, neither of them in tests/verify:

1. ``benchmarks/data/grade_heldout.jsonl``: real-output-style rows written for this benchmark
   (answer sets, several boxes, labelled golds, bare final expressions, bold values, units,
   intervals, words, hedges), each with the verdict a careful human grader gives.
2. MATH-500, when ``DIR/math500/test.jsonl`` exists (nothing of it is committed): for every
   problem, solution parts as models write them (boxed, "**Final Answer**", Minerva's "The final
   answer is", a bare last ``$$...$$``) around the gold answer in other surface forms (never the
   gold string itself), around a wrong value, around the answer of another problem, and, for
   every fifth problem, around a hedged answer. Generated at run time with ``--seed``.

Both graders get the same text: the gold answer and the solution part. Math-Verify as a
typical user calls it: ``verify(parse("\\boxed{" + gold + "}"), parse(solution))``, defaults.
Ours: ``MathGrader.grade_many([(gold, solution), ...])``. Agreement is the share of rows whose
verdict is the expected one.

Timing, on the MATH-500 workload (on the table without data): Math-Verify in this process;
reasonloop with 1 worker (its fast path in this process, what that cannot settle in one sympy
worker it waits for: one CPU at a time); reasonloop with ``--workers`` workers. One warm-up run
each, then ``--repeats`` rounds with the three interleaved; medians; caches are cleared before
every timed run and each reasonloop run gets a fresh grader (workers started before the clock).

Code, when ``DIR/humaneval/test.jsonl`` exists and the sandbox runs here: HumanEval's canonical
solutions graded behind bubblewrap and with no boundary (``benchmarks/code_grade_bench.py``): the
cost of safety as a ratio, and whether every solution passes both ways.

The last line is ``accuracy_ours=A accuracy_math_verify=B speedup=S``: A and B are agreement over
every row of both workloads; S is rows/s of reasonloop with its workers over Math-Verify's.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from reasonloop.verify.math import MathGrader, MathGraderConfig  # noqa: E402
from reasonloop.verify.math import exact as math_exact  # noqa: E402

TABLE = ROOT / "benchmarks" / "data" / "grade_heldout.jsonl"


@dataclass(frozen=True, slots=True)
class Row:
    shape: str  # what kind of answer or mistake the row holds
    gold: str
    solution: str
    correct: bool  # the expected verdict


def _strip_dollars(gold: str) -> str:
    gold = gold.strip()
    while len(gold) > 1 and gold.startswith("$") and gold.endswith("$"):
        gold = gold[1:-1].strip()
    return gold


def table_rows(path: Path = TABLE) -> list[Row]:
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            d = json.loads(line)
            try:
                rows.append(Row(d["shape"], _strip_dollars(d["gold"]), d["response"], d["correct"]))
            except KeyError as exc:
                raise SystemExit(f"{path}:{n}: field {exc} missing") from None
    return rows


# --- the MATH-500 workload: surface forms, wrong values, other problems' answers, hedges ------

_INT = re.compile(r"-?\d+")
_FRAC = re.compile(r"(-?)\\[dt]?frac\s*\{(\d+)\}\s*\{(\d+)\}|(-?)\\[dt]?frac\s*(\d)\s*(\d)")
_DEC = re.compile(r"-?\d*\.\d+")
_UNITS = ("units", "cm", "ways", "people", "dollars", "inches")


def _fraction(gold: str) -> Fraction | None:
    """The value of a plain integer, decimal or simple fraction answer, else None."""
    s = gold.replace(" ", "")
    if _INT.fullmatch(s) or _DEC.fullmatch(s):
        return Fraction(s)
    m = _FRAC.fullmatch(s)
    if m:
        sign, a, b = (m.group(1), m.group(2), m.group(3)) if m.group(2) else m.group(4, 5, 6)
        if int(b):
            return Fraction(int(a), int(b)) * (-1 if sign else 1)
    return None


def _decimal(q: Fraction) -> str | None:
    """``q`` as a terminating decimal of at most 6 places, else None."""
    for places in range(7):
        scaled = q * 10**places
        if scaled.denominator == 1:
            digits = str(abs(scaled.numerator)).rjust(places + 1, "0")
            body = digits if not places else f"{digits[:-places]}.{digits[-places:]}"
            return ("-" if q < 0 else "") + body
    return None


def other_forms(gold: str) -> list[str]:
    """The gold value in other spellings that models use, none of them the gold string itself.
    Each rule is an identity (same value by construction); rules that do not apply are skipped."""
    g = gold.strip()
    out: list[str] = []
    q = _fraction(g)
    if q is not None and _INT.fullmatch(g.replace(" ", "")):
        n = int(q)
        out += [f"{n} \\text{{ {_UNITS[abs(n) % len(_UNITS)]}}}", f"x = {n}"]
        if abs(n) >= 1000:
            out.append(f"{n:,}")
    elif q is not None:
        dec = _decimal(q)
        if dec is not None and dec != g:
            out.append(dec)
        if q.denominator != 1:
            out.append(f"{q.numerator}/{q.denominator}")
            out.append(f"\\dfrac{{{q.numerator}}}{{{q.denominator}}}")
            if abs(q) > 1:
                whole = int(abs(q))
                rest = abs(q) - whole
                sign = "-" if q < 0 else ""
                out.append(f"{sign}{whole}\\frac{{{rest.numerator}}}{{{rest.denominator}}}")
        else:
            out.append(str(int(q)))
    if "^\\circ" in g:
        out += [g.replace("^\\circ", ""), g.replace("^\\circ", "^{\\circ}")]
    if g.startswith("\\$"):
        out.append(g[2:])
    m = re.fullmatch(r"\\text\{\s*([A-Za-z]+)\s*\}", g)
    if m:
        out += [m.group(1), f"\\textbf{{{m.group(1)}}}"]
    m = re.fullmatch(r"\\text\{\(([A-J])\)\}", g)
    if m:
        out += [f"({m.group(1)})", m.group(1)]
    m = re.fullmatch(r"(\d*)\s*\\sqrt\{?(\d+)\}?", g)
    if m:
        k, r = int(m.group(1) or 1), int(m.group(2))
        out.append(f"\\sqrt{{{k * k * r}}}")
        if r < 10:  # \sqrt 7 is \sqrt{7}; \sqrt 13 would be \sqrt{1}3
            out.append(f"{k if k > 1 else ''}\\sqrt {r}")
    m = re.fullmatch(r"(\d+)_\{?(\d+)\}?", g)
    if m:
        out += [f"{m.group(1)}_{{{m.group(2)}}}" if "{" not in g else f"{m.group(1)}_{m.group(2)}"]
    if "pmatrix" in g:
        out.append(g.replace("pmatrix", "bmatrix"))
    if "\\left" in g:
        out.append(g.replace("\\left", "").replace("\\right", ""))
    if "\\dfrac" in g or "\\tfrac" in g:
        out.append(g.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac"))
    elif "\\frac" in g and q is None:
        out.append(g.replace("\\frac", "\\dfrac"))
    bare_list = re.fullmatch(r"[^(){}\[\]]+(?:,[^(){}\[\]]+)+", g)
    if bare_list and not re.search(r",\s*(?:\\!\s*)?\d{3}(?!\d)", g):  # not 58,500 or 10,\!080
        out.append(", ".join(p.strip() for p in reversed(g.split(","))))
    plain = re.sub(r",\s*(?:\\!\s*)?(?=\d{3}(?!\d))", "", g)
    if plain != g and re.fullmatch(r"(?:\\\$)?\d+", plain):  # 10,\!080 -> 10080
        out.append(plain)
    if not out:  # spacing: what is left when nothing else applies
        spaced = re.sub(r"\s*([=+])\s*", r" \1 ", g).strip()
        out.append(spaced if spaced != g else re.sub(r"\s+", "", g))
    seen = []
    for form in out:
        if form != g and form not in seen:
            seen.append(form)
    return seen


def wrong_form(gold: str) -> str | None:
    """The gold with a different value: its first digit moved by one; without digits, the next
    choice letter or another word. None when neither applies (the row is left out)."""
    g = gold.strip()
    m = re.search(r"\d", g)
    if m:
        d = int(m.group(0))
        return g[: m.start()] + str(d + 1 if d < 9 else d - 1) + g[m.end() :]
    m = re.fullmatch(r"\\text\{\(([A-I])\)\}", g)
    if m:
        return f"\\text{{({chr(ord(m.group(1)) + 1)})}}"
    m = re.fullmatch(r"\\text\{\s*([A-Za-z]+)\s*\}", g)
    if m:
        swap = {"even": "odd", "odd": "even", "east": "west"}
        return f"\\text{{{swap.get(m.group(1), m.group(1) + 'a')}}}"
    return None


def _key(gold: str) -> str:
    """A spelling-free key to avoid using another problem's answer that equals this one."""
    q = _fraction(
        re.sub(r"\\\$|\^\\circ|\\!|\\left|\\right|\s", "", gold).replace("\\dfrac", "\\frac")
    )
    if q is not None:
        return str(q)
    return re.sub(r"\\left|\\right|\s", "", gold).replace("\\dfrac", "\\frac")


_LEADS = (
    "We set up the relation from the statement and simplify step by step.",
    "Working through the cases one at a time and adding them up settles the count.",
    "Substituting back and collecting like terms leaves one value.",
    "The boundary cases check out as well.",
    "The formula derived above applies directly.",
)
_TEMPLATES = (
    "{lead} Therefore, the answer is $\\boxed{{{a}}}$.",
    "{lead}\n\n**Final Answer**\n\\[\n\\boxed{{{a}}}\n\\]",
    "{lead} The final answer is ${a}$. I hope it is correct.",
    "{lead} This gives\n$$\n{a}\n$$",
    "{lead} So the result is $\\boxed{{{a}}}$, as required.",
)


def math500_rows(path: Path, seed: int) -> list[Row]:
    golds = [json.loads(line)["answer"] for line in path.read_text().splitlines() if line.strip()]
    rng = random.Random(seed)

    def solution(answer: str) -> str:
        return rng.choice(_TEMPLATES).format(lead=rng.choice(_LEADS), a=answer)

    rows: list[Row] = []
    for i, gold in enumerate(golds):
        forms = other_forms(gold)
        for form in rng.sample(forms, min(2, len(forms))):
            rows.append(Row("other form", gold, solution(form), True))
        wrong = wrong_form(gold)
        if wrong is not None:
            rows.append(Row("wrong value", gold, solution(wrong), False))
        for _ in range(20):
            other = golds[(i + rng.randrange(1, len(golds))) % len(golds)]
            if _key(other) != _key(gold):
                rows.append(Row("other problem", gold, solution(other), False))
                break
        if i % 5 == 0 and wrong is not None:
            hedges = [f"{gold} \\text{{ or }} {wrong}", f"\\approx {gold}"]
            if "\\" not in wrong:  # a plain value can sit in a \text{} aside
                hedges += [
                    f"{gold} \\text{{ (or {wrong})}}",
                    f"{gold} \\quad \\text{{(or {wrong})}}",
                ]
            hedge = rng.choice(hedges)
            rows.append(Row("hedged", gold, solution(hedge), False))
    return rows


# --- the graders ---------------------------------------------------------------------------


def math_verify_grade(rows: list[Row]) -> tuple[list[bool], float]:
    """Math-Verify, as a typical user calls it, in this process with its default timeouts:
    the verdicts and the seconds they took."""
    from math_verify import parse, verify

    out = []
    start = time.perf_counter()
    for r in rows:
        try:
            out.append(bool(verify(parse("\\boxed{" + r.gold + "}"), parse(r.solution))))
        except Exception:  # a crash is a "not correct" verdict, as in a training loop
            out.append(False)
    return out, time.perf_counter() - start


SENT_TO_WORKERS: dict[int, int] = {}  # workers -> pairs the last run sent to sympy workers


def ours(workers: int) -> Callable[[list[Row]], tuple[list[bool], float]]:
    """reasonloop's grader with ``workers`` sympy workers, started before the clock."""

    def grade(rows: list[Row]) -> tuple[list[bool], float]:
        with MathGrader(MathGraderConfig(workers=workers)) as grader:
            grader.warm()
            start = time.perf_counter()
            verdicts = grader.grade_many([(r.gold, r.solution) for r in rows])
            seconds = time.perf_counter() - start
            SENT_TO_WORKERS[workers] = grader.stats["worker"]
        return [v.correct for v in verdicts], seconds

    return grade


Grader = Callable[[list[Row]], tuple[list[bool], float]]


def run(grade: Grader, rows: list[Row]) -> tuple[list[bool], float]:
    """One graded run from cold caches (ours and sympy's)."""
    import sympy

    math_exact._evaluate.cache_clear()
    sympy.core.cache.clear_cache()
    return grade(rows)


def agreement(rows: list[Row], got: list[bool]) -> tuple[float, int, int]:
    """(share agreeing with the expected verdicts, false positives, false negatives)."""
    ok = sum(g == r.correct for g, r in zip(got, rows, strict=True))
    fp = sum(g and not r.correct for g, r in zip(got, rows, strict=True))
    fn = sum(r.correct and not g for g, r in zip(got, rows, strict=True))
    return ok / len(rows), fp, fn


def print_agreement(title: str, rows: list[Row], verdicts: dict[str, list[bool]]) -> None:
    print(f"\n{title}: {len(rows)} rows ({sum(r.correct for r in rows)} expected correct)")
    print(f"{'':26}{'agreement':>11}{'false pos':>11}{'false neg':>11}")
    for name, got in verdicts.items():
        acc, fp, fn = agreement(rows, got)
        print(f"{name:26}{acc:>11.3f}{fp:>11}{fn:>11}")
    shapes = sorted({r.shape for r in rows})
    print(f"  by shape{'':16}" + "".join(f"{name:>24}" for name in verdicts))
    for shape in shapes:
        idx = [i for i, r in enumerate(rows) if r.shape == shape]
        cells = "".join(
            f"{sum(got[i] == rows[i].correct for i in idx):>17}/{len(idx):<6}"
            for got in verdicts.values()
        )
        print(f"  {shape:24}{cells}")


def code_rows(args: argparse.Namespace) -> None:
    """HumanEval's canonical solutions graded behind the sandbox and without it: the cost of
    safety (``benchmarks/code_grade_bench.py`` measures it; this prints its row)."""
    from code_grade_bench import code_row

    from reasonloop.verify.sandbox import bwrap_problem

    if not (args.data / "humaneval" / "test.jsonl").is_file():
        print("\ncode: skipped (no humaneval/test.jsonl in the data directory)")
        return
    problem = bwrap_problem()
    if problem is not None:
        print(f"\ncode: skipped (no sandbox here: {problem})")
        return
    row = code_row(args.data, args.workers, args.repeats)
    print(
        f"\ncode: HumanEval canonical solutions, {row['workers']} at a time, best of {args.repeats}"
    )
    print(f"{'':26}{'seconds':>11}{'rows/s':>11}{'passed':>16}")
    for b, label in (("bwrap", "behind bubblewrap"), ("none", "no boundary")):
        r = row[b]
        print(
            f"{label:26}{r['seconds']:>11.2f}{r['per_s']:>11.1f}{r['passed']:>12}/{row['solutions']}"
        )
    print(f"  the boundary costs x{row['cost_ratio']:.2f}; all pass both ways: {row['all_pass']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("REASONLOOP_DATA") or ROOT.parent / "shared" / "data"),
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # Math-Verify logs every timeout it hits

    table = table_rows()
    path = args.data / "math500" / "test.jsonl"
    generated = math500_rows(path, args.seed) if path.is_file() else []
    timed = generated or table
    graders: dict[str, Grader] = {
        "math-verify": math_verify_grade,
        "reasonloop, 1 worker": ours(1),
        f"reasonloop, {args.workers} workers": ours(args.workers),
    }
    for grade in graders.values():  # warm-up: imports, parser caches, first sympy calls
        run(grade, timed[:50])
    seconds: dict[str, list[float]] = {name: [] for name in graders}
    on_timed: dict[str, list[bool]] = {}
    for _ in range(args.repeats):
        for name, grade in graders.items():  # interleaved, so that load drifts hit all three
            on_timed[name], took = run(grade, timed)
            seconds[name].append(took)
    sent = dict(SENT_TO_WORKERS)
    on_table = {
        name: on_timed[name] if timed is table else run(grade, table)[0]
        for name, grade in graders.items()
    }
    SENT_TO_WORKERS.update(sent)

    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    print_agreement(f"(1) real-output-style table {TABLE.relative_to(ROOT)}", table, on_table)
    if generated:
        print_agreement(
            f"(2) MATH-500 solution parts generated from {path} (seed {args.seed})",
            generated,
            on_timed,
        )
    else:
        print(f"\n(2) MATH-500 workload skipped: {path} not found (timing on the table instead)")
    print(
        f"\ntiming on {len(timed)} rows: median of {args.repeats} interleaved runs after a warm-up"
    )
    print(f"{'':26}{'seconds':>11}{'rows/s':>11}{'min..max s':>16}")
    rate = {}
    for name, times in seconds.items():
        med = statistics.median(times)
        rate[name] = len(timed) / med
        print(f"{name:26}{med:>11.2f}{rate[name]:>11.0f}{min(times):>8.2f}..{max(times):.2f}")
    print(
        f"  reasonloop settled {len(timed) - SENT_TO_WORKERS[1]} of the {len(timed)} rows "
        f"in-process and sent {SENT_TO_WORKERS[1]} pairs to sympy workers"
    )
    code_rows(args)

    both = table + generated
    names = list(graders)
    mv_all = on_table[names[0]] + (on_timed[names[0]] if generated else [])
    ours_all = on_table[names[2]] + (on_timed[names[2]] if generated else [])
    acc_ours, _, _ = agreement(both, ours_all)
    acc_mv, _, _ = agreement(both, mv_all)
    speedup = rate[names[2]] / rate[names[0]]
    print(f"accuracy_ours={acc_ours:.3f} accuracy_math_verify={acc_mv:.3f} speedup={speedup:.1f}")


if __name__ == "__main__":
    main()
