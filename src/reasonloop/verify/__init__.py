"""Graders: decide whether a response answers a problem correctly.

Every grader is total: it never raises on model output and never hangs on it; it returns a
:class:`~reasonloop.records.Verdict`. ``grade`` picks the grader from the problem's domain:

- ``math`` / ``puzzle`` with a free-form answer: :func:`reasonloop.verify.math.grade_math`
- ``science`` or any problem with ``choices`` / a letter answer: :func:`reasonloop.verify.choice.grade_choice`
- ``code``: :func:`reasonloop.verify.code.grade_code` (runs in a sandboxed child process)
- ``puzzle`` from Countdown (``source == "countdown"``): :func:`reasonloop.verify.countdown.grade_countdown`
  (exact)
"""

from __future__ import annotations

from reasonloop.records import Problem, Verdict
from reasonloop.verify.answers import answer_equality
from reasonloop.verify.choice import grade_choice
from reasonloop.verify.code import grade_code
from reasonloop.verify.countdown import grade_countdown
from reasonloop.verify.math import grade_math


def grade(problem: Problem, response: str) -> Verdict:
    """Grade one response to one problem. Never raises on model output."""
    if problem.domain == "code":
        return grade_code(
            response, problem.tests or "", problem.entry_point, prompt=problem.problem
        )
    if problem.domain == "puzzle" and problem.source == "countdown":
        return grade_countdown(problem, response)
    if problem.choices or problem.domain == "science":
        return grade_choice(problem.answer, response, problem.choices)
    return grade_math(problem.answer, response)


__all__ = ["answer_equality", "grade"]
