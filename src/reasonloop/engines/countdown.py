"""The Countdown teacher: a programmatic search narrated as a long-form thought, behind the engine
protocol (engine spec ``countdown``: ``--engine countdown``, ``--teacher countdown``, a recipe's
``teacher.engine: countdown``).

The stream-of-search idea: a depth-first search over "combine two numbers" moves, narrated line by
line — the plan, each attempt, dead ends ("wait, that overshoots"), backtracking, and a final check
— then a clean solution in the unified format. ``quality="good"`` orders moves by how close they get
to the target; ``quality="poor"`` tries them in random order and gives up sooner, so that thoughts
differ in quality and some end without a solution (negatives for DPO and verifiers).

As an engine it narrates :func:`solve`'s search for the puzzle in the request's last message, so a
stage distils from it like from any model: with no model, no network and in milliseconds. Sample
``i`` of a request with seed ``s`` uses the random seed ``s + i`` (a different order of tries, hence
a different thought).

What it is not: an optimal solver (it narrates a bounded search, and may fail on a solvable
puzzle), nor a model: it only knows Countdown (any other request gets an empty reply, which grades
as ``no_answer``) and it cannot score texts.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from reasonloop.engines.base import Prompt, Request, Result, Sample, Scored
from reasonloop.errors import EngineError
from reasonloop.format import render
from reasonloop.problems.countdown import Puzzle, apply, parse_problem

SPEC = "countdown"

Item = tuple[int, str]  # value, expression that made it


@dataclass(frozen=True, slots=True)
class Trace:
    """``expression``: the solution as one expression; ``steps``: as the chain ``a op b = c`` that
    the solution's answer gives."""

    thought: str
    solution: str
    expression: str | None
    steps: tuple[str, ...]

    @property
    def text(self) -> str:
        return render(self.thought, self.solution)


def _left(state: list[Item]) -> str:
    return " ".join(str(v) for v, _ in state)


def _moves(state: list[Item]) -> list[tuple[int, int, int, str, str]]:
    out = []
    for i in range(len(state)):
        for j in range(len(state)):
            if i == j:
                continue
            (a, ea), (b, eb) = state[i], state[j]
            for op in "+-*/":
                if op in "+*" and i > j:
                    continue  # commutative: one order is enough
                r = apply(a, op, b)
                if r is None or (op in "*/" and b == 1) or r in (a, b) and op in "*/":
                    continue
                out.append((r, i, j, op, f"({ea}{op}{eb})"))
    return out


def _strip_outer(expr: str) -> str:
    if expr.startswith("(") and expr.endswith(")"):
        depth = 0
        for k, ch in enumerate(expr):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and k < len(expr) - 1:
                return expr
        return expr[1:-1]
    return expr


def solve(
    puzzle: Puzzle,
    *,
    quality: str = "good",
    rng: random.Random | None = None,
    max_lines: int = 24,
    branch: int = 3,
) -> Trace:
    """Search for ``puzzle.target`` and narrate it. Always returns a trace; ``expression`` is None
    when the search gave up."""
    rng = rng or random.Random(0)
    target = puzzle.target
    nums = " ".join(str(n) for n in puzzle.numbers)
    lines = [f"Goal: {target} from {nums}."]
    big = max(puzzle.numbers)
    if big * 2 <= target:
        lines.append("Plan: target is large, try products first.")
    else:
        lines.append("Plan: get near the target, then adjust.")
    budget = [max_lines if quality == "good" else max(6, max_lines // 2)]
    found: list[tuple[str, list[str]]] = []

    def say(line: str) -> bool:
        if budget[0] <= 0:
            return False
        lines.append(line)
        budget[0] -= 1
        return True

    def dfs(state: list[Item], depth: int, steps: list[str]) -> bool:
        moves = _moves(state)
        for r, i, j, op, expr in moves:
            if r == target:
                a, b = state[i][0], state[j][0]
                say(f"{'  ' * depth}{a}{op}{b}={r}. That is {target}!")
                found.append((expr, [*steps, f"{a}{op}{b}={r}"]))
                return True
        if len(state) <= 2:
            return False
        if quality == "good":
            moves.sort(key=lambda m: (abs(m[0] - target), m[3] != "*"))
        else:
            rng.shuffle(moves)
        for r, i, j, op, expr in moves[:branch]:
            a, b = state[i][0], state[j][0]
            rest = [s for k, s in enumerate(state) if k not in (i, j)] + [(r, expr)]
            if not say(f"{'  ' * depth}Try {a}{op}{b}={r}, left {_left(rest)}."):
                return False
            if r > target and all(v < 2 for v, _ in rest if v != r):
                say(
                    f"{'  ' * depth}Wait, {r} overshoots {target} and nothing brings it down. Back."
                )
                continue
            if dfs(rest, depth + 1, [*steps, f"{a}{op}{b}={r}"]):
                return True
            if not say(f"{'  ' * depth}Dead end. Back."):
                return False
            if depth == 0 and budget[0] > 2:
                say("Alternatively, combine a different pair first.")
        return False

    state: list[Item] = [(n, str(n)) for n in puzzle.numbers]
    if dfs(state, 0, []):
        expr, steps = found[-1]
        expr = _strip_outer(expr)
        lines.append(f"Let me check: {', '.join(steps)}. Correct.")
        solution = f"Answer: \\boxed{{{', '.join(steps)}}}"
        return Trace("\n".join(lines), solution, expr, tuple(steps))
    lines.append("I cannot find a way within my budget.")
    return Trace("\n".join(lines), "No solution found.", None, ())


def answer_only(answer: str) -> str:
    """The control format: the same final answer (the chain of steps) with no worked thought (the
    ReasonSet comparison)."""
    return render("", f"Answer: \\boxed{{{answer}}}")


class CountdownTeacher:
    """The programmatic Countdown teacher; ``quality`` is ``good`` or ``poor`` (see ``solve``)."""

    def __init__(self, *, quality: str = "good", max_lines: int = 8):
        self.spec = SPEC
        self.model = f"countdown-search-{quality}"
        self.quality = quality
        self.max_lines = max_lines

    def generate(self, requests: Sequence[Request]) -> list[Result]:
        out = []
        for req in requests:
            text = req.prompt if req.prompt is not None else (req.messages or ())[-1].content
            puzzle = parse_problem(text)
            samples = []
            for i in range(req.n):
                if puzzle is None:
                    samples.append(Sample("", 0, "stop"))
                    continue
                rng = random.Random((req.seed or 0) + i)
                trace = solve(puzzle, quality=self.quality, rng=rng, max_lines=self.max_lines)
                samples.append(Sample(trace.text, len(trace.text.split()), "stop"))
            out.append(Result(tuple(samples)))
        return out

    def score(self, prompt: Prompt, continuation: str) -> Scored:
        raise EngineError("the countdown teacher cannot score texts")

    def close(self) -> None:
        pass
