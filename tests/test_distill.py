from reasonloop.distill import convert, detect_style, distill
from reasonloop.engines.base import Sample
from reasonloop.engines.countdown import solve
from reasonloop.engines.scripted import ScriptedEngine, prompt_text
from reasonloop.format import BEGIN_THOUGHT, parse
from reasonloop.generate import SamplingSettings
from reasonloop.problems.countdown import make_problems, parse_problem
from reasonloop.store import open_store

P = [
    p
    for p in make_problems(20, n_numbers=3, max_number=10, seed=2)
    if solve(parse_problem(p.problem)).expression
][:2]
EXPR = {p.problem: solve(parse_problem(p.problem)).expression for p in P}


def teacher(req, i):
    expr = next(e for k, e in EXPR.items() if k in prompt_text(req))
    if i == 0:
        return f"<think>\nLet me try. {expr} works.\n</think>\n\nSo the answer is \\boxed{{{expr}}}."  # R1
    if i == 1:
        return f"Okay, let me think... {expr} reaches it. Let me double check. Yes."  # QwQ: no solution
    return "<think>I keep thinking and never stop"  # unfinished


def completer(req, i):
    text = prompt_text(req)
    expr = next(e for k, e in EXPR.items() if k in text)
    assert "Thinking:" in text and f"{expr} reaches it" in text
    return f"Answer: \\boxed{{{expr}}}"


def test_detect_style():
    assert [detect_style(t) for t in ("<think>a</think>b", f"{BEGIN_THOUGHT}x", "just text")] == [
        "r1",
        "unified",
        "qwq",
    ]


def test_convert_styles_and_complete_qwq_solutions():
    eng = ScriptedEngine(completer)
    samples = [
        Sample(t, 5, "stop")
        for t in (
            "<think>\nA.\n</think>\n\nB \\boxed{1}",
            f"Okay, {EXPR[P[0].problem]} reaches it.",
            "<think>never ends",
        )
    ]
    batch = [(P[0], s) for s in samples]
    texts = convert(batch, completer=eng)
    assert [parse(t).thought for t in texts] == [
        "A.",
        f"Okay, {EXPR[P[0].problem]} reaches it.",
        "never ends",
    ]
    assert [parse(t).solution for t in texts] == [
        "B \\boxed{1}",
        f"Answer: \\boxed{{{EXPR[P[0].problem]}}}",
        None,
    ]
    assert len(eng.calls) == 1  # only the QwQ response needed a completion
    assert convert(batch[1:2], completer=None)[0].endswith(
        "<|end_of_solution|>"
    )  # left empty, flagged by no_answer


def test_distill_stores_converted_graded_traces(tmp_path):
    with open_store(tmp_path / "s.db") as st:
        summary = distill(
            ScriptedEngine(teacher),
            P,
            st,
            SamplingSettings(n=3),
            completer=ScriptedEngine(completer),
        )
        assert (summary.samples, summary.correct) == (6, 4)
        assert summary.reasons == {"correct": 4, "thought_unfinished": 2}
        for t in st.trajectories(stage="distill"):
            assert t.generator.role == "teacher"
            if t.verdict.correct:
                assert t.text.startswith(BEGIN_THOUGHT)


def test_the_cli_distils_from_the_countdown_engine_spec(tmp_path):
    """``--teacher countdown`` is an engine spec like any other: the programmatic teacher's
    traces are stored and graded by the exact Countdown checker."""
    import subprocess
    import sys

    store = tmp_path / "s.db"
    args = ["distill", "--problems", "countdown-easy", "--limit", "4", "--store", str(store)]
    r = subprocess.run(
        [sys.executable, "-c", "from reasonloop.cli import main; main()", *args]
        + ["--teacher", "countdown", "-n", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    with open_store(store, readonly=True) as st:
        rows = list(st.trajectories())
    assert len(rows) == 8 and {t.generator.engine for t in rows} == {"countdown"}
    for t in rows:  # graded as the search went: a chain answer exactly when it is correct
        assert t.verdict.correct == t.text.rstrip().endswith("}\n<|end_of_solution|>")
    assert any(t.verdict.correct for t in rows)
