"""Shim: Countdown moved to :mod:`reasonloop.problems.countdown` (the puzzles) and
:mod:`reasonloop.verify.countdown` (the exact checker).

shim: remove once upper floors import from reasonloop.problems.countdown / reasonloop.verify.countdown
"""

from reasonloop.problems.countdown import (
    DIFFICULTY,
    MAX_TARGET,
    SOURCE,
    Puzzle,
    apply,
    countdown_set,
    make_problems,
    parse_problem,
    problem_text,
    random_puzzle,
)
from reasonloop.verify.countdown import check_chain, evaluate, extract_expression, grade_countdown

__all__ = [
    "DIFFICULTY",
    "MAX_TARGET",
    "SOURCE",
    "Puzzle",
    "apply",
    "check_chain",
    "countdown_set",
    "evaluate",
    "extract_expression",
    "grade_countdown",
    "make_problems",
    "parse_problem",
    "problem_text",
    "random_puzzle",
]
