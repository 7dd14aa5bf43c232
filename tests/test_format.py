import pytest

from reasonloop.format import (
    BEGIN_SOLUTION,
    BEGIN_THOUGHT,
    END_SOLUTION,
    END_THOUGHT,
    SYSTEM_PROMPT,
    from_qwq,
    from_r1,
    parse,
    render,
    strip_markers,
    to_unified,
)


def test_render_parse_round_trip():
    text = render("  plan, try, check  ", "So \\boxed{4}")
    assert text == (
        f"{BEGIN_THOUGHT}\nplan, try, check\n{END_THOUGHT}\n\n"
        f"{BEGIN_SOLUTION}\nSo \\boxed{{4}}\n{END_SOLUTION}"
    )
    p = parse(text)
    assert (p.thought, p.solution, p.formatted, p.thought_closed, p.solution_closed) == (
        "plan, try, check",
        "So \\boxed{4}",
        True,
        True,
        True,
    )


# (text, thought, solution, thought_closed, needs_solution)
CASES = [
    (f"{BEGIN_THOUGHT} thinking forever", "thinking forever", None, False, False),
    (f"{BEGIN_THOUGHT} a {END_THOUGHT} the answer is 3", "a", "the answer is 3", True, False),
    (f"{BEGIN_THOUGHT} a {END_THOUGHT}\n{BEGIN_SOLUTION} s", "a", "s", True, False),
    (f"{BEGIN_THOUGHT} a {END_THOUGHT}", "a", "", True, True),
    (f"a {END_THOUGHT} {BEGIN_SOLUTION}s{END_SOLUTION} trailing", "a", "s", True, False),
    ("plain answer \\boxed{2}", None, "plain answer \\boxed{2}", True, False),
    ("<think>x</think>\nAnswer: 4", "x", "Answer: 4", True, False),
    ("<think>x never ends", "x never ends", None, False, False),
    ("<think>x</think>", "x", "", True, True),
    ("", None, "", True, False),
]


@pytest.mark.parametrize("text,thought,solution,closed,needs", CASES)
def test_parse_table(text, thought, solution, closed, needs):
    p = parse(text)
    assert (p.thought, p.solution, p.thought_closed, p.needs_solution) == (
        thought,
        solution,
        closed,
        needs,
    )


def test_parse_is_total_on_non_strings():
    assert parse(None).solution is None  # type: ignore[arg-type]


def test_r1_converter():
    p = from_r1("<think>\nLet me see. 2+2=4.\n</think>\n\nThe answer is $\\boxed{4}$.")
    assert p.thought == "Let me see. 2+2=4."
    assert p.solution == "The answer is $\\boxed{4}$."
    assert render(p.thought, p.solution).startswith(BEGIN_THOUGHT)
    assert from_r1("<think>unfinished").solution is None


def test_qwq_converter_keeps_thought_and_flags_completion():
    p = from_qwq("Okay, so 2+2... that's 4. Final: 4")
    assert p.thought == "Okay, so 2+2... that's 4. Final: 4"
    assert p.solution is None and p.needs_solution
    assert to_unified("<think>a</think>b", "r1").solution == "b"
    assert to_unified("abc", "qwq").needs_solution


def test_system_prompt_names_every_marker():
    for m in (BEGIN_THOUGHT, END_THOUGHT, BEGIN_SOLUTION, END_SOLUTION):
        assert m in SYSTEM_PROMPT
    assert strip_markers(render("a", "b")).split() == ["a", "b"]
