"""Code grading in the sandbox: HumanEval canonical solutions pass, mutants fail, hostile code is
contained."""

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reasonloop.format import render
from reasonloop.verify.code import extract_code, grade_code
from reasonloop.verify.sandbox import run_python

TESTS = "def check(f):\n    assert f(2, 3) == 5\n    assert f(-1, 1) == 0\n"

# (response, tests, entry_point, correct, reason)
TABLE = [
    ("```python\ndef add(a, b):\n    return a + b\n```", TESTS, "add", True, "correct"),
    ("```py\ndef add(a, b):\n    return a + b\n```", TESTS, "add", True, "correct"),
    ("```\ndef add(a, b):\n    return a + b\n```", TESTS, "add", True, "correct"),
    ("Here:\n```python\ndef add(a, b):\n    return a - b\n```", TESTS, "add", False, "error"),
    ("```python\ndef add(a, b) return a + b\n```", TESTS, "add", False, "error"),  # syntax error
    ("def add(a, b):\n    return a + b", TESTS, "add", False, "no_answer"),  # no fence
    (
        "```python\nx = 1\n```\nthen\n```python\ndef add(a, b):\n    return a + b\n```",
        TESTS,
        "add",
        True,
        "correct",
    ),
    (
        "```python\ndef add(a, b):\n    return a + b\n```\n```text\noutput: 5\n```",
        TESTS,
        "add",
        True,
        "correct",
    ),
    (
        "```python\ndef add(a, b):\n    return a + b\n```",
        "assert add(1, 1) == 2\n",
        None,
        True,
        "correct",
    ),
    (
        "```python\ndef add(a, b):\n    return a * b\n```",
        "assert add(1, 1) == 2\n",
        None,
        False,
        "error",
    ),
    (
        "```python\nimport sys\nsys.exit(0)\n```",
        TESTS,
        "add",
        False,
        "error",
    ),  # exits before the checks
    (
        "```python\ndef add(a, b):\n    return a + b\ndef check(f):\n    pass\n```",
        "def check(f):\n    assert f(1, 1) == 3\n",
        "add",
        False,
        "error",
    ),
    ("```python\nwhile True:\n    pass\n```", TESTS, "add", False, "timeout"),
    ("```python\nx = bytearray(64 * 2**30)\n```", TESTS, "add", False, "memory"),
    (
        render("think", "```python\ndef add(a, b):\n    return a + b\n```"),
        TESTS,
        "add",
        True,
        "correct",
    ),
    (
        render("```python\ndef add(a, b):\n    return a + b\n```", "no code here"),
        TESTS,
        "add",
        False,
        "no_answer",
    ),
    (
        "<|begin_of_thought|>\n```python\ndef add(a, b):\n    return a + b\n```",
        TESTS,
        "add",
        False,
        "thought_unfinished",
    ),
]


@pytest.mark.parametrize("response,tests,entry,correct,reason", TABLE)
def test_code_verdict_table(response, tests, entry, correct, reason):
    v = grade_code(response, tests, entry, timeout_s=3)
    assert (v.correct, v.reason) == (correct, reason)


def test_body_only_completion_gets_the_prompt():
    prompt = 'def add(a, b):\n    """Add."""\n'
    v = grade_code("```python\n    return a + b\n```", TESTS, "add", prompt=prompt, timeout_s=3)
    assert v.correct
    assert extract_code("```python\n    return a + b\n```") == "    return a + b"


def canonical_failures(rows: list[dict]) -> list[str]:
    """Ids of rows whose reference program, sent as a response, does not pass its own tests."""

    def run(row):
        resp = render("I will implement it.", f"```python\n{row['solution']}\n```")
        return grade_code(
            resp, row["tests"], row["entry_point"], prompt=row["problem"], timeout_s=20
        )

    with ThreadPoolExecutor(4) as pool:
        verdicts = list(pool.map(run, rows))
    return [r["id"] for r, v in zip(rows, verdicts, strict=True) if not v.correct]


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
            f"```python\n{row['problem'] + body}\n```",
            row["tests"],
            row["entry_point"],
            timeout_s=10,
        )

    with ThreadPoolExecutor(4) as pool:
        verdicts = list(pool.map(run, mutants))
    return len(mutants), [
        row["id"] for (row, _), v in zip(mutants, verdicts, strict=True) if v.correct
    ]


def test_fixture_canonical_solutions_pass_and_mutants_fail(bench_rows: dict[str, list[dict]]):
    """On the miniature HumanEval (tests/benchdata.py): every reference passes, every mutant fails."""
    rows = bench_rows["humaneval"]
    assert canonical_failures(rows) == []
    assert mutants_that_survive(rows) == (len(rows), [])


def real_humaneval(real_data: Path) -> list[dict]:
    path = real_data / "humaneval" / "test.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.mark.slow
def test_all_humaneval_canonical_solutions_pass(real_data: Path):
    rows = real_humaneval(real_data)
    assert len(rows) == 164 and canonical_failures(rows) == []


@pytest.mark.slow
def test_simple_mutants_fail(real_data: Path):
    n, survived = mutants_that_survive(real_humaneval(real_data))
    assert n > 100
    # a mutant can be equivalent or escape weak tests; almost all must be caught
    assert len(survived) <= 0.1 * n, survived


def stray_processes():
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if "reasonloop-sandbox" in ln or "program.py" in ln]


# hostile program -> (what must hold of the result)
HOSTILE = {
    "infinite loop": ("while True:\n    pass", lambda r: r.timed_out),
    "64 GiB": ("x = bytearray(64 * 2**30)", lambda r: r.memory_exceeded),
    "fork bomb": ("import os\nwhile True:\n    os.fork()", lambda r: not r.success),
    "subprocess bomb": (
        "import subprocess\nwhile True:\n    subprocess.Popen(['sleep', '100'])",
        lambda r: not r.success,
    ),
    "socket": (
        "import socket\ns = socket.socket()\ns.connect(('127.0.0.1', 22))",
        lambda r: not r.success,
    ),
    "100 MB of output": (
        "import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 1_000_000)",
        lambda r: r.output_truncated and len(r.stdout) <= 64_000,
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_code_is_contained_fast(name):
    src, check = HOSTILE[name]
    r = run_python(src, timeout_s=3)
    assert check(r), r
    assert r.duration_s < 8
    assert stray_processes() == []


def test_writing_outside_the_sandbox_is_refused(tmp_path):
    target = tmp_path / "escaped.txt"
    r = run_python(f"open({str(target)!r}, 'w').write('x')", timeout_s=3)
    assert not r.success and "not allowed" in r.stderr
    assert not target.exists()
    victim = tmp_path / "keep.txt"
    victim.write_text("mine")
    r = run_python(f"import os\nos.remove({str(victim)!r})", timeout_s=3)
    assert not r.success and victim.read_text() == "mine"
    inside = run_python(
        "open('mine.txt', 'w').write('ok')\nprint(open('mine.txt').read())", timeout_s=3
    )
    assert inside.success and inside.stdout.strip() == "ok"
