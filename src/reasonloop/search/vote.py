"""Greedy decoding, self-consistency (majority vote) and the scorer-weighted vote.

Votes go over extracted answers (``extract``, by default :func:`reasonloop.search.extract_for`);
equivalent answers vote together (``equal``, by default math equivalence for math problems, see
:func:`reasonloop.search.equal_for`), using
:func:`reasonloop.verify.answers.majority_vote`: ties go to the answer seen first, and the
response returned is the first sample that gave the winning answer. When no sample has an answer,
the majority vote returns the first sample and the weighted vote the top-scored one, with
``answer=None``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from reasonloop import search
from reasonloop.engines.base import Engine, Prompt
from reasonloop.generate import Sampling
from reasonloop.options import check_options, include
from reasonloop.records import Problem
from reasonloop.search import Candidate, Equal, Extract, SearchResult, Spend
from reasonloop.search.scorers import Scorer, is_oracle
from reasonloop.verify.answers import majority_vote

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
@include(Sampling, exclude=("n", "temperature", "top_p"))
class Greedy:
    """One sample at temperature 0."""

    extract: Extract | None = None

    def __post_init__(self) -> None:
        check_options(self)

    def run(self, problem: Problem, prompt: Prompt | None, engine: Engine) -> SearchResult:
        # one sample at temperature 0: the sampling of a vote of one
        one = Majority(
            n=1,
            temperature=0.0,
            top_p=1.0,
            max_tokens=self.max_tokens,
            seed=self.seed,
            extract=self.extract,
        )
        cands, spend = draw(one, problem, prompt, engine)
        return chosen_result(cands[0], cands, spend, {"strategy": "greedy"})


class Sampled(Protocol):
    """What :func:`draw` reads from a sampling strategy."""

    n: int
    temperature: float
    top_p: float
    max_tokens: int
    seed: int | None
    extract: Extract | None


def draw(
    s: Sampled,
    problem: Problem,
    prompt: Prompt | None,
    engine: Engine,
    scorer: Scorer | None = None,
) -> tuple[list[Candidate], Spend]:
    """The candidates of one sampling strategy ``s`` (checked when it was made): ``s.n`` samples
    of ``prompt`` (None: the default prompt) in one request (sample ``i`` with ``seed + i``),
    extracted and scored by ``scorer``."""
    prompt = search.default_prompt(problem) if prompt is None else prompt
    extract = s.extract or search.extract_for(problem)
    spend = Spend()
    logprobs, top = search.wanted_logprobs(scorer)
    block = ("n", "temperature", "top_p", "max_tokens", "seed")
    req = search.request_for(
        prompt, **{k: getattr(s, k) for k in block}, logprobs=logprobs, top_logprobs=top
    )
    (result,) = spend.generate(engine, [req])
    cands = []
    for x in result.samples:
        score = None if scorer is None else float(scorer.score(problem, prompt, x.text, x))
        cands.append(Candidate(x.text, extract(x.text), x.tokens, x.finish_reason, score))
    return cands, spend


def top_scored(cands: Sequence[Candidate]) -> int:
    """Index of the top-scored candidate; ties go to the earlier one, None and NaN rank last."""
    return max(range(len(cands)), key=lambda i: (search.finite(cands[i].score), -i))


def chosen_result(
    chosen: Candidate, cands: Sequence[Candidate], spend: Spend, details: dict[str, Any]
) -> SearchResult:
    """The :class:`SearchResult` of a strategy that chose ``chosen`` among ``cands``."""
    return SearchResult(
        chosen.text, chosen.answer, spend.tokens, tuple(cands), details, spend.prompt_tokens
    )


def _vote(
    cands: Sequence[Candidate], equal: Equal, weights: Sequence[float] | None
) -> tuple[int | None, int]:
    """Index of the first candidate with the winning answer (None if no answers), and its votes."""
    answers = [c.answer for c in cands]
    vote = majority_vote(answers, [False] * len(answers), equal=equal, weights=weights)
    if vote.answer is None:
        return None, 0
    return answers.index(vote.answer), vote.votes


@dataclass(frozen=True, slots=True)
@include(Sampling, n=8)
class Majority:
    """Self-consistency: ``n`` samples, the most frequent (equivalent) answer wins."""

    extract: Extract | None = None
    equal: Equal | None = None

    def __post_init__(self) -> None:
        check_options(self)

    def run(self, problem: Problem, prompt: Prompt | None, engine: Engine) -> SearchResult:
        cands, spend = draw(self, problem, prompt, engine)
        index, votes = _vote(cands, self.equal or search.equal_for(problem), None)
        chosen = cands[0 if index is None else index]
        details = {"strategy": "majority", "votes": votes, "n": len(cands), "chosen": index}
        return chosen_result(chosen, cands, spend, details)


@dataclass(frozen=True, slots=True)
@include(Sampling, n=8)
class WeightedVote:
    """``n`` samples; each votes for its answer with weight ``scorer.score(...)``; the answer
    with the largest total weight wins. Weights must be non-negative: a negative or NaN score
    counts as 0 (with a warning)."""

    scorer: Scorer
    extract: Extract | None = None
    equal: Equal | None = None

    def __post_init__(self) -> None:
        check_options(self)

    def run(self, problem: Problem, prompt: Prompt | None, engine: Engine) -> SearchResult:
        cands, spend = draw(self, problem, prompt, engine, self.scorer)
        weights = []
        for c in cands:
            w = search.finite(c.score)
            if not w >= 0 or math.isinf(w):
                logger.warning("weighted vote: score %r counts as weight 0", c.score)
                w = 0.0
            weights.append(w)
        equal = self.equal or search.equal_for(problem)
        index, votes = _vote(cands, equal, weights)
        if index is None:  # no answers: the top-scored sample, ties to the earlier one
            chosen, weight = cands[top_scored(cands)], 0.0
        else:
            chosen = cands[index]
            weight = sum(
                w
                for c, w in zip(cands, weights, strict=True)
                if c.answer is not None
                and (c.answer == chosen.answer or equal(chosen.answer, c.answer))  # type: ignore[arg-type]
            )
        details = {
            "strategy": "weighted-vote",
            "votes": votes,
            "weight": weight,
            "n": len(cands),
            "chosen": index,
            "oracle": is_oracle(self.scorer),
        }
        return chosen_result(chosen, cands, spend, details)


__all__ = [
    "Greedy",
    "Majority",
    "Sampled",
    "WeightedVote",
    "chosen_result",
    "draw",
    "top_scored",
]
