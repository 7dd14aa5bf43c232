"""The Countdown numbers game: reach a target from given numbers with + - * /, each number at most once.

The task reasonloop generates itself for its CPU demo. Intermediate results must be positive
integers (the TV-show rule: no fractions, no negatives), so every solution is a chain of steps
``a op b = c``. Difficulty grows with how many numbers there are and how large they get.

``grade_countdown`` is an exact verifier. It reads the answer from the solution's last ``\\boxed{}``
(or the last ``Answer:`` line), which is either

- a chain of steps ``a op b = c, ...``: each step must use numbers still available (the given ones,
  as a multiset, plus earlier results), follow the game's rules and be arithmetically right, and the
  last result must be the target; or
- an expression: only + - * / and parentheses over the given numbers (each at most once), evaluated
  exactly with fractions.
"""

from __future__ import annotations

import ast
import random
import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

from reasonloop.records import Problem, Verdict

SOURCE = "countdown"
# difficulty -> (how many numbers, largest number); targets are at most MAX_TARGET
DIFFICULTY: dict[str, tuple[int, int]] = {"easy": (3, 9), "medium": (4, 9), "hard": (5, 12)}
MAX_TARGET = 100


@dataclass(frozen=True, slots=True)
class Puzzle:
    numbers: tuple[int, ...]
    target: int


def problem_text(p: Puzzle) -> str:
    nums = " ".join(str(n) for n in p.numbers)
    return f"Reach {p.target} using the numbers {nums}"


def parse_problem(text: str) -> Puzzle | None:
    m = re.search(r"Reach (\d+) using the numbers ([\d ]+)", text)
    if not m:
        return None
    return Puzzle(tuple(int(x) for x in m.group(2).split()), int(m.group(1)))


def apply(a: int, op: str, b: int) -> int | None:
    """``a op b`` under the game's rules, or None when not allowed (non-integer, not positive)."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b if a > b else None
    if op == "*":
        return a * b
    if op == "/":
        return a // b if b > 1 and a % b == 0 else None
    raise ValueError(op)


def random_puzzle(
    rng: random.Random, n_numbers: int, max_number: int, *, max_target: int = MAX_TARGET
) -> Puzzle:
    """A solvable puzzle: random numbers, then a random chain of allowed steps over some of them."""
    while True:
        numbers = [rng.randint(1, max_number) for _ in range(n_numbers)]
        pool = list(numbers)
        rng.shuffle(pool)
        # use all numbers most of the time so that harder puzzles need longer chains
        k = n_numbers if rng.random() < 0.7 else rng.randint(2, n_numbers)
        value = pool[0]
        ok = True
        for b in pool[1:k]:
            ops = ["+", "-", "*", "/"]
            rng.shuffle(ops)
            for op in ops:
                a, c = (value, b) if rng.random() < 0.5 or op in "-/" else (b, value)
                r = apply(max(a, c), op, min(a, c)) if op in "-/" else apply(a, op, c)
                if r is not None and 1 <= r <= max_target * 4:
                    value = r
                    break
            else:
                ok = False
                break
        if ok and 10 <= value <= max_target and value not in numbers:
            return Puzzle(tuple(sorted(numbers)), value)


def make_problems(
    count: int,
    *,
    n_numbers: int,
    max_number: int,
    seed: int,
    split: str = "train",
    max_target: int = MAX_TARGET,
) -> list[Problem]:
    """``count`` distinct puzzles as Problems; ids carry the split, size and seed."""
    rng = random.Random(f"{split}-{n_numbers}-{max_number}-{seed}")
    seen: set[Puzzle] = set()
    out: list[Problem] = []
    repeats = 0
    while len(out) < count:
        p = random_puzzle(rng, n_numbers, max_number, max_target=max_target)
        if p in seen:
            repeats += 1
            if repeats > 20 * count + 1000:
                raise ValueError(
                    f"asked for {count} distinct puzzles of {n_numbers} numbers up to {max_number}, "
                    f"found only {len(out)}"
                )
            continue
        seen.add(p)
        out.append(
            Problem(
                id=f"countdown-{split}-{n_numbers}x{max_number}-{seed}-{len(out)}",
                domain="puzzle",
                problem=problem_text(p),
                answer=str(p.target),
                source=SOURCE,
                level=str(n_numbers),
            )
        )
    return out


def countdown_set(
    difficulty: str, count: int = 100, *, seed: int = 0, split: str = "test"
) -> list[Problem]:
    """A generated Countdown set by difficulty name (``easy``, ``medium``, ``hard``)."""
    if difficulty not in DIFFICULTY:
        raise ValueError(f"difficulty must be one of {list(DIFFICULTY)}, got {difficulty!r}")
    n, m = DIFFICULTY[difficulty]
    return make_problems(count, n_numbers=n, max_number=m, seed=seed, split=split)


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
    from reasonloop.format import parse

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
