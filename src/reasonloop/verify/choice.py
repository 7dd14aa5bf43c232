"""Multiple-choice grading: find the letter a response chose and compare it to the gold letter.

Recognised shapes, strongest first (the last occurrence of the strongest shape wins):
``\\boxed{C}`` / ``\\boxed{\\text{(C)}}``; ``Answer: C`` / ``the answer is (C)`` / ``**Answer:** C``;
a final line that is just ``C``, ``(C)``, ``C)`` or ``C.``; a lone ``(C)`` anywhere; or the full
text of one choice as the boxed / final answer. A bare capital letter inside a sentence ("A good
idea") is never read as a choice. Letters beyond the number of choices are ignored.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from reasonloop.format import parse
from reasonloop.records import Verdict
from reasonloop.verify.textspan import boxed_contents

LETTERS = string.ascii_uppercase[:10]  # A..J

_WRAP = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textit)\s*\{([^{}]*)\}")
_ANSWER = re.compile(
    r"(?:final\s+answer|correct\s+(?:answer|option|choice)|answer|option|choice)"
    r"\s*(?:is|:|=|(?:would|should|must|will)\s+be)?\s*[:\-]?\s*"
    r"(?:\*\*|\$|\\\(|\s)*"
    r"(?:option\s+|choice\s+)?"
    r"\(?\[?\s*\b([A-J])\b\s*\)?\]?",
    re.IGNORECASE,
)
_PAREN = re.compile(r"\(([A-J])\)")
_LINE = re.compile(r"^\W*\(?([A-J])(?:\)|\.|:)?\W*$")


def _unwrap(s: str) -> str:
    prev = None
    while prev != s:
        prev = s
        s = _WRAP.sub(r"\1", s)
    return s.strip().strip("$").strip()


def _norm_text(s: str) -> str:
    s = _unwrap(s).lower()
    s = re.sub(r"[\s$*`]+", " ", s)
    return s.strip(" .;:!")


def _letter_of(s: str, valid: str) -> str | None:
    s = _unwrap(s).strip().strip("*").strip()
    m = re.fullmatch(r"\(?\s*([A-J])\s*\)?\.?", s)
    if m and m.group(1) in valid:
        return m.group(1)
    return None


def _letter_by_text(s: str, choices: Sequence[str] | None, valid: str) -> str | None:
    if not choices:
        return None
    target = _norm_text(s)
    if not target:
        return None
    hits = [LETTERS[i] for i, c in enumerate(choices) if _norm_text(c) == target]
    return hits[0] if len(hits) == 1 and hits[0] in valid else None


def extract_choice(response: str, choices: Sequence[str] | None = None) -> str | None:
    """The letter a response chose, or None. Pure and total."""
    if not isinstance(response, str):
        return None
    part = parse(response).solution
    if part is None or not part.strip():
        return None
    valid = LETTERS[: len(choices)] if choices else LETTERS[:10]
    boxed = [content for _, _, content in boxed_contents(part) if content is not None]
    if boxed:
        last = boxed[-1]
        letter = _letter_of(last, valid) or _letter_by_text(last, choices, valid)
        if letter:
            return letter
        m = _ANSWER.search(_unwrap(last))
        if m and m.group(1).upper() in valid:
            return m.group(1).upper()
    plain = _unwrap(part)
    answers = [m for m in _ANSWER.finditer(plain) if m.group(1) in valid]
    # "answer" matched case-insensitively, the letter must be a capital: "the answer is a prime" is no choice.
    answers = [m for m in answers if m.group(1).isupper()]
    if answers:
        return answers[-1].group(1)
    lines = [ln.strip() for ln in plain.splitlines() if ln.strip()]
    if lines:
        m = _LINE.match(lines[-1])
        if m and m.group(1) in valid:
            return m.group(1)
        by_text = _letter_by_text(
            re.sub(r"^(?:final\s+)?answer\s*[:\-]\s*", "", lines[-1], flags=re.I), choices, valid
        )
        if by_text:
            return by_text
    if lines:
        last_line = [m.group(1) for m in _PAREN.finditer(lines[-1]) if m.group(1) in valid]
        if len(set(last_line)) == 1:
            return last_line[-1]
    parens = [m.group(1) for m in _PAREN.finditer(plain) if m.group(1) in valid]
    if parens and len(set(parens)) == 1:
        return parens[-1]
    return None


def grade_choice(gold: str, response: str, choices: Sequence[str] | None = None) -> Verdict:
    """Grade a multiple-choice response. ``gold`` is a letter (or the text of a choice)."""
    valid = LETTERS[: len(choices)] if choices else LETTERS
    gold_letter = _letter_of(gold, valid) if isinstance(gold, str) else None
    if gold_letter is None and isinstance(gold, str):
        gold_letter = _letter_by_text(gold, choices, valid)
    if gold_letter is None:
        return Verdict(False, None, "bad_gold")
    if not isinstance(response, str):
        return Verdict(False, None, "no_answer")
    parsed = parse(response)
    if parsed.solution is None:
        return Verdict(False, None, "thought_unfinished")
    letter = extract_choice(response, choices)
    if letter is None:
        return Verdict(False, None, "no_answer")
    return Verdict(letter == gold_letter, letter, "correct" if letter == gold_letter else "wrong")
