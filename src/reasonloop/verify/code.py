"""Code grading: build the program the way benchmarks mean it, and run the tests against it
behind the sandbox (:mod:`reasonloop.verify.sandbox`).

The program, in the spirit of the evalplus and bigcode harnesses:

1. the prompt's imports and helper definitions, when the prompt is Python (HumanEval's are: a
   response that restates the function without the prompt's ``from typing import List`` works);
2. every definition the response makes across the fenced code blocks of its solution part, in
   order, so a later one wins (a helper defined in an earlier block is kept): imports, functions,
   classes, and the assignments those or the tests use. Example calls, prints, top-level loops and
   ``if __name__ == "__main__":`` blocks are left out. A block that is not Python is skipped; a
   block that only parses after the prompt (the body of the prompt's function, HumanEval's
   completion style) completes the prompt;
3. the tests: HumanEval's ``check(candidate)`` is called with the entry point; assert-style tests
   call the response's functions by name.

The tests run in their own process and see the response's functions only as stubs that return
plain data (see :mod:`reasonloop.verify.harness`), so a pass cannot be printed, exited or
``__eq__``-ed into existence.

What it does not do: run programs that read stdin and print (competitive-programming style), or
tests that need a response's objects to support operators (``len(obj)``, ``obj == obj2``).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from reasonloop.format import parse
from reasonloop.records import Verdict
from reasonloop.verify.sandbox import Limits, run_tests

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.S)
_PYTHON_TAGS = ("python", "py", "python3", "")
_DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_ASSIGNMENTS = (ast.Assign, ast.AnnAssign, ast.AugAssign)

# outcome of the sandbox's run → (correct, verdict reason)
_REASONS = {
    "pass": (True, "correct"),
    "fail": (False, "error"),
    "memory": (False, "memory"),
    "timeout": (False, "timeout"),
    "error": (False, "error"),
}


def code_blocks(text: str) -> list[str]:
    """The fenced code blocks of the solution part, in order: the Python ones (tagged python, py,
    python3 or untagged), or every block when none is."""
    if not isinstance(text, str):
        return []
    part = parse(text).solution
    if not part:
        return []
    blocks = [(lang.lower(), body.strip("\n")) for lang, body in _FENCE.findall(part)]
    python = [body for lang, body in blocks if lang in _PYTHON_TAGS]
    return [b for b in (python or [body for _, body in blocks]) if b.strip()]


@dataclass(frozen=True, slots=True)
class Program:
    """What runs: ``candidate`` in the candidate's process, ``setup`` also in the tester's;
    ``names`` are the response's functions and classes the tests may call."""

    candidate: str
    setup: str
    response: str  # the response's definitions alone (the verdict's ``extracted``)
    names: tuple[str, ...]


def build_program(
    blocks: list[str], prompt: str | None, entry_point: str | None, tests: str = ""
) -> Program:
    """The program of a response's code ``blocks`` for a problem (see the module docstring).

    Names the tests read (and ``entry_point``) count as used, so ``add = lambda a, b: a + b``
    is kept and callable like a function.
    """
    prompt_tree = _parse(prompt) if prompt else None
    setup, prompt_names = _definitions(prompt_tree.body) if prompt_tree else ([], [])
    statements: list[ast.stmt] = []
    for block in blocks:
        tree = _parse(block)
        if tree is None and prompt_tree is not None:
            tree = _parse(prompt.rstrip("\n") + "\n" + block)  # a body completing the prompt
        if tree is not None:
            statements += tree.body
    tests_tree = _parse(tests) if tests else None
    used = _free_names(tests_tree) if tests_tree else set()
    used |= {entry_point} if entry_point else set()
    parts, defined = _definitions(statements, used)
    called = [entry_point] if entry_point else []
    called += [n for n in defined if n not in prompt_names and n != entry_point]
    return Program(
        candidate="\n\n".join(setup + parts) + "\n",
        setup="\n\n".join(setup) + "\n",
        response="\n\n".join(parts),
        names=tuple(called),
    )


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _definitions(
    statements: list[ast.stmt], used: set[str] = frozenset()
) -> tuple[list[str], list[str]]:
    """The definitions among top-level ``statements`` as source, in order, and the names they
    define that may be called: functions, classes, and assigned names in ``used``.

    Assignments are kept when a kept definition or assignment, or ``used``, reads a name they
    bind.
    """
    kept = [s for s in statements if isinstance(s, _DEFINITIONS)]
    pending = [s for s in statements if isinstance(s, _ASSIGNMENTS)]
    read = set(used).union(*(_free_names(s) for s in kept))
    changed = True
    while changed:
        changed = False
        for stmt in list(pending):
            if _binds(stmt) & read:
                kept.append(stmt)
                pending.remove(stmt)
                read |= _free_names(stmt)
                changed = True
    order = {id(s): i for i, s in enumerate(statements)}
    kept.sort(key=lambda s: order[id(s)])
    code = []
    for stmt in kept:
        try:
            code.append(ast.unparse(stmt))
        except (RecursionError, ValueError, MemoryError):
            continue
    named = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    defined: dict[str, None] = {}
    for stmt in kept:
        if isinstance(stmt, named):
            defined[stmt.name] = None
        elif isinstance(stmt, _ASSIGNMENTS):
            defined.update(dict.fromkeys(sorted(_binds(stmt) & set(used))))
    return code, list(defined)


def _free_names(node: ast.AST) -> set[str]:
    """Names ``node`` reads but does not bind itself (roughly: nested scopes are not told
    apart; ``global`` names count as read from the module)."""
    bound, declared = set(), set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
            bound.add(n.id)
        elif isinstance(n, ast.arg):
            bound.add(n.arg)
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and n is not node:
            bound.add(n.name)
        elif isinstance(n, ast.alias):
            bound.add((n.asname or n.name).split(".")[0])
        elif isinstance(n, ast.Global):
            declared.update(n.names)
    reads = {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }
    return (reads - bound) | (declared & (reads | bound))


def _binds(stmt: ast.stmt) -> set[str]:
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def grade_code(
    response: str,
    tests: str,
    entry_point: str | None,
    *,
    prompt: str | None = None,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
    boundary: str = "auto",
) -> Verdict:
    """Verdict reasons: correct, no_answer (no code), thought_unfinished, error (a test failed,
    the code raised or did not load), timeout, memory. ``boundary``: see
    :func:`~reasonloop.verify.sandbox.resolve_boundary`; the verdict records the one used.

    Never raises on the response; raises
    :class:`~reasonloop.verify.sandbox.SandboxUnavailable` where code cannot run safely.
    """
    if isinstance(response, str) and parse(response).solution is None:
        return Verdict(False, None, "thought_unfinished")
    blocks = code_blocks(response)
    if not blocks:
        return Verdict(False, None, "no_answer")
    program = build_program(blocks, prompt, entry_point, tests or "")
    run = run_tests(
        program.candidate,
        program.setup,
        tests or "",
        entry_point,
        program.names,
        limits=Limits(timeout_s=timeout_s, memory_mb=memory_mb),
        boundary=boundary,
    )
    correct, reason = _REASONS[run.outcome]
    return Verdict(correct, program.response or blocks[-1], reason, boundary=run.boundary)
