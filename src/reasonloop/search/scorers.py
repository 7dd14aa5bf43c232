"""Scorers: one number per response, for best-of-N, weighted votes, beam search and MCTS.

A :class:`Scorer` is anything with ``score(problem, prompt, response, sample=None) -> float``;
higher is better. ``sample`` is the engine's :class:`~reasonloop.engines.base.Sample` for the
response when the strategy has one (it carries the log-probs). A scorer that reads log-probs from
the sample says so with attributes the strategies honour when they sample: ``top_logprobs`` (int)
and ``logprobs`` (bool). A scorer with ``oracle = True`` looks at the gold answer; results
it ranked are flagged ``details["oracle"] = True`` (fine for upper bounds, not for a benchmark).

- :class:`TokenConfidence` — Marco-o1 confidence from the sample's top-5 log-probs (no training):
  ``confidence`` is Marco-o1's softmax over the top 5, ``confidence+chosen`` the variant that adds
  a sampled token outside them as a 6th term (:mod:`reasonloop.search.confidence`).
- :class:`LogProbScorer` — the mean token log-prob of the response under an engine (``score``).
- :class:`RewardModelScorer` — wraps any ORM / PRM / generative verifier callable
  ``(problem, prompt, steps) -> list[float]``; a PRM gives one score per step, aggregated by
  ``min``, ``last``, ``mean`` or ``prod`` (the product: the chance that every step is right,
  were the step scores independent).
- :class:`VerifierScorer` — 1.0 when the verifier grades the response correct, else 0.0 (oracle).
- Trained reward models (``orm:PATH``, ``prm:PATH``, ``genrm:PATH``, ``genrm-cot:PATH`` in
  :func:`make_scorer`): see :mod:`reasonloop.train.rmcontract`.
- A V-STaR verifier (``vstar:PATH``: the response's summed token log-prob under the DPO-trained
  verifier; ``vstar-mean:PATH``: their mean): :class:`reasonloop.train.vstar.VStar`.

Weighted votes need non-negative scores: confidence, reward-model probabilities, the verifier, or
``LogProbScorer(exp=True)`` (the geometric-mean token probability). Log-prob scores (``logprob``,
``vstar``, ``vstar-mean``) are <= 0: they rank candidates (best-of-N) but a weighted vote counts
each as 0.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from reasonloop.engines.base import Engine, Prompt, Sample
from reasonloop.errors import ConfigError, EngineError
from reasonloop.records import Problem
from reasonloop.search.confidence import FORMS, TOP_K, mean_confidence
from reasonloop.search.steps import response_steps
from reasonloop.train.rmcontract import GENRM_FORMS, ORM, PRM, VOTES, GenRM, GenRMCoT
from reasonloop.train.vstar import VStar
from reasonloop.verify import grade

logger = logging.getLogger(__name__)

StepRewards = Callable[[Problem, Prompt, Sequence[str]], Sequence[float]]
AGGREGATES = ("min", "last", "mean", "prod")


@runtime_checkable
class Scorer(Protocol):
    def score(
        self, problem: Problem, prompt: Prompt, response: str, sample: Sample | None = None
    ) -> float: ...


@dataclass(frozen=True, slots=True)
class TokenConfidence:
    """Marco-o1 confidence (see :mod:`reasonloop.search.confidence`) of a sampled response.

    Needs the sample's log-probs and top-``k`` alternatives: strategies ask the engine for
    ``top_logprobs=k`` because of the attribute below. Raises EngineError when the sample has none
    (the engine cannot return them); a response with no tokens scores 0.0. ``form``: ``top-k``
    (Marco-o1's, the default) or ``top-k+chosen`` (see :mod:`reasonloop.search.confidence`).
    """

    top_logprobs: int = TOP_K
    form: str = "top-k"

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise ConfigError(f"TokenConfidence.form must be one of {FORMS}, got {self.form!r}")

    def score(
        self, problem: Problem, prompt: Prompt, response: str, sample: Sample | None = None
    ) -> float:
        if sample is None or sample.logprobs is None or sample.top_logprobs is None:
            raise EngineError(
                "TokenConfidence needs each sampled token's log-prob and its top "
                f"{self.top_logprobs} alternatives; the engine returned none (use an engine that "
                "supports top_logprobs: llamacpp, hf or an OpenAI-compatible server)"
            )
        value = mean_confidence(
            sample.logprobs, sample.top_logprobs, k=self.top_logprobs, form=self.form
        )
        return 0.0 if value is None else value


@dataclass(frozen=True, slots=True)
class LogProbScorer:
    """The mean log-prob of the response's tokens given the prompt under ``engine`` (which may
    differ from the sampling engine). ``exp=True`` returns exp(mean log-prob) instead, in (0, 1].
    An empty response scores -inf (0.0 with ``exp``)."""

    engine: Engine
    exp: bool = False

    def score(
        self, problem: Problem, prompt: Prompt, response: str, sample: Sample | None = None
    ) -> float:
        scored = self.engine.score(prompt, response)
        if not scored.logprobs:
            return 0.0 if self.exp else -math.inf
        return math.exp(scored.mean_logprob) if self.exp else scored.mean_logprob


def aggregate(scores: Sequence[float], how: str) -> float | None:
    """``min`` / ``last`` / ``mean`` / ``prod`` of step scores; None for no scores."""
    if not scores:
        return None
    if how == "min":
        return float(min(scores))
    if how == "last":
        return float(scores[-1])
    if how == "mean":
        return float(sum(scores) / len(scores))
    if how == "prod":
        return float(math.prod(scores))
    raise ConfigError(f"aggregate must be one of {AGGREGATES}, got {how!r}")


@dataclass(frozen=True, slots=True)
class RewardModelScorer:
    """A reward model behind a callable ``(problem, prompt, steps) -> scores``.

    ``steps`` are :func:`~reasonloop.search.steps.response_steps` of the response (a partial
    response in beam search). An ORM returns one score (any ``aggregate`` then gives it back), a
    PRM one per step, a generative verifier P("Yes"). A response with no steps, or a callable that
    returns no scores, scores 0.0. ``oracle``: set it when the callable reads the gold answer.
    """

    model: StepRewards
    aggregate: Literal["min", "last", "mean", "prod"] = "min"
    oracle: bool = False

    def __post_init__(self) -> None:
        if self.aggregate not in AGGREGATES:
            raise ConfigError(
                f"RewardModelScorer.aggregate must be one of {AGGREGATES}, got {self.aggregate!r}"
            )

    def score_steps(self, problem: Problem, prompt: Prompt, steps: Sequence[str]) -> float:
        if not steps:
            return 0.0
        value = aggregate(list(self.model(problem, prompt, tuple(steps))), self.aggregate)
        if value is None:
            logger.warning("reward model returned no scores for %d steps", len(steps))
            return 0.0
        return value

    def score(
        self, problem: Problem, prompt: Prompt, response: str, sample: Sample | None = None
    ) -> float:
        return self.score_steps(problem, prompt, response_steps(response))


@dataclass(frozen=True, slots=True)
class VerifierScorer:
    """1.0 when :func:`reasonloop.verify.grade` says the response is correct, else 0.0.

    An **oracle**: it reads the gold answer. Use it for upper bounds (oracle best-of-N = pass@N,
    oracle MCTS), never to report a benchmark score.
    """

    oracle: bool = True

    def score(
        self, problem: Problem, prompt: Prompt, response: str, sample: Sample | None = None
    ) -> float:
        return 1.0 if grade(problem, response).correct else 0.0


SCORERS = (
    "confidence",
    "confidence+chosen",
    "logprob",
    "prob",
    "oracle",
    "orm:PATH",
    "prm:PATH",
    "genrm:PATH",
    "genrm-cot:PATH",
    "vstar:PATH",
    "vstar-mean:PATH",
)
RM_SCORERS = ("orm", "prm", "genrm", "genrm-cot")
VSTAR = {"vstar": "sum", "vstar-mean": "mean"}  # scorer name -> how token log-probs combine


def make_scorer(
    name: str,
    engine: Engine | None = None,
    *,
    aggregate: str = "min",
    genrm_form: str = "yes",
    votes: int = VOTES,
) -> Scorer:
    """A scorer by CLI name: ``confidence`` / ``confidence+chosen``, ``logprob`` / ``prob`` (need
    ``engine``), ``oracle``, a trained reward model ``orm:PATH``, ``prm:PATH`` (step scores
    combined by ``aggregate``: min / last / mean / prod), ``genrm:PATH`` or ``genrm-cot:PATH``
    (``genrm_form``: ``yes`` for P(Yes), ``yes-no`` for the normalised variant; ``votes``: the
    rationales GenRM-CoT averages over; see :mod:`reasonloop.train.rmcontract`), or a V-STaR
    verifier ``vstar:PATH`` (summed log-prob, the default: V-STaR's likelihood) or
    ``vstar-mean:PATH`` (length-normalised; see :class:`reasonloop.train.vstar.VStar`)."""
    if name in ("confidence", "confidence+chosen"):
        return TokenConfidence(form="top-k" if name == "confidence" else "top-k+chosen")
    if name in ("logprob", "prob"):
        if engine is None:
            raise ConfigError(f"scorer {name!r} needs an engine to score with")
        return LogProbScorer(engine, exp=name == "prob")
    if name == "oracle":
        return VerifierScorer()
    kind, sep, path = name.partition(":")
    if sep and kind in VSTAR:
        if not path:
            raise ConfigError(
                f"scorer {name!r} needs the trained verifier's directory: {kind}:PATH"
            )
        return VStar(path, aggregate=VSTAR[kind])
    if sep and kind in RM_SCORERS:
        if not path:
            raise ConfigError(f"scorer {name!r} needs the trained model's directory: {kind}:PATH")
        if aggregate not in AGGREGATES:
            raise ConfigError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
        if genrm_form not in GENRM_FORMS:
            raise ConfigError(f"genrm_form must be one of {GENRM_FORMS}, got {genrm_form!r}")
        return load_reward_scorer(
            kind, path, aggregate=aggregate, genrm_form=genrm_form, votes=votes
        )
    raise ConfigError(f"unknown scorer {name!r}; valid: {', '.join(SCORERS)}")


def load_reward_scorer(
    kind: str,
    path: str,
    *,
    aggregate: str = "min",
    genrm_form: str = "yes",
    votes: int = VOTES,
) -> Scorer:
    """The scorer for ``kind:path`` (``orm``, ``prm`` with ``aggregate``, ``genrm`` with
    ``genrm_form``, ``genrm-cot`` with ``genrm_form`` and ``votes``)."""
    if kind == "orm":
        return ORM(path)
    if kind == "prm":
        return RewardModelScorer(PRM(path), aggregate=aggregate)  # type: ignore[arg-type]
    if kind == "genrm":
        return GenRM(path, form=genrm_form)
    if kind == "genrm-cot":
        return GenRMCoT(path, votes=votes, form=genrm_form)
    raise ConfigError(f"unknown reward model kind {kind!r}; valid: {', '.join(RM_SCORERS)}")


def is_oracle(scorer: object | None) -> bool:
    return bool(getattr(scorer, "oracle", False))


__all__ = [
    "AGGREGATES",
    "RM_SCORERS",
    "SCORERS",
    "VSTAR",
    "LogProbScorer",
    "RewardModelScorer",
    "Scorer",
    "TokenConfidence",
    "VerifierScorer",
    "aggregate",
    "is_oracle",
    "load_reward_scorer",
    "make_scorer",
]
