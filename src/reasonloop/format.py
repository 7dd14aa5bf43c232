"""The response format: a long thought, then a clean solution.

    <|begin_of_thought|>
    ...thinking...
    <|end_of_thought|>

    <|begin_of_solution|>
    ...final solution ending in \\boxed{answer}...
    <|end_of_solution|>

``parse`` splits a response into its parts and never raises; ``render`` writes them back.
Converters bring R1-style (``<think>…</think>`` then the answer) and QwQ-style (thinking only)
responses into this shape. A response whose thought never ended has no solution and so no answer.
"""

from __future__ import annotations

from dataclasses import dataclass

BEGIN_THOUGHT = "<|begin_of_thought|>"
END_THOUGHT = "<|end_of_thought|>"
BEGIN_SOLUTION = "<|begin_of_solution|>"
END_SOLUTION = "<|end_of_solution|>"
MARKERS: tuple[str, ...] = (BEGIN_THOUGHT, END_THOUGHT, BEGIN_SOLUTION, END_SOLUTION)

SYSTEM_PROMPT = (
    "Your role as an assistant involves thoroughly exploring questions through a systematic long "
    "thinking process before providing the final precise and accurate solution. Think step by step: "
    "analyse the question, summarise what is known, brainstorm approaches, try them, verify each "
    "step, and when something is wrong, go back and fix it. Structure your response in two parts, "
    f"Thought and Solution. Write the thought as {BEGIN_THOUGHT} followed by your reasoning, then "
    f"{END_THOUGHT}. Then write the solution as {BEGIN_SOLUTION} followed by a clean, logical and "
    f"concise final solution, then {END_SOLUTION}. For math, put the final answer in \\boxed{{}}; "
    "for multiple choice, end with 'Answer: X' where X is the letter; for code, give one fenced "
    "code block."
)


@dataclass(frozen=True, slots=True)
class Parsed:
    """The parts of a response.

    ``formatted``: the response used this format's markers at all.
    ``thought_closed``: a thought was opened and closed (or none was opened).
    ``needs_solution``: the thought is complete but no solution part exists (QwQ-style); a model
    should complete it from the thought.
    ``solution`` is None when there is no answer-bearing part (unfinished thought).
    """

    thought: str | None
    solution: str | None
    formatted: bool
    thought_closed: bool
    solution_closed: bool
    needs_solution: bool = False


def parse(text: str) -> Parsed:
    """Split ``text`` into thought and solution.

    - With this format's markers: thought between the thought markers, solution between the
      solution markers (or everything after the end of thought when the solution markers are
      missing). An opened but unclosed thought leaves ``solution=None``.
    - R1-style ``<think>`` tags are understood too (see :func:`from_r1`).
    - Plain text with no markers is all solution (a plain chat answer).
    """
    if not isinstance(text, str):
        return Parsed(None, None, False, False, False)
    if BEGIN_THOUGHT in text or END_THOUGHT in text or BEGIN_SOLUTION in text:
        return _parse_markers(text)
    if "<think>" in text or "</think>" in text:
        return _parse_r1(text)
    return Parsed(None, text.strip(), False, True, True)


def _parse_markers(text: str) -> Parsed:
    start = text.find(BEGIN_THOUGHT)
    end = text.find(END_THOUGHT)
    if start >= 0 and end < 0:
        return Parsed(text[start + len(BEGIN_THOUGHT) :].strip(), None, True, False, False)
    if end >= 0:
        t0 = start + len(BEGIN_THOUGHT) if 0 <= start < end else 0
        thought: str | None = text[t0:end].strip()
        rest = text[end + len(END_THOUGHT) :]
    else:
        thought = None
        rest = text
    s = rest.find(BEGIN_SOLUTION)
    if s >= 0:
        body = rest[s + len(BEGIN_SOLUTION) :]
        e = body.find(END_SOLUTION)
        closed = e >= 0
        solution = (body[:e] if closed else body).strip()
    else:
        e = rest.find(END_SOLUTION)
        closed = e >= 0
        solution = (rest[:e] if closed else rest).strip()
    return Parsed(
        thought,
        solution,
        True,
        True,
        closed,
        needs_solution=bool(thought) and not solution,
    )


def _parse_r1(text: str) -> Parsed:
    end = text.rfind("</think>")
    if end < 0:
        start = text.find("<think>")
        return Parsed(text[start + len("<think>") :].strip(), None, False, False, False)
    start = text.find("<think>")
    t0 = start + len("<think>") if 0 <= start < end else 0
    thought = text[t0:end].strip()
    solution = text[end + len("</think>") :].strip()
    return Parsed(thought, solution, False, True, bool(solution), needs_solution=not solution)


def render(thought: str, solution: str) -> str:
    """The canonical text of a response in this format."""
    return (
        f"{BEGIN_THOUGHT}\n{thought.strip()}\n{END_THOUGHT}\n\n"
        f"{BEGIN_SOLUTION}\n{solution.strip()}\n{END_SOLUTION}"
    )


def from_r1(text: str) -> Parsed:
    """Convert an R1-style response (``<think>…</think>`` then the answer).

    A response that opened ``<think>`` and never closed it has no solution.
    """
    return _parse_r1(text)


def from_qwq(text: str) -> Parsed:
    """Convert QwQ-style text: all thinking, no separate solution part.

    The thought is kept whole and the solution left empty, flagged ``needs_solution`` so that a
    model given the thought can write it (``reasonloop distill`` does).
    """
    stripped = text.strip() if isinstance(text, str) else ""
    return Parsed(stripped, None, False, True, False, needs_solution=bool(stripped))


def to_unified(text: str, style: str = "auto") -> Parsed:
    """Parse ``text`` of a given style: ``unified``, ``r1``, ``qwq`` or ``auto`` (detect)."""
    if style == "r1":
        return from_r1(text)
    if style == "qwq":
        return from_qwq(text)
    return parse(text)


def strip_markers(text: str) -> str:
    """``text`` without any of the format's markers (for display and n-gram statistics)."""
    for marker in MARKERS:
        text = text.replace(marker, "")
    return text
