import random

import pytest

from reasonloop.demo.countdown import (
    Puzzle,
    apply,
    evaluate,
    grade_countdown,
    make_problems,
    parse_problem,
    problem_text,
)
from reasonloop.demo.teacher import solve
from reasonloop.format import render
from reasonloop.records import Problem

P = Problem("c", "puzzle", problem_text(Puzzle((2, 6, 7, 21), 55)), "55", source="countdown")


def sol(expr: str) -> str:
    return render("thinking", f"Answer: \\boxed{{{expr}}}")


# (response, correct, reason)
TABLE = [
    (sol("6+(7+(2*21))"), True, "correct"),
    (sol("2*21+7+6"), True, "correct"),
    (sol("21 \\times 2 + 7 + 6"), True, "correct"),
    (sol("(21*2)+13"), False, "wrong"),  # 13 is not given
    (sol("21*2+7+6+0"), False, "wrong"),  # 0 is not given
    (sol("21+21+7+6"), False, "wrong"),  # 21 used twice
    (sol("2*21+7"), False, "wrong"),  # 49
    (sol("6*7+21/2+2.5"), False, "unparseable"),  # decimals
    (sol("__import__('os')"), False, "unparseable"),
    (sol("6**7"), False, "unparseable"),  # no powers
    (sol("21/(7-7)"), False, "unparseable"),
    (render("x", "Answer: 6+7+2*21"), True, "correct"),
    (render("x", "I give up"), False, "no_answer"),
    ("<|begin_of_thought|>\nTry 2*21=42", False, "thought_unfinished"),
    # chains of steps: numbers available as a multiset, earlier results reusable, rules enforced
    (sol("2*21=42, 42+7=49, 49+6=55"), True, "correct"),
    (sol("21*2=42, 6+7=13, 42+13=55"), True, "correct"),
    (sol("2*21=42, 42+7=49, 49+6=55."), True, "correct"),
    (sol("2*21=42, 42+7=49, 49+7=56"), False, "wrong"),  # 7 used twice
    (sol("2*21=42, 42+13=55"), False, "wrong"),  # 13 was never made
    (sol("2*21=42, 42+7=50, 50+5=55"), False, "wrong"),  # miscalculated
    (sol("7-21=-14"), False, "unparseable"),  # not a step of the form a op b = c
    (sol("21-7=14, 14-21=0"), False, "wrong"),  # 21 reused, and the rule forbids it anyway
    (sol("6/2=3, 21+7=28"), False, "wrong"),  # right steps, wrong target
    (sol("21/2=10, 10*6=60"), False, "wrong"),  # fractions are not allowed
    (sol("2*21=42, then 42+13=55"), False, "unparseable"),
]


@pytest.mark.parametrize("response,correct,reason", TABLE)
def test_grade_countdown_table(response, correct, reason):
    v = grade_countdown(P, response)
    assert (v.correct, v.reason) == (correct, reason)


def test_rules_of_steps():
    assert apply(7, "-", 9) is None  # no negatives
    assert apply(7, "/", 2) is None  # no fractions
    assert apply(8, "/", 2) == 4
    assert evaluate("(1+2)*3") == (9, [1, 2, 3])


def test_problems_are_deterministic_distinct_and_round_trip():
    a = make_problems(50, n_numbers=4, max_number=25, seed=3)
    b = make_problems(50, n_numbers=4, max_number=25, seed=3)
    assert a == b
    assert len({p.problem for p in a}) == 50
    assert make_problems(5, n_numbers=4, max_number=25, seed=4) != a[:5]
    for p in a:
        puzzle = parse_problem(p.problem)
        assert puzzle is not None and len(puzzle.numbers) == 4 and str(puzzle.target) == p.answer


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


def test_generated_sets_resolve_by_name_without_data():
    from reasonloop.problems import resolve_problems

    easy = resolve_problems("countdown-easy", limit=5)
    assert [len(parse_problem(p.problem).numbers) for p in easy] == [3] * 5
    assert len(resolve_problems("countdown-hard")) == 100
    assert resolve_problems("countdown-hard", seed=1)[0] != resolve_problems("countdown-hard")[0]
