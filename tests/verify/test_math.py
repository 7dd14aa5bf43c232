r"""Math grading: verdict tables, MATH-500 self-consistency, the time-limited worker pool.

The tables live in ``data_math_cases.py``; benchmarks/grade_bench.py measures on rows none of
which are here (tests/benchmarks/test_grade_bench.py checks that).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reasonloop.errors import ConfigError
from reasonloop.records import Verdict
from reasonloop.verify.extract import clean_answer
from reasonloop.verify.math import (
    MathGrader,
    MathGraderConfig,
    answers_equal,
    compare_answers,
    grade_math,
    normalize_answer,
)
from reasonloop.verify.pool import CallResult, WorkerPool


def _load_cases():  # pytest runs with --import-mode=importlib: load the table module by path
    spec = importlib.util.spec_from_file_location(
        "data_math_cases", Path(__file__).with_name("data_math_cases.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_cases = _load_cases()
EQUIV, RESPONSES, perturb = _cases.EQUIV, _cases.RESPONSES, _cases.perturb


@pytest.fixture(scope="module")
def grader():
    with MathGrader(MathGraderConfig(timeout=3.0, workers=2)) as g:
        yield g


# --- verdict tables --------------------------------------------------------------------------


def test_tables_are_big_and_balanced() -> None:
    assert len(EQUIV) + len(RESPONSES) >= 300
    assert sum(e for _, _, e in EQUIV) > 100 and sum(not e for _, _, e in EQUIV) > 80
    assert len({(g, p) for g, p, _ in EQUIV}) == len(EQUIV)  # no duplicate rows


@pytest.mark.parametrize(("gold", "pred", "expected"), EQUIV)
def test_equivalence_table(gold: str, pred: str, expected: bool) -> None:
    assert answers_equal(gold, pred) is expected


@pytest.mark.slow
def test_equivalence_table_through_boxed_responses(grader: MathGrader) -> None:
    """The same verdicts when each prediction arrives as a response ending in a box."""
    verdicts = grader.grade_many([(g, f"So the answer is $\\boxed{{{p}}}$.") for g, p, _ in EQUIV])
    assert [v.correct for v in verdicts] == [e for _, _, e in EQUIV]


@pytest.mark.parametrize(("gold", "response", "reason"), RESPONSES)
def test_response_table(gold: str, response: str, reason: str) -> None:
    verdict = grade_math(gold, response)
    assert verdict.reason == reason
    assert verdict.correct is (reason == "correct")
    assert (verdict.extracted is None) is (reason in ("no_answer", "thought_unfinished"))


def test_verdict_carries_what_the_model_wrote() -> None:
    v = grade_math(r"\frac{1}{2}", r"<think>ok</think> so $\boxed{0.5}$.")
    assert v == Verdict(True, "0.5", "correct")
    v = grade_math("1000", "#### $1,000")
    assert v == Verdict(True, "1,000", "correct")


NORMALIZE = [
    (r"\$32,\!348", "32348"),
    (r"10,\!080", "10080"),
    ("58,500", "58500"),
    (r"90^\circ", "90"),
    (r"864 \mbox{ inches}^2", "864"),
    (r"\frac{270}7\text{ degrees}", r"\frac{270}{7}"),
    (r"\frac 59", r"\frac{5}{9}"),
    (r"11\sqrt2", r"11\sqrt{2}"),
    (r"\left( 3, \frac{\pi}{2} \right)", r"( 3, \frac{\pi}{2} )"),
    (r"\dfrac{1}{6}", r"\frac{1}{6}"),
    (r"x \in [-2,7]", "[-2,7]"),
    ("4210_{5}", "4210_5"),
    (r"7\text{ hours}.", "7"),
    ("1000 dollars", "1000"),
    (r"\boxed{5}", "5"),
    ("1,2", "1,2"),  # not a thousands separator
    ("5!", "5!"),  # a factorial, not punctuation
]


@pytest.mark.parametrize(("raw", "expected"), NORMALIZE)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


# --- MATH-500 ----------------------------------------------------------------------------------


def assert_golds_grade_as_themselves(rows: list[dict]) -> None:
    """Each gold answer boxed, and the reference solution, grade correct; a perturbed copy of each
    gold grades wrong; all of it decided in-process (no sympy worker)."""
    with MathGrader(MathGraderConfig(workers=1)) as g:
        golds = [row["answer"] for row in rows]
        self_verdicts = g.grade_many([(a, f"The answer is $\\boxed{{{a}}}$.") for a in golds])
        assert [v.reason for v in self_verdicts] == ["correct"] * len(rows)
        assert [v.extracted for v in self_verdicts] == [clean_answer(a) for a in golds]
        # The reference solution text itself (its last box is the answer).
        sol_verdicts = g.grade_many([(row["answer"], row["solution"]) for row in rows])
        assert sum(v.correct for v in sol_verdicts) == len(rows)
        perturbed = [perturb(a) for a in golds]
        assert all(p != a for p, a in zip(perturbed, golds, strict=True))
        bad = g.grade_many([(a, f"\\boxed{{{p}}}") for a, p in zip(golds, perturbed, strict=True)])
        assert [v for v in bad if v.correct] == []
        assert {v.reason for v in bad} == {"wrong"}
        assert g.stats["worker"] == 0


def test_math500_gold_against_itself_and_a_perturbed_copy(real_data: Path) -> None:
    path = real_data / "math500" / "test.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert len(rows) == 500
    assert_golds_grade_as_themselves(rows)


def test_fixture_math500_gold_against_itself_and_a_perturbed_copy(
    bench_rows: dict[str, list[dict]],
) -> None:
    """The same on the miniature MATH-500 (tests/benchdata.py): an interval, a fraction, degrees,
    a matrix, a base subscript, a radical, a \\text answer, a complex number."""
    assert_golds_grade_as_themselves(bench_rows["math500"])
    assert_golds_grade_as_themselves(bench_rows["math-train"])


def test_fast_path_does_not_import_sympy() -> None:
    code = (
        "import sys\n"
        "from reasonloop.verify.math import answers_equal, grade_math\n"
        "assert answers_equal('\\\\frac12', '0.5')\n"
        "assert not answers_equal('1/3', '0.333')\n"
        "assert grade_math('10,\\\\!080', '\\\\boxed{10080}').correct\n"
        "assert answers_equal('\\\\{1\\\\pm\\\\sqrt{5},-2\\\\}', '-2, 1+\\\\sqrt5, 1-\\\\sqrt5')\n"
        "print('sympy' in sys.modules, 'math_verify' in sys.modules)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_a_long_word_that_does_not_end_the_answer_normalizes_at_once() -> None:
    # Model output as GSM8K samples end: words that do not reach the end. The unit stripper once
    # used a regular expression that tried every way to split such words (2**39 ways here), and
    # `reasonloop generate` spent half its time there. It runs in a child process with a time
    # limit so that a relapse fails instead of hanging the suite.
    answer = "they had 7 " + "x" * 40 + "!"
    code = (
        "from reasonloop.verify.math import normalize_answer\n"
        f"print(normalize_answer({answer!r}))\n"
        f"print(normalize_answer({'had 12 square ' + 'meters' * 5 + ' meters'!r}))\n"
        "print(normalize_answer('the answer is 12 square meters'))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "they had 7 " + "x" * 40 + "!",
        "had 12 square " + "meters" * 5 + " meters",  # not all unit words: kept
        "the answer is 12",  # all unit words after the number: dropped
    ]


def test_a_long_list_of_numbers_grades_in_under_a_second() -> None:
    # An unordered gold of 1,500 numbers once took 25 s in the main process (every pair compared,
    # no time limit). Items with an exact value are now matched by hashing. In a child process, so
    # that a relapse fails on its time limit instead of hanging the suite.
    code = (
        "import time\n"
        "from reasonloop.verify.math import MathGrader, MathGraderConfig\n"
        "def spell(k):\n"
        "    return (str(k), f'\\\\frac{{{2 * k}}}{{2}}', f'{k}.0')[k % 3]\n"
        "with MathGrader(MathGraderConfig(workers=1)) as g:\n"
        "    for n in (1500, 3000):\n"
        "        gold = ', '.join(str(k) for k in range(n))\n"
        "        same = ', '.join(spell(k) for k in reversed(range(n)))\n"
        "        off = same.replace('17', '18')\n"
        "        start = time.perf_counter()\n"
        "        got = [g.compare(gold, same), g.compare(gold, off)]\n"
        "        print(n, *got, round(time.perf_counter() - start, 3))\n"
        "    print('workers used:', g.stats['worker'])\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    lines = [line.split() for line in out.stdout.splitlines()]
    assert [line[:3] for line in lines[:2]] == [
        ["1500", "correct", "wrong"],
        ["3000", "correct", "wrong"],
    ]
    assert lines[2] == ["workers", "used:", "0"]  # all of it decided in-process
    # Two comparisons each; measured 0.1-0.4 s on a loaded 2-core machine.
    assert float(lines[0][3]) < 2 * 1.0
    assert float(lines[1][3]) < 2 * 2.0


def test_long_hostile_answers_are_decided_at_once() -> None:
    # Model output as an adversary: runs that a regular expression anchored at the end, or one
    # with "\\s*" beside an optional part, would walk in quadratic time (once: 230 s for the
    # first). Each must be decided in-process or handed on within moments.
    hostile = [  # built in the child: too long for a command line
        "'6 ' + 'or ' * 30_000",
        "'6' + '.' * 90_000 + 'x'",
        "'6\\\\text{cm}' + ' ' * 90_000 + 'x'",
        "'6' + '\\\\quad' * 15_000 + 'x'",
        "'6' + ' ,' * 40_000",
        "'(' + 'a,' * 20_000 + '=5'",
        "'A:' * 20_000 + '=5'",
        "'15 ' + 'apples ' * 20_000",
    ]
    code = (
        "import sys, time\n"
        "from reasonloop.verify.math.compare import _fast_compare\n"
        "from reasonloop.verify.extract import extract_from_solution\n"
        f"for answer in [{', '.join(hostile)}]:\n"
        "    start = time.perf_counter()\n"
        "    _fast_compare('5', answer)\n"
        "    extract_from_solution('so \\\\boxed{' + answer + '}')\n"
        "    extract_from_solution('so $' + answer + '$')\n"
        "    print(round(time.perf_counter() - start, 2))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    seconds = [float(x) for x in out.stdout.split()]
    assert len(seconds) == len(hostile)
    assert max(seconds) < 5.0, seconds  # about 1 s at most on a loaded 2-core machine


@pytest.mark.slow
def test_a_long_list_without_exact_values_runs_under_the_time_limit(grader: MathGrader) -> None:
    # Radicals have no exact key, so 1,500 of them would cost 2 million comparisons: that goes to
    # a worker, under the same time limit as any other comparison.
    gold = ", ".join(rf"\sqrt{{{k}}}" for k in range(2, 1502))
    pred = ", ".join(rf"\sqrt{{{k}}} \cdot 1" for k in reversed(range(2, 1502)))
    grader.warm()
    start = time.perf_counter()
    reason = grader.compare(gold, pred, timeout=1.0)
    # The limit, plus reading 3,000 radicals in-process first (about 1 s on a loaded machine).
    assert time.perf_counter() - start < 1.0 + 4.0
    assert reason in ("correct", "timeout")
    assert grader.compare(r"\sin 2x", r"2\sin x\cos x") == "correct"  # the grader lives on


# --- the grader: workers, time limits, cache, order ----------------------------------------------


def test_power_tower_is_wrong_at_once() -> None:
    start = time.perf_counter()
    assert answers_equal("10^{10^{10^{10}}}", "1", timeout=3.0) is False
    assert answers_equal("1", "10^{10^{10^{10}}}", timeout=3.0) is False
    assert time.perf_counter() - start < 4.0


@pytest.mark.slow
def test_timeout_kills_the_worker_and_the_grader_recovers(grader: MathGrader) -> None:
    grader.warm()
    slow = ("(x+1)^{5000}", "(x+2)^{5000}")  # too big for the fast path; sympy expands for minutes
    start = time.perf_counter()
    v = grader.grade(slow[0], rf"\boxed{{{slow[1]}}}", timeout=1.0)
    elapsed = time.perf_counter() - start
    assert v == Verdict(False, slow[1], "timeout")
    assert elapsed < 1.0 + 1.0
    # The killed worker is replaced and the next sympy comparison works.
    assert grader.compare(r"\sin 2x", r"2\sin x\cos x") == "correct"
    tower = "10^{10^{10^{10}}}"
    assert grader.compare(tower, tower + "+1", timeout=1.0) in ("wrong", "timeout")
    # A timeout is remembered: asking again does not wait again.
    start = time.perf_counter()
    assert grader.grade(slow[0], rf"\boxed{{{slow[1]}}}", timeout=1.0).reason == "timeout"
    assert time.perf_counter() - start < 0.5


def test_grade_many_keeps_input_order_and_uses_the_workers(grader: MathGrader) -> None:
    pairs = [
        ("2", r"\boxed{2}"),
        (r"\cos 2x", r"\boxed{\cos^2 x - \sin^2 x}"),  # needs sympy
        (r"\frac12", r"\boxed{0.5}"),
        (r"\lceil 2.5 \rceil", r"\boxed{3}"),  # needs sympy
        ("3", "no answer here"),
        (r"\operatorname{lcm}(4,6)", r"\boxed{24}"),  # needs sympy
        ("7", r"<think>\boxed{7}"),
    ]
    before = grader.stats["worker"]
    got = [v.reason for v in grader.grade_many(pairs)]
    assert got == [
        "correct",
        "correct",
        "correct",
        "correct",
        "no_answer",
        "wrong",
        "thought_unfinished",
    ]
    assert grader.stats["worker"] - before == 3


def test_cache_answers_repeats(grader: MathGrader) -> None:
    grader.compare(r"\sqrt{8}", r"2\sqrt2")
    hits = grader.stats["cached"]
    assert grader.compare(r"\sqrt{8}", r"2\sqrt2") == "correct"
    assert grader.stats["cached"] == hits + 1
    with MathGrader(MathGraderConfig(cache_size=0)) as nocache:
        nocache.compare("1", "1")
        nocache.compare("1", "1")
        assert nocache.stats["cached"] == 0


def test_lru_cache_is_bounded() -> None:
    with MathGrader(MathGraderConfig(cache_size=3)) as g:
        for i in range(10):
            g.compare(str(i), str(i))
        assert len(g._cache) == 3


@pytest.mark.parametrize(
    ("field", "value"),
    [("timeout", 0), ("timeout", -1.0), ("workers", -1), ("cache_size", -5), ("memory_mb", -1)],
)
def test_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"MathGraderConfig\.{field}.*{value}"):
        MathGraderConfig(**{field: value})


@pytest.mark.parametrize(
    ("gold", "response"),
    [
        (None, r"\boxed{1}"),
        ("", r"\boxed{1}"),
        ("1", None),
        ("1", 12),
        (5.5, "5.5"),
        ("1", "\\boxed{" * 5000),
    ],
)
def test_grading_never_raises_on_junk(gold: object, response: object) -> None:
    v = grade_math(gold, response)  # type: ignore[arg-type]
    assert isinstance(v, Verdict) and v.correct is False


def test_integer_gold_is_read_as_its_digits() -> None:
    assert grade_math(25, r"\boxed{025}") == Verdict(True, "025", "correct")  # type: ignore[arg-type]


def test_answers_equal_on_junk() -> None:
    assert answers_equal("", "") is False
    assert answers_equal("1", "") is False
    assert answers_equal(None, "1") is False  # type: ignore[arg-type]
    assert compare_answers("1", "x" * 50_000) == "wrong"


# --- the pool ----------------------------------------------------------------------------------


class _Unloadable:
    """Pickles fine here, fails to unpickle in a worker (its module does not exist there)."""

    def __reduce__(self):
        return (importlib.import_module, ("reasonloop_no_such_module",))


def test_pool_runs_calls_in_order_and_reports_errors() -> None:
    with WorkerPool(workers=2, timeout=5.0) as pool:
        got = pool.map(pow, [(2, 10), (3, 4), (2, -1), (0, -1)])
        assert got[:3] == [CallResult(True, 1024), CallResult(True, 81), CallResult(True, 0.5)]
        assert got[3].ok is False and got[3].error.startswith("ZeroDivisionError")
        assert pool.call(int, "12") == CallResult(True, 12)
        unpicklable = pool.call(pow, threading.Lock(), 2)
        assert unpicklable.ok is False and "could not send call" in unpicklable.error
        unreadable = pool.call(pow, _Unloadable(), 2)
        assert unreadable.ok is False and "could not be read" in unreadable.error
        assert pool.call(pow, 2, 3) == CallResult(True, 8)  # the worker survived


@pytest.mark.slow
def test_pool_kills_a_stuck_call_and_recovers() -> None:
    with WorkerPool(workers=1, timeout=0.5) as pool:
        pool.start(wait_ready=True)
        start = time.perf_counter()
        stuck = pool.call(time.sleep, 30)
        assert stuck == CallResult(False, timed_out=True, error="timeout")
        assert time.perf_counter() - start < 1.5
        assert pool.kills == 1
        # The replacement worker serves the next call; its start-up does not count as call time.
        assert pool.call(pow, 2, 5) == CallResult(True, 32)
        # A worker that dies mid-call is an error, not a hang, and is replaced too.
        died = pool.call(os._exit, 3)
        assert died.ok is False and "worker died" in died.error
        assert pool.call(pow, 3, 3) == CallResult(True, 27)


@pytest.mark.slow
def test_pool_timeouts_run_in_parallel_and_work_off_the_main_thread() -> None:
    results: list[list[CallResult]] = []
    with WorkerPool(workers=2, timeout=1.0) as pool:
        pool.start(wait_ready=True)

        def job() -> None:
            results.append(pool.map(time.sleep, [(5,), (5,), (0,)]))

        start = time.perf_counter()
        t = threading.Thread(target=job)
        t.start()
        t.join(30)
        elapsed = time.perf_counter() - start
    assert [r.timed_out for r in results[0]] == [True, True, False]
    assert results[0][2] == CallResult(True, None)
    # Two stuck calls side by side cost one limit, plus a restart before the third.
    assert elapsed < 6.0


def test_pool_rejects_bad_settings() -> None:
    with pytest.raises(ConfigError, match="workers must be >= 1") as bad:
        WorkerPool(workers=0)
    assert bad.value.field == "workers"
    with pytest.raises(ConfigError, match="timeout must be > 0"):
        WorkerPool(timeout=0)
    pool = WorkerPool(workers=1)
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.call(pow, 2, 2)
