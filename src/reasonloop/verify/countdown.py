"""The exact Countdown verifier (the puzzles are :mod:`reasonloop.problems.countdown`'s).

``grade_countdown`` reads the answer from the solution's last ``\\boxed{}`` (or the last
``Answer:`` line), which is either

- a chain of steps ``a op b = c, ...``: each step must use numbers still available (the given ones,
  as a multiset, plus earlier results), follow the game's rules and be arithmetically right, and the
  last result must be the target; or
- an expression: only + - * / and parentheses over the given numbers (each at most once), evaluated
  exactly with fractions.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from fractions import Fraction

from reasonloop.format import parse
from reasonloop.problems.countdown import Puzzle, apply, parse_problem
from reasonloop.records import Problem, Verdict

_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.Constant, ast.Add, ast.Sub, ast.Mult, ast.Div)


def evaluate(expr: str) -> tuple[Fraction, list[int]] | None:
    """The exact value of an arithmetic expression and the numbers it uses; None if it is not
    plain integer arithmetic with + - * / and parentheses."""
    expr = expr.replace("\\times", "*").replace("×", "*").replace("\\cdot", "*").replace("÷", "/")
    expr = expr.replace("\\div", "/").replace("−", "-").strip().strip("$").strip()
    if not expr or len(expr) > 200 or not re.fullmatch(r"[\d\s+\-*/()]+", expr):
        return None
    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError):
        return None
    used: list[int] = []

    def ev(node: ast.AST) -> Fraction:
        if not isinstance(node, _ALLOWED_NODES):
            raise ValueError("disallowed")
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, int) or isinstance(node.value, bool):
                raise ValueError("not an integer")
            used.append(node.value)
            return Fraction(node.value)
        assert isinstance(node, ast.BinOp)
        if not isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
            raise ValueError("disallowed operator")
        a, b = ev(node.left), ev(node.right)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
        if b == 0:
            raise ZeroDivisionError
        return a / b

    try:
        return ev(tree), used
    except (ValueError, ZeroDivisionError, RecursionError):
        return None


def extract_expression(solution: str) -> str | None:
    boxed = re.findall(r"\\boxed\{([^{}]*)\}", solution)
    if boxed:
        return boxed[-1]
    lines = re.findall(r"(?im)^\s*answer\s*:\s*(.+)$", solution)
    return lines[-1] if lines else None


_STEP = re.compile(r"^\s*(\d+)\s*([-+*/×÷])\s*(\d+)\s*=\s*(\d+)\s*$")


def check_chain(chain: str, puzzle: Puzzle) -> bool | None:
    """True when the steps ``a op b = c, ...`` reach the target under the rules; None when ``chain``
    is not a list of steps at all."""
    parts = [x for x in re.split(r"[,;\n]", chain.strip().rstrip(".")) if x.strip()]
    steps = [_STEP.match(x) for x in parts]
    if not steps or any(m is None for m in steps):
        return None
    pool = Counter(puzzle.numbers)
    value = None
    for m in steps:
        a, op, b, c = int(m[1]), m[2].replace("×", "*").replace("÷", "/"), int(m[3]), int(m[4])
        if pool[a] < 1 or pool[b] < (2 if a == b else 1):
            return False  # a number that is not available (any more)
        if apply(a, op, b) != c:
            return False  # an illegal or miscalculated step
        pool[a] -= 1
        pool[b] -= 1
        pool[c] += 1
        value = c
    return value == puzzle.target


def grade_countdown(problem: Problem, response: str) -> Verdict:
    """Exact verdict: the expression uses only the given numbers (each at most once) and hits the target."""
    puzzle = parse_problem(problem.problem)
    if puzzle is None:
        return Verdict(False, None, "bad_gold")
    parsed = parse(response if isinstance(response, str) else "")
    if parsed.solution is None:
        return Verdict(False, None, "thought_unfinished")
    expr = extract_expression(parsed.solution)
    if expr is None:
        return Verdict(False, None, "no_answer")
    if "=" in expr:
        ok = check_chain(expr, puzzle)
        if ok is None:
            return Verdict(False, expr, "unparseable")
        return Verdict(ok, expr, "correct" if ok else "wrong")
    result = evaluate(expr)
    if result is None:
        return Verdict(False, expr, "unparseable")
    value, used = result
    if Counter(used) - Counter(puzzle.numbers):
        return Verdict(False, expr, "wrong")  # a number not given, or used too often
    ok = value == puzzle.target
    return Verdict(ok, expr, "correct" if ok else "wrong")
