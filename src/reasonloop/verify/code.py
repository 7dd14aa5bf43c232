"""Code grading: run the solution's last fenced code block against the tests in the sandbox.

HumanEval style: when the block does not define ``entry_point`` but the prompt does (the model wrote
only the body), the prompt is prepended. Then the tests run, then ``check(entry_point)`` when the
tests define ``check``; plain ``assert`` tests work too. A pass needs a clean exit *and* a sentinel
printed after the checks, so ``sys.exit(0)`` before the tests is not a pass.
"""

from __future__ import annotations

import re
import secrets

from reasonloop.format import parse
from reasonloop.records import Verdict
from reasonloop.verify.sandbox import run_python

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.S)


def extract_code(text: str) -> str | None:
    """The last fenced code block of the solution part (python blocks preferred), or None."""
    if not isinstance(text, str):
        return None
    part = parse(text).solution
    if not part:
        return None
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(part)]
    if not blocks:
        return None
    py = [b for lang, b in blocks if lang in ("python", "py", "python3")]
    return (py or [b for _, b in blocks])[-1].strip("\n") or None


def build_program(
    code: str, tests: str, entry_point: str | None, prompt: str | None, sentinel: str
) -> str:
    defines = entry_point and re.search(
        rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.M
    )
    body = code if defines or not prompt else prompt + code
    parts = [body, "", tests, ""]
    if entry_point and re.search(r"^\s*def\s+check\s*\(", tests, re.M):
        parts.append(f"check({entry_point})")
    parts.append(f"print({sentinel!r})")
    return "\n".join(parts) + "\n"


def grade_code(
    response: str,
    tests: str,
    entry_point: str | None,
    *,
    prompt: str | None = None,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
) -> Verdict:
    """Verdict reasons: correct, no_answer (no code), thought_unfinished, error, timeout, memory."""
    if isinstance(response, str) and parse(response).solution is None:
        return Verdict(False, None, "thought_unfinished")
    code = extract_code(response)
    if code is None:
        return Verdict(False, None, "no_answer")
    sentinel = "reasonloop-passed-" + secrets.token_hex(8)
    result = run_python(
        build_program(code, tests or "", entry_point, prompt, sentinel),
        timeout_s=timeout_s,
        memory_mb=memory_mb,
    )
    if result.timed_out:
        return Verdict(False, code, "timeout")
    if result.memory_exceeded:
        return Verdict(False, code, "memory")
    ok = result.success and sentinel in result.stdout
    return Verdict(ok, code, "correct" if ok else "error")
