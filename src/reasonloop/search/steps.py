"""Reasoning steps: split a written response into steps, and cut generation into steps.

Splitting (:func:`split_steps`): when the text marks its steps explicitly (lines starting
``Step 1:``, ``**Step 2.**``, ``Step 3)``), each marker starts a step and any text before the first
marker is a step of its own; otherwise steps are separated by blank lines. Steps are stripped and
empty ones dropped. :func:`response_steps` does the same on a whole response after turning the
format's markers into step boundaries (so the thought's last step and the solution's first never
merge, and no marker is part of a step). Reward models (PRM labels, PRM scoring) should use
:func:`response_steps` so that training and search split alike.

Generating (:class:`StepSpec`): ``kind="step"`` asks the engine for one step at a time by stopping
at a blank line (``"\\n\\n"``) with at most ``max_tokens`` tokens; the format puts a blank line
after ``<|end_of_thought|>``, so the end of the thought is a step boundary too. ``kind="tokens"``
cuts fixed mini-steps of ``max_tokens`` engine tokens (32 or 64 in Marco-o1), with no stop string.

What it does not do: understand the content of a step, or split code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from reasonloop.errors import ConfigError
from reasonloop.format import END_SOLUTION, MARKERS

STEP_SEPARATOR = "\n\n"
_CUT = "\x00"  # stands for a format marker while a response is split

_MARKER = re.compile(r"(?im)^[ \t]*(?:[*_#>]+[ \t]*)?step[ \t]+\d+[ \t]*(?:[*_]+[ \t]*)?[:.)]")
_BLANK = re.compile(r"\n[ \t]*\n")


def split_steps(text: str) -> tuple[str, ...]:
    """The steps of ``text`` (see the module docstring). Pure and total: non-text gives ()."""
    if not isinstance(text, str):
        return ()
    starts = [m.start() for m in _MARKER.finditer(text)]
    if starts:
        bounds = [0, *starts, len(text)] if starts[0] > 0 else [*starts, len(text)]
        parts = [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    else:
        parts = _BLANK.split(text)
    return tuple(p.strip() for p in parts if p.strip())


def response_steps(response: str) -> tuple[str, ...]:
    """The steps of a whole response; the format's markers become step boundaries and vanish."""
    if not isinstance(response, str):
        return ()
    for marker in MARKERS:
        response = response.replace(marker, _CUT)
    # each part between markers is split on its own: explicit "Step N:" markers in the thought
    # must not swallow the solution that follows the end-of-thought marker
    return tuple(step for part in response.split(_CUT) for step in split_steps(part))


@dataclass(frozen=True, slots=True)
class StepSpec:
    """How one expansion of a partial response is cut (see the module docstring)."""

    kind: Literal["step", "tokens"] = "step"
    max_tokens: int = 256

    def __post_init__(self) -> None:
        if self.kind not in ("step", "tokens"):
            raise ConfigError(f"StepSpec.kind must be 'step' or 'tokens', got {self.kind!r}")
        if self.max_tokens < 1:
            raise ConfigError(f"StepSpec.max_tokens must be >= 1, got {self.max_tokens}")

    @property
    def stop(self) -> tuple[str, ...]:
        return (STEP_SEPARATOR,) if self.kind == "step" else ()

    def extend(self, prefix: str, text: str, finish_reason: str) -> tuple[str, bool]:
        """The partial response after one expansion ``text``, and whether it is complete.

        Complete: it contains ``<|end_of_solution|>``; or the engine stopped on its own (EOS) —
        for mini-steps any ``stop`` finish, for steps an empty step (engines cut the stop string
        off and report ``stop`` for both EOS and the stop string, so a step that ended on a blank
        line gets it back and the next expansion tells whether anything follows).
        A ``length`` finish is never complete: the step hit its token cap and goes on.
        """
        joined = prefix + text
        if END_SOLUTION in joined:
            return joined, True
        if finish_reason == "length":
            return joined, False
        if self.kind == "tokens":
            return joined, True
        if not text.strip():
            return joined, True
        return joined + STEP_SEPARATOR, False


def mini_steps(tokens: int = 32) -> StepSpec:
    """Marco-o1's fixed mini-steps of ``tokens`` engine tokens (32 or 64)."""
    return StepSpec("tokens", tokens)


__all__ = ["STEP_SEPARATOR", "StepSpec", "mini_steps", "response_steps", "split_steps"]
