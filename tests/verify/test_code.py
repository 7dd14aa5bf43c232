"""Code grading: the program is built the way benchmarks mean it (the prompt's imports and
helpers, every definition of every block), HumanEval canonical solutions pass, mutants fail.
Hostile programs: test_sandbox_hostile.py."""

import ast
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reasonloop.format import render
from reasonloop.verify.code import build_program, code_blocks, grade_code
from reasonloop.verify.sandbox import bwrap_problem

needs_sandbox = pytest.mark.skipif(
    bwrap_problem() is not None, reason=f"no code sandbox here: {bwrap_problem()}"
)

TESTS = "def check(f):\n    assert f(2, 3) == 5\n    assert f(-1, 1) == 0\n"
ADD = "```python\ndef add(a, b):\n    return a + b\n```"
PROMPT = 'from typing import List\n\n\ndef total(xs: List[int]) -> int:\n    """Sum."""\n'
TOTAL = (
    "def check(candidate):\n    assert candidate([1, 2, 3]) == 6\n    assert candidate([]) == 0\n"
)


def py(code: str) -> str:
    return f"```python\n{code}\n```"


# (response, tests, entry_point, prompt, correct, reason)
TABLE = [
    (ADD, TESTS, "add", None, True, "correct"),
    (ADD.replace("python", "py"), TESTS, "add", None, True, "correct"),
    (ADD.replace("python", ""), TESTS, "add", None, True, "correct"),
    ("Here:\n" + py("def add(a, b):\n    return a - b"), TESTS, "add", None, False, "error"),
    (py("def add(a, b) return a + b"), TESTS, "add", None, False, "error"),  # a syntax error
    ("def add(a, b):\n    return a + b", TESTS, "add", None, False, "no_answer"),  # no fence
    (py("x = 1") + "\nthen\n" + ADD, TESTS, "add", None, True, "correct"),
    (ADD + "\n```text\noutput: 5\n```", TESTS, "add", None, True, "correct"),
    (ADD, "assert add(1, 1) == 2\n", None, None, True, "correct"),  # assert-style tests
    (ADD.replace("a + b", "a * b"), "assert add(1, 1) == 2\n", None, None, False, "error"),
    (py("import sys\nsys.exit(0)"), TESTS, "add", None, False, "error"),
    (  # the response's own check() is not the tests' check()
        py("def add(a, b):\n    return a + b\ndef check(f):\n    pass"),
        "def check(f):\n    assert f(1, 1) == 3\n",
        "add",
        None,
        False,
        "error",
    ),
    (py("def add(a, b):\n    while True:\n        pass"), TESTS, "add", None, False, "timeout"),
    (py("def add(a, b):\n    return bytearray(64 * 2**30)"), TESTS, "add", None, False, "memory"),
    (render("think", ADD), TESTS, "add", None, True, "correct"),
    (render(ADD, "no code here"), TESTS, "add", None, False, "no_answer"),
    ("<|begin_of_thought|>\n" + ADD, TESTS, "add", None, False, "thought_unfinished"),
    # the prompt's imports: the function restated without `from typing import List` passes
    (
        py("def total(xs: List[int]) -> int:\n    return sum(xs)"),
        TOTAL,
        "total",
        PROMPT,
        True,
        "correct",
    ),
    # ...and they do not rescue a wrong one
    (
        py("def total(xs: List[int]) -> int:\n    return len(xs)"),
        TOTAL,
        "total",
        PROMPT,
        False,
        "error",
    ),
    (  # split over two blocks: the helper is in the first
        "A helper:\n"
        + py("def _acc(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s")
        + "\nThen:\n"
        + py("def total(xs):\n    return _acc(xs)"),
        TOTAL,
        "total",
        PROMPT,
        True,
        "correct",
    ),
    (  # a later definition wins...
        py("def total(xs):\n    return 0")
        + "\nFixed:\n"
        + py("def total(xs):\n    return sum(xs)"),
        TOTAL,
        "total",
        PROMPT,
        True,
        "correct",
    ),
    (  # ...either way
        py("def total(xs):\n    return sum(xs)") + "\nOops:\n" + py("def total(xs):\n    return 0"),
        TOTAL,
        "total",
        PROMPT,
        False,
        "error",
    ),
    (  # example calls, prints, input() and __main__ blocks are not part of the program
        py(
            "def total(xs):\n    return sum(xs)\n\nprint(total([1, 2]))\nn = int(input())\n"
            "if __name__ == '__main__':\n    raise SystemExit(1)"
        ),
        TOTAL,
        "total",
        PROMPT,
        True,
        "correct",
    ),
    # module constants the function reads are
    (
        py("BASE = 0\n\ndef total(xs):\n    return BASE + sum(xs)"),
        TOTAL,
        "total",
        PROMPT,
        True,
        "correct",
    ),
    # the body of the prompt's function (HumanEval's completion style)
    (py("    return sum(xs)"), TOTAL, "total", PROMPT, True, "correct"),
    (  # a tuple stays a tuple, a set a set, a float a float, bytes bytes
        py("def f(x):\n    return (x, {x}, x / 2, {'k': [x]}, None, b'x')"),
        "def check(c):\n    assert c(3) == (3, {3}, 1.5, {'k': [3]}, None, b'x')\n"
        "    assert type(c(3)) is tuple\n",
        "f",
        None,
        True,
        "correct",
    ),
    (  # a list is not a tuple
        py("def f(x):\n    return [x, x]"),
        "def check(c):\n    assert c(3) == (3, 3)\n",
        "f",
        None,
        False,
        "error",
    ),
    (  # an exception a test expects crosses as the built-in type
        py("def f(x):\n    raise ValueError('no')"),
        "def check(c):\n    try:\n        c(1)\n    except ValueError:\n        return\n    assert False\n",
        "f",
        None,
        True,
        "correct",
    ),
    (  # a class the tests construct stays in the solution's process; its methods are called
        py(
            "class Counter:\n    def __init__(self, start):\n        self.n = start\n"
            "    def bump(self):\n        self.n += 1\n        return self.n"
        ),
        "c = Counter(4)\nassert c.bump() == 5\nassert c.bump() == 6\nassert c.n == 6\n",
        None,
        None,
        True,
        "correct",
    ),
    (  # a function bound by assignment is one the tests can call
        py("add = lambda a, b: a + b"),
        TESTS,
        "add",
        None,
        True,
        "correct",
    ),
    (py("add = lambda a, b: a + b"), "assert add(1, 1) == 2\n", None, None, True, "correct"),
    (  # an example variable named like one the tests bind is still not part of the program
        py("def f(x):\n    return x * 2\n\nx = int(input())"),
        "def check(c):\n    for x in range(3):\n        assert c(x) == 2 * x\n",
        "f",
        None,
        True,
        "correct",
    ),
    (  # module state a function declares global is kept
        py(
            "calls = 0\n\ndef add(a, b):\n    global calls\n    calls += 1\n    return a + b + calls - calls"
        ),
        TESTS,
        "add",
        None,
        True,
        "correct",
    ),
    (  # a generator is not plain data
        py("def f(n):\n    return (i for i in range(n))"),
        "def check(c):\n    assert list(c(2)) == [0, 1]\n",
        "f",
        None,
        False,
        "error",
    ),
]


@needs_sandbox
@pytest.mark.parametrize("response,tests,entry,prompt,correct,reason", TABLE)
def test_code_verdict_table(response, tests, entry, prompt, correct, reason):
    v = grade_code(response, tests, entry, prompt=prompt, timeout_s=3)
    ran = reason not in ("no_answer", "thought_unfinished")
    assert (v.correct, v.reason, v.boundary) == (correct, reason, "bwrap" if ran else None)


def test_the_table_stays_big_and_balanced():
    assert len(TABLE) >= 25
    passes = sum(row[4] for row in TABLE)
    assert 0.35 <= passes / len(TABLE) <= 0.75


def test_program_assembly():
    blocks = code_blocks(
        render(
            "thinking",
            py("import math\nx = 1; print(x)\ndef f(a):\n    return g(a) + K")
            + "\n```bash\npip install nothing\n```\n"
            + py("K = 2\ndef g(a):\n    return math.floor(a)\nf(3)"),
        )
    )
    assert len(blocks) == 2  # the bash block is not Python
    prompt = 'import os\n\n\ndef helper():\n    return 1\n\n\ndef f(a):\n    """doc"""\n'
    program = build_program(blocks, prompt, "f")
    assert program.setup == (
        'import os\n\ndef helper():\n    return 1\n\ndef f(a):\n    """doc"""\n'
    )
    assert program.response == (
        "import math\n\ndef f(a):\n    return g(a) + K\n\nK = 2\n\n"
        "def g(a):\n    return math.floor(a)"
    )
    assert program.candidate == program.setup + "\n" + program.response + "\n"
    # the tests call f, and g by name (the response's own); helper stays the prompt's
    assert program.names == ("f", "g")
    # names the tests read unbound are the response's to provide, assignments included
    tests = "from math import pi\nassert h(pi) == K\n"
    program = build_program(["h = abs\nK = 3\nJ = 4\ndef f(a):\n    return a"], None, None, tests)
    assert program.response == "h = abs\n\nK = 3\n\ndef f(a):\n    return a"
    assert program.names == ("h", "K", "f")


def test_code_blocks_of_a_response_without_a_solution_part_or_code():
    assert code_blocks(render("think", "no code")) == []
    assert code_blocks(None) == []  # type: ignore[arg-type]
    assert code_blocks(ADD) == ["def add(a, b):\n    return a + b"]


@needs_sandbox
def test_the_tests_use_the_prompts_helpers_not_the_responses():
    # HumanEval/38 style: the tests call the prompt's encode(); the response defines decode()
    prompt = (
        "def encode(s: str) -> str:\n    return s[::-1]\n\n\n"
        "def decode(s: str) -> str:\n    '''Inverse of encode.'''\n"
    )
    tests = "def check(candidate):\n    for w in ['ab', 'xyz']:\n        assert candidate(encode(w)) == w\n"
    good = py("def decode(s: str) -> str:\n    return encode(s)")
    # redefining encode() changes the response's program, not the encode() the tests call
    sneaky = py("def encode(s):\n    return s\n\ndef decode(s):\n    return s")
    assert grade_code(good, tests, "decode", prompt=prompt, timeout_s=5).correct
    assert grade_code(sneaky, tests, "decode", prompt=prompt, timeout_s=5).reason == "error"


def grade_all(items, run):
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(run, items))


def canonical_failures(rows: list[dict]) -> list[tuple[str, str]]:
    """(id, reason) of rows whose reference program, sent as a response, fails its own tests."""

    def run(row):
        resp = render("I will implement it.", py(row["solution"]))
        return grade_code(
            resp, row["tests"], row["entry_point"], prompt=row["problem"], timeout_s=20
        )

    verdicts = grade_all(rows, run)
    return [(r["id"], v.reason) for r, v in zip(rows, verdicts, strict=True) if not v.correct]


def chat_style(solution: str) -> str:
    """A canonical solution as chat models write it: imports and helpers in a first block, the
    function restated alone in a second (neither with the prompt's imports)."""
    tree = ast.parse(solution)
    imports = [s for s in tree.body if isinstance(s, ast.Import | ast.ImportFrom)]
    *helpers, last = [ast.unparse(s) for s in tree.body if s not in imports]
    text = py("\n\n".join(helpers)) + "\nand then\n" if helpers else ""
    return render("I will implement it.", text + py(last))


def chat_style_failures(rows: list[dict]) -> list[tuple[str, str]]:
    def run(row):
        return grade_code(
            chat_style(row["solution"]),
            row["tests"],
            row["entry_point"],
            prompt=row["problem"],
            timeout_s=20,
        )

    verdicts = grade_all(rows, run)
    return [(r["id"], v.reason) for r, v in zip(rows, verdicts, strict=True) if not v.correct]


MUTATIONS = [(" < ", " > "), (" + ", " - "), (" == ", " != "), ("True", "False"), (" >= ", " < ")]


def mutants_that_survive(rows: list[dict]) -> tuple[int, list[str]]:
    """Each row's canonical body with its first mutable operator flipped, graded: (how many
    mutants, ids of those that still pass)."""
    mutants = []
    for row in rows:
        for a, b in MUTATIONS:
            if a in row["answer"]:
                mutants.append((row, row["answer"].replace(a, b, 1)))
                break

    def run(item):
        row, body = item
        return grade_code(
            py(row["problem"] + body),
            row["tests"],
            row["entry_point"],
            prompt=row["problem"],
            timeout_s=10,
        )

    verdicts = grade_all(mutants, run)
    return len(mutants), [
        row["id"] for (row, _), v in zip(mutants, verdicts, strict=True) if v.correct
    ]


@needs_sandbox
def test_fixture_canonical_solutions_pass_and_mutants_fail(bench_rows: dict[str, list[dict]]):
    """On the miniature HumanEval (tests/benchdata.py): every reference passes, also restated
    chat-style without the prompt's imports, and every mutant fails."""
    rows = bench_rows["humaneval"]
    assert canonical_failures(rows) == []
    assert chat_style_failures(rows) == []
    assert mutants_that_survive(rows) == (len(rows), [])


def real_humaneval(real_data: Path) -> list[dict]:
    path = real_data / "humaneval" / "test.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()]


@needs_sandbox
@pytest.mark.slow
def test_all_humaneval_canonical_solutions_pass(real_data: Path):
    rows = real_humaneval(real_data)
    assert len(rows) == 164 and canonical_failures(rows) == []


@needs_sandbox
@pytest.mark.slow
def test_canonical_solutions_without_the_prompts_imports_split_over_blocks_pass(real_data: Path):
    rows = real_humaneval(real_data)
    assert sum("from typing import" in r["problem"] for r in rows) == 21
    assert chat_style_failures(rows) == []


@needs_sandbox
@pytest.mark.slow
def test_simple_mutants_fail(real_data: Path):
    n, survived = mutants_that_survive(real_humaneval(real_data))
    assert n > 100
    # a mutant can be equivalent or escape weak tests; almost all must be caught
    assert len(survived) <= 0.1 * n, survived
