import random

import pytest

from reasonloop.engines import SPEC_FORMS, load_engine, parse_engine_spec, user_messages
from reasonloop.engines.base import Request
from reasonloop.engines.countdown import CountdownTeacher, solve
from reasonloop.errors import ConfigError, EngineError
from reasonloop.format import render
from reasonloop.problems.countdown import make_problems, parse_problem
from reasonloop.problems.prompt import prompt_for
from reasonloop.verify import grade
from reasonloop.verify.countdown import grade_countdown


def sol(expr: str) -> str:
    return render("thinking", f"Answer: \\boxed{{{expr}}}")


def test_teacher_traces_grade_as_they_claim():
    probs = make_problems(40, n_numbers=4, max_number=25, seed=5)
    solved = 0
    for p in probs:
        for quality in ("good", "poor"):
            t = solve(parse_problem(p.problem), quality=quality, rng=random.Random(p.id))
            v = grade_countdown(p, t.text)
            assert v.correct == (t.expression is not None)
            solved += v.correct
            assert t.thought.startswith(f"Goal: {p.answer} from")
            if t.expression is not None:  # the chain answer and the expression agree
                assert grade_countdown(p, sol(t.expression)).correct
                assert t.solution == f"Answer: \\boxed{{{', '.join(t.steps)}}}"
    assert solved > 40  # most puzzles are solved by at least the good teacher


def test_poor_teacher_explores_worse_than_good():
    probs = make_problems(100, n_numbers=5, max_number=50, seed=6)
    rate = {}
    for quality in ("good", "poor"):
        rate[quality] = sum(
            solve(parse_problem(p.problem), quality=quality, rng=random.Random(p.id)).expression
            is not None
            for p in probs
        )
    assert rate["good"] > rate["poor"]


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("default", ("default", "")),
        ("countdown", ("countdown", "")),
        ("llamacpp:m.gguf", ("llamacpp", "m.gguf")),
        ("hf:runs/sft", ("hf", "runs/sft")),
        ("openai:http://h:1/v1#m", ("openai", "http://h:1/v1#m")),
    ],
)
def test_the_one_spec_grammar(spec, parsed):
    assert parse_engine_spec(spec) == parsed


@pytest.mark.parametrize("spec", ["bogus:x", "llamacpp:", "countdown:x", "default:x", "hf"])
def test_bad_specs_name_the_setting_and_the_forms(spec):
    with pytest.raises(ConfigError) as err:
        parse_engine_spec(spec, key="teacher.engine")
    assert str(err.value).startswith(f"teacher.engine: unknown engine spec {spec!r}")
    assert "countdown" in str(err.value) and all(f in str(err.value) for f in SPEC_FORMS)


def test_countdown_is_an_engine_spec_whose_samples_grade_as_the_search_went():
    engine = load_engine("countdown")
    assert isinstance(engine, CountdownTeacher) and engine.spec == "countdown"
    problems = make_problems(6, n_numbers=4, max_number=9, seed=1)
    requests = [Request(messages=user_messages(prompt_for(p)), n=3, seed=7) for p in problems]
    results = engine.generate(requests)
    for p, result in zip(problems, results, strict=True):
        assert len(result.samples) == 3
        for i, sample in enumerate(result.samples):  # sample i uses seed 7 + i
            trace = solve(parse_problem(p.problem), rng=random.Random(7 + i), max_lines=8)
            assert sample.text == trace.text
            assert grade(p, sample.text).correct == (trace.expression is not None)
    other = engine.generate([Request(prompt="What is 2+2?")])[0].samples[0]
    assert other.text == "" and grade(problems[0], other.text).reason == "no_answer"
    with pytest.raises(EngineError):
        engine.score("x", "y")
