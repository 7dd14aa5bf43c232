"""Test-time compute: spend more tokens at inference to answer better.

Every strategy is a small frozen config with one method, ``run(problem, prompt, engine)``, that
returns a :class:`SearchResult`: the chosen response, its extracted answer, every candidate it
weighed, and the tokens it spent.

=====================  ====================================================================
strategy               what it does
=====================  ====================================================================
:class:`Greedy`        one sample at temperature 0
:class:`Majority`      self-consistency: n samples, vote over extracted answers (equivalent
                       answers vote together)
:class:`WeightedVote`  the same vote, each sample weighted by a scorer
:class:`BestOfN`       n samples, keep the top-scored (token confidence, log-prob, ORM, PRM)
:class:`BeamSearch`    beam search over reasoning steps (or fixed-size mini-steps) guided by
                       a step scorer such as a PRM
:class:`MCTS`          Monte-Carlo tree search over steps or mini-steps, rewards from the
                       Marco-o1 token confidence, a reward model, or the verifier (oracle)
:class:`Reflection`    after the first thought ends, append "Wait! Maybe I made some
                       mistakes! I need to rethink from scratch." and continue
=====================  ====================================================================

**Token accounting** (the same for every strategy): ``SearchResult.tokens`` counts the tokens the
engine *generated* for this problem (every sample, expansion and rollout, kept or not), prompt
tokens excluded; ``prompt_tokens`` sums the prompt tokens the engine reported for every request
(a prefix re-sent for each expansion counts each time). Tokens that scorers read to score a
response (``engine.score``, a reward model) count in neither.

**Prompts**: ``prompt=None`` means the usual one: :data:`reasonloop.format.SYSTEM_PROMPT` then
:func:`reasonloop.problems.prompt.prompt_for`. Strategies that continue a partial response (beam,
MCTS, reflection) need the prompt as raw text: a string prompt is used as is; chat messages are
rendered by :func:`reasonloop.engines.base.render_prompt`: the engine's own template when it has
one, else ChatML (with a warning; right for Qwen and SmolLM2, wrong for other templates).

Reward models trained by :mod:`reasonloop.train.rm` plug in as scorers (``make_scorer("orm:PATH")``,
``prm:PATH``, ``genrm:PATH``, ``genrm-cot:PATH``; :mod:`reasonloop.train.rmcontract`); their PRM step labels come
from :mod:`reasonloop.search.annotate` (Math-Shepherd Monte-Carlo labels).

What this package does not do: store results (callers do: ``reasonloop eval --strategy``), grade
the chosen response (call :func:`reasonloop.verify.grade`), or train the reward models it uses.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from reasonloop.engines.base import (
    Engine,
    Message,
    Prompt,
    Request,
    Result,
    Sample,
    render_prompt,
    user_messages,
)
from reasonloop.errors import ConfigError
from reasonloop.format import SYSTEM_PROMPT, parse
from reasonloop.problems.prompt import prompt_for
from reasonloop.records import Problem
from reasonloop.verify.answers import Equal, answer_equality
from reasonloop.verify.choice import extract_choice
from reasonloop.verify.countdown import extract_expression
from reasonloop.verify.extract import extract_answer

logger = logging.getLogger(__name__)

Extract = Callable[[str], "str | None"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One response a strategy weighed: its text, extracted answer, generated tokens and score.

    ``score`` is the scorer's value (best-of-N, weighted vote, beam, MCTS reward) or None when the
    strategy used none. ``tokens`` are the tokens generated for this text (for beam and MCTS, the
    tokens of the steps on its path and its rollout; shared steps appear in several candidates,
    so candidates' tokens do not sum to ``SearchResult.tokens``).
    """

    text: str
    answer: str | None
    tokens: int
    finish_reason: str = "stop"
    score: float | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The outcome of one strategy on one problem.

    ``tokens``: generated tokens, prompt excluded (see the module docstring); ``prompt_tokens``:
    prompt tokens the engine reported over all requests. ``details`` holds strategy-specific
    facts (votes, the beams kept at each depth, tree statistics, ``oracle``) as plain JSON values.
    """

    response: str
    answer: str | None
    tokens: int
    candidates: tuple[Candidate, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    prompt_tokens: int = 0


@runtime_checkable
class Strategy(Protocol):
    """A test-time compute strategy: ``prompt=None`` means :func:`default_prompt`."""

    def run(self, problem: Problem, prompt: Prompt | None, engine: Engine) -> SearchResult: ...


def default_prompt(problem: Problem) -> tuple[Message, ...]:
    """The system prompt of the response format, then the problem's user message."""
    return user_messages(prompt_for(problem), SYSTEM_PROMPT)


def request_for(prompt: Prompt, **settings: Any) -> Request:
    """A :class:`Request` for a raw-text or chat prompt."""
    if isinstance(prompt, str):
        return Request(prompt=prompt, **settings)
    return Request(messages=tuple(prompt), **settings)


def extract_for(problem: Problem) -> Extract:
    """How the final answer is read from a response to ``problem``, without looking at the gold
    answer: the Countdown expression, a choice letter, the math answer; code has none (None)."""
    if problem.domain == "code":
        return lambda response: None
    if problem.domain == "puzzle" and problem.source == "countdown":

        def countdown(response: str) -> str | None:
            solution = parse(response).solution
            return None if solution is None else extract_expression(solution)

        return countdown
    if problem.choices or problem.domain == "science":
        choices = problem.choices
        return lambda response: extract_choice(response, choices)
    return extract_answer


def equal_for(problem: Problem) -> Equal:
    """When two extracted answers vote together: math equivalence for math, else equality."""
    return answer_equality([problem])


def wanted_logprobs(scorer: object | None) -> tuple[bool, int]:
    """(logprobs, top_logprobs) to request so that ``scorer`` gets what it reads from samples.

    A scorer says so with attributes: ``top_logprobs`` (int, e.g. 5 for token confidence) and
    ``logprobs`` (bool)."""
    top = int(getattr(scorer, "top_logprobs", 0) or 0)
    return (top > 0 or bool(getattr(scorer, "logprobs", False))), top


class Spend:
    """Counts the tokens a strategy makes an engine generate, and the prompt tokens it reported."""

    __slots__ = ("tokens", "prompt_tokens", "requests")

    def __init__(self) -> None:
        self.tokens = 0
        self.prompt_tokens = 0
        self.requests = 0

    def generate(self, engine: Engine, requests: Sequence[Request]) -> list[Result]:
        if not requests:
            return []
        results = engine.generate(list(requests))
        for r in results:
            self.tokens += r.completion_tokens
            self.prompt_tokens += r.prompt_tokens
        self.requests += len(requests)
        return results


def finite(x: float | None) -> float:
    """``x`` as a rankable number: None and NaN rank last (-inf)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return -math.inf
    return float(x)


def join_sample(text: str, parts: Sequence[Sample]) -> Sample:
    """One :class:`Sample` for ``text`` made of ``parts`` in order (steps then a rollout), with
    their log-probs concatenated when every part has them (else None)."""
    tokens = sum(p.tokens for p in parts)
    finish = parts[-1].finish_reason if parts else "stop"
    lps: tuple[float, ...] | None = None
    tops: tuple[tuple[float, ...], ...] | None = None
    if parts and all(p.logprobs is not None for p in parts):
        lps = tuple(x for p in parts for x in (p.logprobs or ()))
    if parts and all(p.top_logprobs is not None for p in parts):
        tops = tuple(x for p in parts for x in (p.top_logprobs or ()))
    return Sample(text, tokens, finish, lps, tops)


# The strategies and scorers, re-exported. They import the records above from this package, so
# these imports must come after them.
from reasonloop.search.beam import BeamSearch  # noqa: E402
from reasonloop.search.bestofn import BestOfN  # noqa: E402
from reasonloop.search.confidence import mean_confidence, token_confidences  # noqa: E402
from reasonloop.search.mcts import MCTS, Node  # noqa: E402
from reasonloop.search.reflect import REFLECTION, Reflection  # noqa: E402
from reasonloop.search.scorers import (  # noqa: E402
    LogProbScorer,
    RewardModelScorer,
    Scorer,
    TokenConfidence,
    VerifierScorer,
    make_scorer,
)
from reasonloop.search.steps import StepSpec, response_steps, split_steps  # noqa: E402
from reasonloop.search.vote import Greedy, Majority, WeightedVote  # noqa: E402

STRATEGIES: dict[str, type] = {
    "greedy": Greedy,
    "majority": Majority,
    "weighted-vote": WeightedVote,
    "best-of-n": BestOfN,
    "beam": BeamSearch,
    "mcts": MCTS,
    "reflect": Reflection,
}


# Other names the CLI accepts for a strategy.
ALIASES: dict[str, str] = {"weighted": "weighted-vote", "reflection": "reflect"}


def strategy_names() -> tuple[str, ...]:
    """Every strategy by the name the CLI shows (its alias where it has one, e.g. ``weighted``),
    in :data:`STRATEGIES` order."""
    shown = {name: alias for alias, name in ALIASES.items()}
    return tuple(shown.get(name, name) for name in STRATEGIES)


def make_strategy(name: str, **options: Any) -> Strategy:
    """The strategy called ``name`` (a key of :data:`STRATEGIES` or :data:`ALIASES`) built with
    ``options``."""
    cls = STRATEGIES.get(ALIASES.get(name, name))
    if cls is None:
        valid = ", ".join([*STRATEGIES, *ALIASES])
        raise ConfigError(f"unknown strategy {name!r}; valid: {valid}")
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(f"strategy {name!r}: {exc}") from None


__all__ = [
    "ALIASES",
    "MCTS",
    "REFLECTION",
    "STRATEGIES",
    "BeamSearch",
    "BestOfN",
    "Candidate",
    "Greedy",
    "LogProbScorer",
    "Majority",
    "Node",
    "Reflection",
    "RewardModelScorer",
    "Scorer",
    "SearchResult",
    "StepSpec",
    "Strategy",
    "TokenConfidence",
    "VerifierScorer",
    "WeightedVote",
    "default_prompt",
    "extract_for",
    "equal_for",
    "make_scorer",
    "make_strategy",
    "strategy_names",
    "mean_confidence",
    "render_prompt",
    "response_steps",
    "split_steps",
    "token_confidences",
]
