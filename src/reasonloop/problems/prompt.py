"""The user-message text for a problem: what a model is asked, before any system prompt.

- math / puzzle: the problem text, as is (answer-format instructions such as ``\\boxed{}`` belong
  to the system prompt, which knows the response format);
- a problem with ``choices``: the text, the options as ``A) ...`` lines, and one line asking for
  ``Answer: X`` (the shape :mod:`reasonloop.verify.choice` reads first after ``\\boxed{X}``);
- code: the function stub in a fenced block and an instruction to answer with the complete function
  in one fenced ``python`` block.

It does not apply a chat template, add a system prompt, or add few-shot examples.
"""

from __future__ import annotations

import string

from reasonloop.records import Problem

CHOICE_INSTRUCTION = (
    'End your solution with "Answer: X", where X is the letter of the correct choice.'
)
CODE_INSTRUCTION = (
    "Complete the following Python function. Write the complete function (its signature, body and "
    "any imports it needs) in one fenced ```python code block."
)


def format_choices(problem: Problem) -> str:
    """The options of a choice problem as ``A) text`` lines joined by newlines; ``""`` if none."""
    if not problem.choices:
        return ""
    return "\n".join(
        f"{letter}) {text}"
        for letter, text in zip(string.ascii_uppercase, problem.choices, strict=False)
    )


def prompt_for(problem: Problem) -> str:
    """The user message that poses ``problem`` (see the module docstring for each kind)."""
    if problem.domain == "code":
        stub = problem.problem.rstrip("\n")
        return f"{CODE_INSTRUCTION}\n\n```python\n{stub}\n```"
    text = problem.problem.strip()
    if problem.choices:
        return f"{text}\n\n{format_choices(problem)}\n\n{CHOICE_INSTRUCTION}"
    return text
