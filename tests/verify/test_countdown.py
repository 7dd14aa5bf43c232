import random

import pytest

from reasonloop.format import render
from reasonloop.problems.countdown import Puzzle, problem_text
from reasonloop.records import Problem
from reasonloop.verify import grade
from reasonloop.verify.countdown import (
    evaluate,
    explain_countdown,
    expression_steps,
    grade_countdown,
)

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
    (sol("55"), False, "wrong"),  # a bare number: well formed, but no step from the numbers
    (sol("21/(7-7)"), False, "wrong"),  # 7-7 is 0: not a move, as in a chain
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
    (sol("7-21=-14"), False, "wrong"),  # read, then refused: no negatives
    (sol("21-7=14, 14-21=0"), False, "wrong"),  # 21 reused, and the rule forbids it anyway
    (sol("6/2=3, 21+7=28"), False, "wrong"),  # right steps, wrong target
    (sol("21/2=10, 10*6=60"), False, "wrong"),  # fractions are not allowed
    (sol("2*21=42, then 42+13=55"), False, "unparseable"),
]


@pytest.mark.parametrize("response,correct,reason", TABLE)
def test_grade_countdown_table(response, correct, reason):
    v = grade_countdown(P, response)
    assert (v.correct, v.reason) == (correct, reason)


def test_grade_dispatches_countdown_to_the_exact_checker():
    # 21+21+7+6 is 55, but 21 is given once: only the exact checker sees the numbers used
    assert grade(P, sol("21+21+7+6")).reason == "wrong"
    assert grade(P, sol("2*21+7+6")).correct


def test_evaluate_is_exact_and_lists_the_numbers():
    assert evaluate("(1+2)*3") == (9, [1, 2, 3])
    assert evaluate("7/2*2") == (7, [7, 2, 2])
    assert evaluate("1+") is None


R = Problem("r", "puzzle", problem_text(Puzzle((3, 4, 6, 8), 7)), "7", source="countdown")
T = Problem("t", "puzzle", problem_text(Puzzle((3, 4, 6, 8), 10)), "10", source="countdown")
U = Problem("u", "puzzle", problem_text(Puzzle((1, 5, 5, 9), 45)), "45", source="countdown")

# One answer in both forms: (puzzle, expression, the chain that evaluates it (None: a fraction on
# the way, no chain of whole numbers writes it), correct, reason). Both forms must get the verdict.
BOTH_FORMS = [
    (P, "2*21+7+6", "2*21=42, 42+7=49, 49+6=55", True, "correct"),
    (P, "6+(7+(2*21))", "2*21=42, 7+42=49, 6+49=55", True, "correct"),
    (P, "21*2+13", "21*2=42, 42+13=55", False, "wrong"),  # 13 is not given
    (P, "21+21+7+6", "21+21=42, 42+7=49, 49+6=55", False, "wrong"),  # 21 used twice
    (P, "2*21+7", "2*21=42, 42+7=49", False, "wrong"),  # ends at 49
    (P, "2*21+7+6+0", "2*21=42, 42+7=49, 49+6=55, 55+0=55", False, "wrong"),  # 0 not given
    (R, "8/(6-4)+3", "6-4=2, 8/2=4, 4+3=7", True, "correct"),
    (U, "9*5", "9*5=45", True, "correct"),
    (U, "9*5*1", "9*5=45, 45*1=45", True, "correct"),  # multiplying by one is a move
    # the right value, through a step the rules forbid (the old expression path accepted these)
    (R, "8+(3-4)", "3-4=-1, 8+-1=7", False, "wrong"),  # below zero
    (R, "3-(4-8)", "4-8=-4, 3--4=7", False, "wrong"),  # below zero
    (R, "6-(3+4)+8", "3+4=7, 6-7=-1, -1+8=7", False, "wrong"),  # below zero
    (T, "3/6*4+8", None, False, "wrong"),  # 3/6 is a fraction
    (T, "3/(6/4)+8", None, False, "wrong"),  # 6/4 is a fraction
    (U, "9/1*5", "9/1=9, 9*5=45", False, "wrong"),  # dividing by one is not a move
    (U, "(5-5)+9*5", "5-5=0, 9*5=45, 0+45=45", False, "wrong"),  # zero is not a result
]
PATH_BROKEN = BOTH_FORMS[9:]


@pytest.mark.parametrize("problem,expr,chain,correct,reason", BOTH_FORMS)
def test_expression_and_chain_get_the_same_verdict(problem, expr, chain, correct, reason):
    v = grade_countdown(problem, sol(expr))
    assert (v.correct, v.reason, v.extracted) == (correct, reason, expr)
    if chain is not None:
        assert [str(s) for s in expression_steps(expr)] == chain.split(", ")
        w = grade_countdown(problem, sol(chain))
        assert (w.correct, w.reason) == (correct, reason)


def test_the_path_broken_rows_have_the_right_plain_value():
    # each of them is the target by plain arithmetic: only the rules make them wrong
    for problem, expr, *_ in PATH_BROKEN:
        assert evaluate(expr)[0] == int(problem.answer), expr
    assert len(PATH_BROKEN) == 7 and all(not row[3] for row in PATH_BROKEN)


def test_random_expressions_get_their_chains_verdict():
    # 400 random expressions over random puzzles: whenever the chain that evaluates one is made
    # of whole numbers, writing it as that chain gets the same verdict
    rng = random.Random(0)
    compared = agreed_right = 0
    for _ in range(400):
        numbers = tuple(sorted(rng.randint(1, 9) for _ in range(4)))
        leaves = [str(n) for n in rng.sample(numbers, rng.randint(2, 4))]
        while len(leaves) > 1:
            i = rng.randrange(len(leaves) - 1)
            leaves[i : i + 2] = [f"({leaves[i]}{rng.choice('+-*/')}{leaves[i + 1]})"]
        expr = leaves[0]
        value = evaluate(expr)
        if value is None or value[0].denominator != 1 or value[0] < 1:
            continue
        target = int(value[0])
        text = problem_text(Puzzle(numbers, target))
        problem = Problem("x", "puzzle", text, str(target), source="countdown")
        steps = expression_steps(expr)
        if any(s.result.denominator != 1 for s in steps):
            assert not grade_countdown(problem, sol(expr)).correct  # a fraction on the way
            continue
        a = grade_countdown(problem, sol(expr))
        b = grade_countdown(problem, sol(", ".join(str(s) for s in steps)))
        assert (a.correct, a.reason) == (b.correct, b.reason), expr
        compared += 1
        agreed_right += a.correct
    assert compared > 150 and 0 < agreed_right < compared  # both verdicts occur


def test_explanation_checks_each_step_and_reaches_the_verdict():
    v, text = explain_countdown(P, sol("2*21=42, 42+7=50, 50+5=55"))
    assert (v.correct, v.reason) == (False, "wrong")
    assert text == (
        "Check the answer step by step with 2 6 7 21, target 55.\n"
        "2*21=42: right.\n"
        "42+7=50: wrong, 42+7 is 49, not 50."
    )
    v, text = explain_countdown(P, sol("2*21+7+6"))
    assert v.correct and text.endswith("49+6=55: right.\nIt reaches 55.")
    v, text = explain_countdown(P, sol("2*21=42, 42+7=49"))
    assert not v.correct and text.endswith("42+7=49: right.\nIt ends at 49, not 55.")
    v, text = explain_countdown(R, sol("8+(3-4)"))
    assert text.endswith("3-4=-1: wrong, 3-4 is not allowed by the rules.")
    v, text = explain_countdown(P, sol("21*2+13"))
    assert text.endswith("42+13=55: wrong, 13 is not available (not given, or used).")
    assert (
        explain_countdown(P, render("x", "I give up"))[1] == "The solution gives no final answer."
    )
    assert explain_countdown(P, "<|begin_of_thought|>\nhmm")[0].reason == "thought_unfinished"
    # the verdict is grade_countdown's on every row of the tables
    for response, *_ in TABLE:
        assert explain_countdown(P, response)[0] == grade_countdown(P, response)
