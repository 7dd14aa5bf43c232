"""Engines and scorers with known outputs for the search tests.

- ``TopEngine``: a :class:`ScriptedEngine` that also returns top-5 log-probs per token, from a
  table word -> (chosen log-prob, alternatives' log-probs).
- ``ChunkEngine``: sample ``i`` continues the ``i``-th (cycling) of the target texts that start
  with the partial response, ``max_tokens`` characters at a time (one character is one token),
  reporting ``length`` until the text is exhausted: exact mini-steps.
- ``TableScorer``: a scorer that looks the response text up in a table and records its calls.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import pytest

from reasonloop.engines.base import Request, Result, Sample, Scored
from reasonloop.engines.scripted import ScriptedEngine

L = math.log
# word -> (chosen log-prob, top-5 alternatives); confidences: sure 0.9, maybe 0.4, other 0.5
WORDS = {
    "sure": (L(0.9), (L(0.9), L(0.05), L(0.03), L(0.01), L(0.01))),
    "maybe": (L(0.4), (L(0.4), L(0.3), L(0.2), L(0.05), L(0.05))),
}
OTHER = (L(0.5), (L(0.5), L(0.2), L(0.1), L(0.1), L(0.1)))


class TopEngine(ScriptedEngine):
    def __init__(self, reply):
        super().__init__(reply, logprob=lambda w: WORDS.get(w, OTHER)[0])

    def generate(self, requests: Sequence[Request]) -> list[Result]:
        out = []
        for req, res in zip(requests, super().generate(requests), strict=True):
            if req.top_logprobs:
                res = Result(
                    tuple(
                        dataclasses.replace(
                            s, top_logprobs=tuple(WORDS.get(w, OTHER)[1] for w in s.text.split())
                        )
                        for s in res.samples
                    ),
                    res.prompt_tokens,
                )
            out.append(res)
        return out


class ChunkEngine:
    spec = "chunk"
    model = "chunk"

    def __init__(self, base: str, targets: Sequence[str]):
        self.base = base
        self.targets = list(targets)
        self.calls: list[Request] = []

    def generate(self, requests: Sequence[Request]) -> list[Result]:
        out = []
        for req in requests:
            self.calls.append(req)
            partial = (req.prompt or "")[len(self.base) :]
            samples = []
            for i in range(req.n):
                matching = [t for t in self.targets if t.startswith(partial)]
                assert matching, partial
                target = matching[i % len(matching)]
                rest = target[len(partial) :]
                text = rest[: req.max_tokens]
                finish = "length" if len(rest) > req.max_tokens else "stop"
                samples.append(Sample(text, len(text), finish))
            out.append(Result(tuple(samples), prompt_tokens=len(req.prompt or "")))
        return out

    def score(self, prompt, continuation: str) -> Scored:
        return Scored(tuple(-1.0 for _ in continuation))

    def close(self) -> None:
        pass


class TableScorer:
    """score = table[response] (default ``default``); ``calls`` records (response, sample)."""

    def __init__(self, table: dict[str, float], default: float | None = None):
        self.table = table
        self.default = default
        self.calls: list[tuple[str, Sample | None]] = []

    def score(self, problem, prompt, response: str, sample: Sample | None = None) -> float:
        self.calls.append((response, sample))
        if response not in self.table and self.default is not None:
            return self.default
        return self.table[response]


@pytest.fixture
def top_engine() -> Callable[..., TopEngine]:
    return TopEngine


@pytest.fixture
def chunk_engine() -> type[ChunkEngine]:
    return ChunkEngine


@pytest.fixture
def table_scorer() -> type[TableScorer]:
    return TableScorer
