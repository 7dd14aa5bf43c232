"""Brace groups and ``\\boxed{}`` spans in LaTeX-ish model output: the one scanner every grader
uses (math normalisation, answer extraction, multiple choice).

A backslash escapes the next character, so ``\\{`` and ``\\}`` (a literal brace, as in
``\\{1, 2\\}``) never open or close a group. Every function is pure, total and linear in the
length of its input; none of them parses LaTeX beyond braces.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# \boxed or \fbox as a whole command (not \boxedsomething)
BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")


# a brace, or a backslash escaping a brace or a backslash (so \{ and \} never open or close a
# group; what follows any other backslash is no brace, so it needs no skipping)
_BRACE_OR_ESCAPE = re.compile(r"\\[\\{}]|[{}]")


def _braces(text: str, start: int = 0) -> Iterator[tuple[int, str]]:
    """``(index, "{" or "}")`` of every unescaped brace from ``start`` on."""
    for m in _BRACE_OR_ESCAPE.finditer(text, start):
        c = m.group()
        if c in "{}":
            yield m.start(), c


def brace_end(text: str, start: int) -> int:
    """Index just past the brace group opening at ``text[start] == '{'``, or -1 if unbalanced."""
    depth = 0
    for i, c in _braces(text, start):
        depth += 1 if c == "{" else -1
        if depth == 0:
            return i + 1
    return -1


def brace_pairs(text: str) -> dict[int, int]:
    """Index of every ``{`` -> index just past its matching ``}`` (one linear pass)."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for i, c in _braces(text):
        if c == "{":
            stack.append(i)
        elif stack:
            pairs[stack.pop()] = i + 1
    return pairs


def boxed_contents(text: str) -> list[tuple[int, int, str | None]]:
    """Every ``\\boxed``/``\\fbox`` in ``text`` as ``(start, end, content)``, in order.

    ``content`` is None for a box that never closes (a truncated response). ``\\boxed 5`` (no
    braces) takes the next whitespace-delimited token. Linear in the length of ``text``.
    """
    out: list[tuple[int, int, str | None]] = []
    if not isinstance(text, str):
        return out
    pairs: dict[int, int] | None = None
    for m in BOX.finditer(text):
        i = m.end()
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == "{":
            if pairs is None:
                pairs = brace_pairs(text)
            end = pairs.get(i, -1)
            if end < 0:
                out.append((m.start(), len(text), None))
            else:
                out.append((m.start(), end, text[i + 1 : end - 1]))
        elif i > m.end() and i < len(text):
            tok = re.match(r"[^\s$]+", text[i:])
            if tok:
                out.append((m.start(), i + tok.end(), tok.group(0)))
        elif i < len(text) and text[i].isalnum():  # \boxed5
            out.append((m.start(), i + 1, text[i]))
        else:
            out.append((m.start(), m.end(), None))
    return out


__all__ = ["BOX", "boxed_contents", "brace_end", "brace_pairs"]
