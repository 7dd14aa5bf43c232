"""Reflection: make the model rethink once its first attempt is over (Marco-o1's prompt).

``at="thought"`` (default): generate until ``<|end_of_thought|>`` (a stop string, so the marker is
not kept), then append :data:`REFLECTION` and let the model continue the same thought, close it
and write the solution. ``at="response"``: generate a whole response first, then append the
sentence and continue. The prefix the model continues is ``first.rstrip() + "\\n\\n" + REFLECTION
+ "\\n"``; the response returned is that prefix plus the continuation.

If the first part ran out of tokens (``length``) there is nothing to reflect on: it is returned as
is (``details["reflected"] = False``). ``max_tokens`` is the budget of both parts together.
Engines report ``stop`` both for the marker and for an end of text, so a first part that ended
without the marker is reflected on too (a plain answer then gets its rethink after it).

In ``response`` mode a formatted first response already holds a solution, and parsers read the
*first* solution of a text; the ``answer`` of the result is therefore read from the continuation
when it has one (else from the first response), and callers grading ``response`` with
:func:`reasonloop.verify.grade` should prefer ``at="thought"`` for formatted models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reasonloop import search
from reasonloop.engines.base import Engine, Prompt, Request
from reasonloop.errors import ConfigError
from reasonloop.format import END_THOUGHT
from reasonloop.generate import Sampling
from reasonloop.options import check_options, include
from reasonloop.records import Problem
from reasonloop.search import Candidate, Extract, SearchResult, Spend

REFLECTION = "Wait! Maybe I made some mistakes! I need to rethink from scratch."


def reflection_prefix(first: str) -> str:
    """The text the model continues after its first attempt ``first``."""
    return f"{first.rstrip()}\n\n{REFLECTION}\n"


@dataclass(frozen=True, slots=True)
@include(Sampling, exclude=("n",), temperature=0.0)
class Reflection:
    """One attempt, the reflection sentence, one continuation (see the module docstring)."""

    at: Literal["thought", "response"] = "thought"
    extract: Extract | None = None

    def __post_init__(self) -> None:
        if self.at not in ("thought", "response"):
            raise ConfigError(f"Reflection.at must be 'thought' or 'response', got {self.at!r}")
        check_options(self)

    def _request(self, text: str, max_tokens: int, stop: tuple[str, ...], seed: int | None):
        return Request(
            prompt=text,
            n=1,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=max_tokens,
            stop=stop,
            seed=seed,
        )

    def run(self, problem: Problem, prompt: Prompt | None, engine: Engine) -> SearchResult:
        prompt = search.default_prompt(problem) if prompt is None else prompt
        base = search.render_prompt(engine, prompt)
        extract = self.extract or search.extract_for(problem)
        spend = Spend()
        stop = (END_THOUGHT,) if self.at == "thought" else ()
        (r1,) = spend.generate(engine, [self._request(base, self.max_tokens, stop, self.seed)])
        first = r1.samples[0]
        left = self.max_tokens - first.tokens
        if first.finish_reason == "length" or left < 1:
            cand = Candidate(first.text, extract(first.text), first.tokens, first.finish_reason)
            details = {"strategy": "reflect", "at": self.at, "reflected": False}
            return SearchResult(
                first.text, cand.answer, spend.tokens, (cand,), details, spend.prompt_tokens
            )
        prefix = reflection_prefix(first.text)
        seed = None if self.seed is None else self.seed + 1
        (r2,) = spend.generate(engine, [self._request(base + prefix, left, (), seed)])
        second = r2.samples[0]
        response = prefix + second.text
        if self.at == "thought":
            answer = extract(response)
        else:
            answer = extract(second.text)
            if answer is None:
                answer = extract(first.text)
        cands = (
            Candidate(first.text, extract(first.text), first.tokens, first.finish_reason),
            Candidate(response, answer, first.tokens + second.tokens, second.finish_reason),
        )
        details = {
            "strategy": "reflect",
            "at": self.at,
            "reflected": True,
            "first_tokens": first.tokens,
        }
        return SearchResult(response, answer, spend.tokens, cands, details, spend.prompt_tokens)


__all__ = ["REFLECTION", "Reflection", "reflection_prefix"]
