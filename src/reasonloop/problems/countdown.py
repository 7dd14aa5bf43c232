"""The Countdown numbers game: reach a target from given numbers with + - * /, each number at most once.

A task reasonloop generates itself (the CPU demo's, and ``--problems countdown-easy|medium|hard``).
Intermediate results must be positive integers (the TV-show rule: no fractions, no negatives), so
every solution is a chain of steps ``a op b = c``. Difficulty grows with how many numbers there are
and how large they get. The exact checker is :mod:`reasonloop.verify.countdown`; the programmatic
search teacher is the ``countdown`` engine (:mod:`reasonloop.engines.countdown`).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from reasonloop.errors import ConfigError
from reasonloop.records import Problem

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
        raise ConfigError(
            f"must be one of {list(DIFFICULTY)}, got {difficulty!r}", field="difficulty"
        )
    n, m = DIFFICULTY[difficulty]
    return make_problems(count, n_numbers=n, max_number=m, seed=seed, split=split)
