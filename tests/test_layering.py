"""The import direction of reasonloop's packages, checked over the source (an AST walk).

A module may import only from its own level or below (lowest first), there is no cycle between
packages, and an import of reasonloop's own modules inside a function stays only where it defers a
heavy optional dependency (torch, transformers, llama_cpp, trl): the line says so with a
``# local: REASON`` comment (on the import line or the line above). Every import counts, module
level or function-local, ``TYPE_CHECKING`` blocks included, so that the table is what a reader sees.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "reasonloop"

# Lowest first. ``reasonloop`` is the package root (``__init__`` holds only ``__version__``) and
# ``prompts`` holds the packaged prompt texts: both are leaves at the bottom.
LEVELS: tuple[tuple[str, ...], ...] = (
    ("reasonloop", "prompts", "records", "format", "errors", "progress", "terminal", "options"),
    ("problems",),
    ("verify",),
    ("engines",),
    ("store",),
    ("generate", "explore", "distill", "rel", "curate", "scale"),
    ("train", "search", "evaluate", "comparison"),
    ("recipe", "view", "demo"),
    ("cli",),
)
LEVEL = {pkg: i for i, names in enumerate(LEVELS) for pkg in names}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _is_package(module: str) -> bool:
    return (SRC.parent / module.replace(".", "/") / "__init__.py").exists()


class _Imports(ast.NodeVisitor):
    """(line, target module, inside a function) for every import of reasonloop's modules."""

    def __init__(self, module: str, is_package: bool):
        self.module = module
        self.is_package = is_package
        self.depth = 0
        self.found: list[tuple[int, str, bool]] = []

    def _function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "reasonloop" or alias.name.startswith("reasonloop."):
                self.found.append((node.lineno, alias.name, self.depth > 0))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:  # relative: resolve against this module's package
            parts = self.module.split(".")
            keep = len(parts) - node.level + (1 if self.is_package else 0)
            base = ".".join(parts[:keep] + ([base] if base else []))
        if not (base == "reasonloop" or base.startswith("reasonloop.")):
            return
        if base == "reasonloop":  # ``from reasonloop import terminal``: the names are modules
            for alias in node.names:
                target = f"reasonloop.{alias.name}"
                if not (SRC / alias.name).exists() and not (SRC / f"{alias.name}.py").exists():
                    target = "reasonloop"
                self.found.append((node.lineno, target, self.depth > 0))
        else:
            self.found.append((node.lineno, base, self.depth > 0))


def _walk() -> list[tuple[str, int, str, str, bool, str]]:
    """(file, line, from package, to module, function-local, source line) for every import."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        visitor = _Imports(module, path.name == "__init__.py")
        visitor.visit(ast.parse(text, filename=str(path)))
        rel = str(path.relative_to(SRC))
        for line, target, local in visitor.found:
            context = lines[line - 1] + "\n" + (lines[line - 2] if line >= 2 else "")
            out.append((rel, line, _package(module), target, local, context))
    return out


IMPORTS = _walk()


def test_every_package_has_a_level():
    packages = {p.stem if p.is_file() else p.name for p in SRC.iterdir()}
    packages = {p for p in packages if not p.startswith(("_", ".")) and p != "py"}
    missing = sorted(p for p in packages if p not in LEVEL)
    assert not missing, f"packages with no level in LEVELS: {missing}"


def test_imports_point_down():
    against = [
        f"{file}:{line}: {src} (level {LEVEL[src]}) -> {target} (level {LEVEL[_package(target)]})"
        for file, line, src, target, _, _ in IMPORTS
        if LEVEL[_package(target)] > LEVEL[src]
    ]
    assert not against, "imports against the direction table:\n" + "\n".join(against)


def test_no_cycle_between_packages():
    graph: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], str] = {}
    for file, line, src, target, _, _ in IMPORTS:
        dst = _package(target)
        if dst != src:
            graph[src].add(dst)
            where.setdefault((src, dst), f"{file}:{line}")
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                loop = [*stack[stack.index(nxt) :], nxt]
                cycles.append(
                    " -> ".join(loop)
                    + "  ("
                    + ", ".join(where[(a, b)] for a, b in zip(loop, loop[1:], strict=False))
                    + ")"
                )
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "cycles between packages:\n" + "\n".join(cycles)


def test_local_imports_say_why():
    bare = [
        f"{file}:{line}: import of {target} inside a function without a '# local: ...' reason"
        for file, line, _, target, local, context in IMPORTS
        if local and "# local:" not in context
    ]
    assert not bare, "function-local imports without a reason:\n" + "\n".join(bare)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import reasonloop.verify.math\n", [(1, "reasonloop.verify.math", False)]),
        ("def f():\n    from reasonloop import terminal\n", [(2, "reasonloop.terminal", True)]),
        ("from . import base\n", [(1, "reasonloop.engines", False)]),
        ("import json\nfrom collections import Counter\n", []),
    ],
)
def test_the_walk_sees_every_form_of_import(source, expected):
    visitor = _Imports("reasonloop.engines", True)
    visitor.visit(ast.parse(source))
    assert visitor.found == expected
