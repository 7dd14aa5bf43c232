"""Beam search over reasoning steps, guided by a step scorer (a PRM, or any scorer).

At each depth, every unfinished beam gets ``expand`` sampled continuations of one step (or one
mini-step, see :class:`~reasonloop.search.steps.StepSpec`); each new prefix is scored by
``scorer.score(problem, prompt, prefix, sample)`` (``sample`` joins the log-probs of the prefix's
steps, so token confidence works too; a :class:`~reasonloop.search.scorers.RewardModelScorer`
sees the prefix's :func:`~reasonloop.search.steps.response_steps`). The pool of finished beams
(they keep their score) and new prefixes is cut to the ``beam_width`` best; ties keep the earlier
one (finished beams first, then children in beam and sample order). A beam is finished when its
text holds ``<|end_of_solution|>``, the model stopped on its own, or it spent ``max_tokens``. The
search ends when every kept beam is finished or after ``max_depth`` depths; the response is the
best finished beam, or the best beam if none finished.

With ``dedupe`` a prefix whose text equals one already in the pool is dropped (small models at low
temperature repeat themselves; duplicates would waste beam slots). Every sampled token counts in
``tokens``, dropped or not. What it does not do: look ahead (no rollouts), or batch scoring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reasonloop import search
from reasonloop.engines.base import Engine, Prompt, Request, Sample
from reasonloop.errors import ConfigError
from reasonloop.generate import Sampling
from reasonloop.options import check_options, include
from reasonloop.records import Problem
from reasonloop.search import Candidate, Extract, SearchResult, Spend
from reasonloop.search.scorers import Scorer, is_oracle
from reasonloop.search.steps import StepSpec


@dataclass(frozen=True, slots=True)
class Beam:
    """A partial response: its text, the samples of its steps, its score, whether it is done.
    ``finish``: ``stop`` (complete), ``length`` (spent its budget) or ``open``."""

    text: str
    parts: tuple[Sample, ...] = ()
    score: float | None = None
    finish: str = "open"

    @property
    def done(self) -> bool:
        return self.finish != "open"

    @property
    def tokens(self) -> int:
        return sum(p.tokens for p in self.parts)


@dataclass(frozen=True, slots=True)
@include(Sampling, exclude=("n",))
class BeamSearch:
    """Step-level beam search (see the module docstring).

    ``max_tokens`` caps the tokens of one beam (its steps together); ``step.max_tokens`` one step.
    Each request samples ``expand`` continuations with seeds ``seed, seed+1, ...`` continuing
    across requests, so a run is reproducible on a deterministic engine.
    """

    scorer: Scorer
    beam_width: int = 4
    expand: int = 4
    max_depth: int = 40
    step: StepSpec = field(default_factory=StepSpec)
    dedupe: bool = True
    extract: Extract | None = None

    def __post_init__(self) -> None:
        check_options(self)
        for name in ("beam_width", "expand", "max_depth"):
            value = getattr(self, name)
            if value < 1:
                raise ConfigError(f"BeamSearch.{name} must be >= 1, got {value}")

    def run(self, problem: Problem, prompt: Prompt | None, engine: Engine) -> SearchResult:
        prompt = search.default_prompt(problem) if prompt is None else prompt
        base = search.render_prompt(engine, prompt)
        logprobs, top = search.wanted_logprobs(self.scorer)
        spend = Spend()
        seed = self.seed
        beams: list[Beam] = [Beam("")]
        levels: list[list[dict[str, Any]]] = []
        for _depth in range(self.max_depth):
            active = [b for b in beams if not b.done]
            if not active:
                break
            requests = []
            for b in active:
                requests.append(
                    Request(
                        prompt=base + b.text,
                        n=self.expand,
                        temperature=self.temperature,
                        top_p=self.top_p,
                        max_tokens=min(self.step.max_tokens, self.max_tokens - b.tokens),
                        stop=self.step.stop,
                        seed=seed,
                        logprobs=logprobs,
                        top_logprobs=top,
                    )
                )
                seed = None if seed is None else seed + self.expand
            results = spend.generate(engine, requests)
            pool = [b for b in beams if b.done]
            seen = {b.text for b in pool}
            for b, result in zip(active, results, strict=True):
                for s in result.samples:
                    text, complete = self.step.extend(b.text, s.text, s.finish_reason)
                    if self.dedupe and text in seen:
                        continue
                    seen.add(text)
                    parts = (*b.parts, s)
                    used = b.tokens + s.tokens
                    finish = "stop" if complete else "length" if used >= self.max_tokens else "open"
                    score = float(
                        self.scorer.score(problem, prompt, text, search.join_sample(text, parts))
                    )
                    pool.append(Beam(text, parts, score, finish))
            if not pool:  # every continuation duplicated a finished beam: nothing new to keep
                break
            # sorted() is stable: ties keep pool order (finished beams, then children in order).
            beams = sorted(pool, key=lambda b: -search.finite(b.score))[: self.beam_width]
            levels.append([{"text": b.text, "score": b.score, "done": b.done} for b in beams])
        finished = [b for b in beams if b.finish == "stop"]
        chosen = (finished or beams)[0]
        extract = self.extract or search.extract_for(problem)
        cands = tuple(
            Candidate(
                b.text,
                extract(b.text),
                b.tokens,
                "stop" if b.finish == "stop" else "length",
                b.score,
            )
            for b in beams
        )
        details = {
            "strategy": "beam",
            "depths": len(levels),
            "levels": levels,
            "finished": len(finished),
            "oracle": is_oracle(self.scorer),
        }
        return SearchResult(
            chosen.text,
            extract(chosen.text),
            spend.tokens,
            cands,
            details,
            spend.prompt_tokens,
        )


__all__ = ["Beam", "BeamSearch"]
