"""The exact Countdown verifier (the puzzles are :mod:`reasonloop.problems.countdown`'s).

``grade_countdown`` reads the answer from the solution's last ``\\boxed{}`` (or the last
``Answer:`` line), which is either

- a chain of steps ``a op b = c, ...``, or
- an expression: only + - * / and parentheses over the given numbers, which is turned into the
  chain of steps that evaluates it (innermost operation first, left before right).

Both are then checked by the same walk (:func:`check_steps`), so the two forms accept exactly the
same answers: each step must use numbers still available (the given ones, as a multiset, plus
earlier results), follow the game's rules (:func:`reasonloop.problems.countdown.apply`: positive
whole-number results only, no division by one) and be arithmetically right, and the last result
must be the target. An expression such as ``7/2*2`` or ``21-7*4+...`` whose value is right but
passes through a fraction or a number below one is wrong, as its chain would be.

:func:`explain_countdown` narrates that walk (the check of every step, and where it fails) as a
short verification rationale; :func:`grade_countdown`'s verdict is the same walk's, so the two
never disagree. What it does not do: accept an answer that is a bare number (no step), or any
operator beyond + - * / (no powers, no concatenation of digits).
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

from reasonloop.format import parse
from reasonloop.problems.countdown import Puzzle, apply, parse_problem
from reasonloop.records import Problem, Verdict

_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.Constant, ast.Add, ast.Sub, ast.Mult, ast.Div)
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


@dataclass(frozen=True, slots=True)
class Step:
    """One step ``a op b = result``: ``result`` is the claimed one (a chain) or the exact value
    (an expression, where it may be a fraction or below one: the walk then rejects the step)."""

    a: Fraction
    op: str
    b: Fraction
    result: Fraction

    def __str__(self) -> str:
        return f"{_num(self.a)}{self.op}{_num(self.b)}={_num(self.result)}"


def _num(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def _normalise(expr: str) -> str:
    expr = expr.replace("\\times", "*").replace("×", "*").replace("\\cdot", "*").replace("÷", "/")
    return expr.replace("\\div", "/").replace("−", "-").strip().strip("$").strip()


def _parse_tree(expr: str) -> ast.Expression | None:
    expr = _normalise(expr)
    if not expr or len(expr) > 200 or not re.fullmatch(r"[\d\s+\-*/()]+", expr):
        return None
    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            return None
        if isinstance(node, ast.Constant) and (
            not isinstance(node.value, int) or isinstance(node.value, bool)
        ):
            return None
    return tree


def evaluate(expr: str) -> tuple[Fraction, list[int]] | None:
    """The exact value of an arithmetic expression and the numbers it uses; None if it is not
    plain integer arithmetic with + - * / and parentheses (or divides by zero). The value is the
    plain arithmetic one, rules aside: grading uses :func:`expression_steps`."""
    tree = _parse_tree(expr)
    if tree is None:
        return None
    used: list[int] = []

    def ev(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant):
            used.append(node.value)
            return Fraction(node.value)
        assert isinstance(node, ast.BinOp)
        a, b = ev(node.left), ev(node.right)
        return _exact(a, _OPS[type(node.op)], b)

    try:
        return ev(tree.body), used
    except (ZeroDivisionError, RecursionError):
        return None


def _exact(a: Fraction, op: str, b: Fraction) -> Fraction:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a / b  # ZeroDivisionError: the caller's


def expression_steps(expr: str) -> list[Step] | None:
    """The chain of steps that evaluates ``expr`` (each operation once its operands are known,
    left operand first), with exact values; None when ``expr`` is not plain integer arithmetic
    with + - * / and parentheses, or has no operation at all (a bare number)."""
    tree = _parse_tree(expr)
    if tree is None or isinstance(tree.body, ast.Constant):
        return None
    steps: list[Step] = []

    def ev(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant):
            return Fraction(node.value)
        assert isinstance(node, ast.BinOp)
        a, b = ev(node.left), ev(node.right)
        op = _OPS[type(node.op)]
        try:
            value = _exact(a, op, b)
        except ZeroDivisionError:
            value = Fraction(0)  # any stand-in: the walk rejects a division by zero anyway
        steps.append(Step(a, op, b, value))
        return value

    try:
        ev(tree.body)
    except RecursionError:
        return None
    return steps


def extract_expression(solution: str) -> str | None:
    boxed = re.findall(r"\\boxed\{([^{}]*)\}", solution)
    if boxed:
        return boxed[-1]
    lines = re.findall(r"(?im)^\s*answer\s*:\s*(.+)$", solution)
    return lines[-1] if lines else None


# numbers may carry a minus sign, so that a step below zero is read (and then refused by the
# rules, as an expression's is) rather than called unparseable
_STEP = re.compile(r"^\s*(-?\d+)\s*([-+*/×÷])\s*(-?\d+)\s*=\s*(-?\d+)\s*$")


def chain_steps(chain: str) -> list[Step] | None:
    """The steps of ``a op b = c, ...`` (separated by commas, semicolons or lines); None when
    ``chain`` is not a list of such steps."""
    parts = [x for x in re.split(r"[,;\n]", chain.strip().rstrip(".")) if x.strip()]
    matches = [_STEP.match(x) for x in parts]
    if not matches or any(m is None for m in matches):
        return None
    steps = []
    for m in matches:
        assert m is not None
        op = m[2].replace("×", "*").replace("÷", "/")
        steps.append(Step(Fraction(int(m[1])), op, Fraction(int(m[3])), Fraction(int(m[4]))))
    return steps


@dataclass(frozen=True, slots=True)
class StepCheck:
    """The walk's finding on one step: ``ok``, or what is wrong with it (``problem``)."""

    step: Step
    ok: bool
    problem: str = ""


def _whole(x: Fraction) -> int | None:
    return x.numerator if x.denominator == 1 else None


def check_steps(steps: list[Step], puzzle: Puzzle) -> tuple[bool, list[StepCheck]]:
    """``(reaches the target, checks)``: walk the steps with the numbers available (the given ones
    as a multiset, plus every earlier result); the walk stops at the first step that breaks a
    rule, so ``checks`` ends with the failing step when there is one."""
    pool = Counter(puzzle.numbers)
    checks: list[StepCheck] = []
    value: int | None = None
    for s in steps:
        a, b, c = _whole(s.a), _whole(s.b), _whole(s.result)
        if a is None or b is None or a < 1 or b < 1:
            checks.append(StepCheck(s, False, "uses a number that is not a positive whole number"))
            return False, checks
        if pool[a] < 1 or pool[b] < (2 if a == b else 1):
            missing = a if pool[a] < 1 else b
            checks.append(StepCheck(s, False, f"{missing} is not available (not given, or used)"))
            return False, checks
        right = apply(a, s.op, b)
        if right is None:
            checks.append(StepCheck(s, False, f"{a}{s.op}{b} is not allowed by the rules"))
            return False, checks
        if c != right:
            checks.append(StepCheck(s, False, f"{a}{s.op}{b} is {right}, not {_num(s.result)}"))
            return False, checks
        pool[a] -= 1
        pool[b] -= 1
        pool[c] += 1
        value = c
        checks.append(StepCheck(s, True))
    return value == puzzle.target, checks


def check_chain(chain: str, puzzle: Puzzle) -> bool | None:
    """True when the steps ``a op b = c, ...`` reach the target under the rules; None when ``chain``
    is not a list of steps at all."""
    steps = chain_steps(chain)
    return None if steps is None else check_steps(steps, puzzle)[0]


def explain_countdown(problem: Problem, response: str) -> tuple[Verdict, str]:
    """The verdict of :func:`grade_countdown` and a short verification rationale that reaches it
    by checking the answer step by step (what a verifier can do from the problem alone: the target
    and numbers are in it). Never raises."""
    puzzle = parse_problem(problem.problem)
    if puzzle is None:
        return Verdict(False, None, "bad_gold"), "The problem is not a Countdown puzzle."
    parsed = parse(response if isinstance(response, str) else "")
    if parsed.solution is None:
        return Verdict(False, None, "thought_unfinished"), (
            "The thought never ends, so there is no final answer."
        )
    expr = extract_expression(parsed.solution)
    if expr is None:
        return Verdict(False, None, "no_answer"), "The solution gives no final answer."
    steps = chain_steps(expr) if "=" in expr else expression_steps(expr)
    tree = None if steps is not None or "=" in expr else _parse_tree(expr)
    if tree is not None and isinstance(tree.body, ast.Constant):  # well formed, but no step
        return Verdict(False, expr, "wrong"), (
            f"The answer {expr.strip()} is a bare number: it reaches nothing from the numbers."
        )
    if steps is None:
        return Verdict(False, expr, "unparseable"), (
            f"The answer {expr.strip()} is not a chain of steps a op b = c or an arithmetic "
            "expression over the numbers."
        )
    ok, checks = check_steps(steps, puzzle)
    nums = " ".join(str(n) for n in puzzle.numbers)
    lines = [f"Check the answer step by step with {nums}, target {puzzle.target}."]
    for c in checks:
        lines.append(f"{c.step}: right." if c.ok else f"{c.step}: wrong, {c.problem}.")
    if checks[-1].ok:
        last = _whole(checks[-1].step.result)
        lines.append(
            f"It reaches {puzzle.target}." if ok else f"It ends at {last}, not {puzzle.target}."
        )
    return Verdict(ok, expr, "correct" if ok else "wrong"), "\n".join(lines)


def grade_countdown(problem: Problem, response: str) -> Verdict:
    """Exact verdict: the answer's steps (a chain, or an expression's) use only the given numbers
    (each at most once), keep to the rules and reach the target."""
    return explain_countdown(problem, response)[0]
