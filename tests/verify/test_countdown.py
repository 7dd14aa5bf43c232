import pytest

from reasonloop.format import render
from reasonloop.problems.countdown import Puzzle, problem_text
from reasonloop.records import Problem
from reasonloop.verify import grade
from reasonloop.verify.countdown import evaluate, grade_countdown

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


def test_grade_dispatches_countdown_to_the_exact_checker():
    # 21+21+7+6 is 55, but 21 is given once: only the exact checker sees the numbers used
    assert grade(P, sol("21+21+7+6")).reason == "wrong"
    assert grade(P, sol("2*21+7+6")).correct


def test_evaluate_is_exact_and_lists_the_numbers():
    assert evaluate("(1+2)*3") == (9, [1, 2, 3])
    assert evaluate("7/2*2") == (7, [7, 2, 2])
    assert evaluate("1+") is None
