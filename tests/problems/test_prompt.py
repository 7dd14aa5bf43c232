from __future__ import annotations

from reasonloop.problems import format_choices, prompt_for
from reasonloop.records import Problem

CHOICE = Problem(
    id="c", domain="science", problem="Which gas?\n", answer="B", choices=("He", "Ne", "Ar")
)


def test_format_choices() -> None:
    assert format_choices(CHOICE) == "A) He\nB) Ne\nC) Ar"
    assert format_choices(Problem(id="m", domain="math", problem="1+1?", answer="2")) == ""


def test_prompt_for_math_is_the_problem_text() -> None:
    assert prompt_for(Problem(id="m", domain="math", problem="  1+1?\n", answer="2")) == "1+1?"


def test_prompt_for_choice_problem() -> None:
    assert prompt_for(CHOICE) == (
        "Which gas?\n\nA) He\nB) Ne\nC) Ar\n\n"
        'End your solution with "Answer: X", where X is the letter of the correct choice.'
    )


def test_prompt_for_code_problem() -> None:
    stub = 'def f(x):\n    """Return x."""\n'
    problem = Problem(id="HumanEval/9", domain="code", problem=stub, answer="    return x\n")
    assert prompt_for(problem) == (
        "Complete the following Python function. Write the complete function (its signature, "
        "body and any imports it needs) in one fenced ```python code block.\n\n"
        '```python\ndef f(x):\n    """Return x."""\n```'
    )
