"""The one engine protocol every backend implements.

An engine turns :class:`Request` s into :class:`Result` s (``n`` samples each) and scores given
continuations (``score``) for perplexity and confidence. Chat templates are the engine's job: a
request with ``messages`` is rendered with the model's template; a request with ``prompt`` is sent
raw. Engines are not thread-safe unless they say so.

Rendering chat messages to the raw text a model continues (search strategies that extend a partial
response need it) is :func:`render_prompt`: the engine's own ``render`` / ``render_messages`` when
it has one (the llama.cpp and transformers engines apply the model's template), else ChatML
(:func:`render_chatml`, right for Qwen and SmolLM2, wrong for other templates).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from reasonloop.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # system | user | assistant
    content: str


@dataclass(frozen=True, slots=True)
class Request:
    """What to sample. Exactly one of ``messages`` / ``prompt`` is set.

    ``seed``: sample ``i`` of the request uses ``seed + i``, so the same seed gives the same texts
    on the same engine and model. ``logprobs``: return each sampled token's log-prob;
    ``top_logprobs``: also the top-k alternatives' log-probs per position (for confidence rewards).
    """

    messages: tuple[Message, ...] | None = None
    prompt: str | None = None
    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ConfigError("needs exactly one of messages= or prompt=", field="Request")
        for name, low in (("n", 1), ("max_tokens", 1), ("temperature", 0)):
            if getattr(self, name) < low:
                raise ConfigError(f"must be >= {low}, got {getattr(self, name)}", field=name)


@dataclass(frozen=True, slots=True)
class Sample:
    """One sampled continuation. ``finish_reason``: ``stop`` (EOS or a stop string) or ``length``."""

    text: str
    tokens: int
    finish_reason: str
    logprobs: tuple[float, ...] | None = None
    top_logprobs: tuple[tuple[float, ...], ...] | None = None

    @property
    def mean_logprob(self) -> float | None:
        if not self.logprobs:
            return None
        return sum(self.logprobs) / len(self.logprobs)


@dataclass(frozen=True, slots=True)
class Result:
    samples: tuple[Sample, ...]
    prompt_tokens: int = 0

    @property
    def completion_tokens(self) -> int:
        return sum(s.tokens for s in self.samples)


@dataclass(frozen=True, slots=True)
class Scored:
    """Log-probs of each continuation token given the prompt."""

    logprobs: tuple[float, ...]

    @property
    def tokens(self) -> int:
        return len(self.logprobs)

    @property
    def mean_logprob(self) -> float:
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else 0.0

    @property
    def perplexity(self) -> float:
        return math.exp(-self.mean_logprob) if self.logprobs else float("nan")


Prompt = str | tuple[Message, ...]


@runtime_checkable
class Engine(Protocol):
    """``spec`` is how the engine was named (``llamacpp:PATH``, ``hf:PATH``, ``openai:URL#MODEL``);
    ``model`` a short model name for provenance."""

    spec: str
    model: str

    def generate(self, requests: Sequence[Request]) -> list[Result]:
        """Sample every request; results in request order."""
        ...

    def score(self, prompt: Prompt, continuation: str) -> Scored:
        """Log-probs of ``continuation``'s tokens after ``prompt`` (messages get the chat
        template with an open assistant turn)."""
        ...

    def close(self) -> None: ...


def user_messages(content: str, system: str | None = None) -> tuple[Message, ...]:
    """The usual single-turn chat: an optional system message, then the user's."""
    msgs = [Message("system", system)] if system else []
    msgs.append(Message("user", content))
    return tuple(msgs)


def continuation_start(prompt_ids: Sequence[int], full_ids: Sequence[int]) -> int:
    """Where a continuation's tokens start in the tokens of ``prompt + continuation``: after the
    longest common prefix with the prompt's own tokens (a merge across the boundary counts toward
    the continuation), and never at 0 (the first token has no prediction to score)."""
    k = 0
    while k < min(len(prompt_ids), len(full_ids)) and prompt_ids[k] == full_ids[k]:
        k += 1
    return max(k, 1)


def render_chatml(messages: Sequence[Message]) -> str:
    """ChatML (Qwen, SmolLM2, ...) with an open assistant turn. No default system message is added
    (SmolLM2's own template adds one when the first message is not a system message)."""
    body = "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in messages)
    return body + "<|im_start|>assistant\n"


_warned_chatml: set[str] = set()


def render_prompt(engine: Engine, prompt: Prompt) -> str:
    """The raw text an engine continues for ``prompt``: a string as is; chat messages through the
    engine's ``render_messages(messages)`` or ``render(messages)`` when it has one, else as ChatML
    (with a warning, once per engine spec)."""
    if isinstance(prompt, str):
        return prompt
    for name in ("render_messages", "render"):  # HFEngine.render takes a prompt or messages
        render = getattr(engine, name, None)
        if callable(render):
            return str(render(tuple(prompt)))
    if engine.spec not in _warned_chatml:
        _warned_chatml.add(engine.spec)
        logger.warning(
            "engine %s has no render_messages(); rendering chat messages as ChatML to continue "
            "partial responses (pass a string prompt for other chat templates)",
            engine.spec,
        )
    return render_chatml(tuple(prompt))
