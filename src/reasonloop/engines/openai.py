"""The OpenAI-compatible HTTP engine: vLLM, SGLang and llama.cpp servers, one or many endpoints.

``OpenAIEngine.from_spec("openai:http://10.0.0.1:8000/v1#Qwen/Qwen2.5-7B-Instruct,"
"http://10.0.0.2:8000/v1#Qwen/Qwen2.5-7B-Instruct")`` spreads the requests of each
``generate`` call over both servers (least outstanding requests first), retries connection
errors, timeouts, 5xx and 429 answers with exponential backoff, and takes an endpoint that stops
answering out of rotation, re-sending its requests to the others. Only when every endpoint is down
does ``generate`` raise :class:`~reasonloop.errors.EngineError`, naming each URL and its last error.

What it speaks: ``/chat/completions`` for requests with ``messages`` and ``/completions`` for raw
prompts (``api="auto"``), with ``n``, ``temperature``, ``top_p``, ``max_tokens``, ``stop``,
``seed`` and log-probs, and both response shapes of log-probs (the chat ``content`` list and the
legacy ``tokens`` / ``token_logprobs`` lists). A server that returns fewer choices than ``n`` (the
llama-cpp-python server always returns one) gets further requests for the missing samples, sample
``i`` with ``seed + i``; once an endpoint is seen to do that, its multi-sample requests are split
into single-sample ones up front so they spread over all endpoints.

What it does not do: stream, call tools, or send sampling options the :class:`Request` lacks
(``top_k``, ``repeat_penalty``: each server's default applies, and the llama-cpp-python server's
defaults are ``top_k=40, repeat_penalty=1.1``, unlike vLLM's). Token counts come from the
log-probs when present, else from ``usage``; a multi-choice answer without log-probs has only a
total, which is split over the choices in proportion to their lengths (an estimate).

Scoring (``score``) sends the prompt and prompt + continuation to ``/completions`` with
``echo=true, logprobs=1, max_tokens=1`` and reads the echoed prompt log-probs (vLLM, SGLang, the
llama-cpp-python server). Caveat: the llama-cpp-python server pairs each echoed token with the
log-prob row of the *next* position when the tokenized prompt does not start with the model's BOS
token (SmolLM2 adds no BOS; a ChatML prompt starting ``<|im_start|>`` does start with it). Every
score checks that the echoed tokens spell the continuation and raises ``EngineError`` when they do
not, so a shifted server fails loudly instead of returning wrong numbers. ``llama-server`` (the
native llama.cpp server) does not echo prompt log-probs, so it cannot score; use the ``llamacpp``
engine for that.
"""

from __future__ import annotations

import heapq
import inspect
import itertools
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from reasonloop.engines.base import (
    Message,
    Prompt,
    Request,
    Result,
    Sample,
    Scored,
    render_chatml,
)
from reasonloop.errors import ConfigError, EngineError

log = logging.getLogger(__name__)

API_KINDS = ("auto", "chat", "completions")
CHAT_TEMPLATES = ("chatml",)
SPEC_FORM = "openai:URL#MODEL[,URL#MODEL...], e.g. openai:http://127.0.0.1:8000/v1#my-model"
_BACKOFF_CAP = 8.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One server: ``base_url`` up to and including ``/v1``; ``model`` the name it serves."""

    base_url: str
    model: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    """A snapshot of one endpoint: ``sent`` requests so far, ``failures`` in all, whether it is
    in rotation, and its last error."""

    base_url: str
    model: str
    alive: bool
    sent: int
    failures: int
    last_error: str | None


def parse_spec(spec: str) -> tuple[Endpoint, ...]:
    """The endpoints of ``openai:URL#MODEL[,URL#MODEL...]``; raises ConfigError naming the bad item.

    URLs must be ``http(s)://host[:port][/path]`` and each needs a ``#MODEL``; the same URL may not
    appear twice.
    """
    kind, sep, rest = spec.partition(":")
    if kind != "openai" or not sep or not rest.strip():
        raise ConfigError(f"engine spec {spec!r} is not an openai spec; expected {SPEC_FORM}")
    endpoints: list[Endpoint] = []
    for i, raw in enumerate(rest.split(","), start=1):
        item = raw.strip()
        url, hashmark, model = item.partition("#")
        where = f"engine spec {spec!r}, endpoint {i} ({item!r})"
        if not item:
            raise ConfigError(f"{where}: empty endpoint (stray comma?); expected {SPEC_FORM}")
        if not hashmark or not model.strip():
            raise ConfigError(f"{where}: missing '#MODEL' after the URL; expected {SPEC_FORM}")
        if any(c.isspace() for c in model.strip()):
            raise ConfigError(f"{where}: model name {model!r} contains whitespace")
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"{where}: URL {url!r} must start with http:// or https:// and name a host"
            )
        try:
            parts.port  # noqa: B018 -- raises ValueError on a bad port
        except ValueError:
            raise ConfigError(f"{where}: URL {url!r} has a bad port") from None
        ep = Endpoint(url.strip(), model.strip())
        if any(e.base_url == ep.base_url for e in endpoints):
            raise ConfigError(f"{where}: URL {ep.base_url!r} appears twice")
        endpoints.append(ep)
    return tuple(endpoints)


# ---------------------------------------------------------------------------------------------
# Response parsing: pure functions over the decoded JSON.


def _logprob_rows(lp: Any) -> list[tuple[str, float | None, dict[str, float] | None]]:
    """(token, logprob, top alternatives) per position from either log-probs shape."""
    if not isinstance(lp, dict):
        return []
    if isinstance(lp.get("content"), list):  # chat shape (also llama-server's /completions)
        rows = []
        for item in lp["content"]:
            top = item.get("top_logprobs")
            alts = (
                {
                    str(t.get("token")): float(t["logprob"])
                    for t in top
                    if t.get("logprob") is not None
                }
                if isinstance(top, list)
                else None
            )
            val = item.get("logprob")
            rows.append((str(item.get("token", "")), None if val is None else float(val), alts))
        return rows
    tokens = lp.get("tokens") or []
    values = lp.get("token_logprobs") or []
    tops = lp.get("top_logprobs") or []
    rows = []
    for i, tok in enumerate(tokens):
        val = values[i] if i < len(values) else None
        top = tops[i] if i < len(tops) else None
        alts = {str(k): float(v) for k, v in top.items()} if isinstance(top, dict) else None
        rows.append((str(tok), None if val is None else float(val), alts))
    return rows


def _top_k(alts: dict[str, float] | None, k: int) -> tuple[float, ...]:
    # Servers add the sampled token to the alternatives when it is not among the top k
    # (llama-cpp-python, vLLM); keep the k largest.
    return tuple(sorted((alts or {}).values(), reverse=True)[:k])


def _choice_text(choice: dict[str, Any], chat: bool) -> str:
    if not chat:
        return str(choice.get("text") or "")
    msg = choice.get("message") or {}
    content = str(msg.get("content") or "")
    # vLLM / SGLang reasoning parsers move an R1-style thought out of the content; put it back so
    # that reasonloop.format sees the whole response.
    thought = msg.get("reasoning_content") or msg.get("reasoning")
    if thought:
        return f"<think>\n{str(thought).strip()}\n</think>\n\n{content.lstrip()}"
    return content


def parse_choices(
    data: dict[str, Any], *, chat: bool, logprobs: bool = False, top_logprobs: int = 0
) -> tuple[list[Sample], int]:
    """The samples (in choice-index order) and prompt token count of one response.

    ``finish_reason`` is ``length`` when the server says so and ``stop`` otherwise. Raises
    EngineError when the body is not a completion response.
    """
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list):
        raise EngineError(f"response has no 'choices' list: {str(data)[:300]}")
    if not all(isinstance(c, dict) for c in choices):
        raise EngineError(f"response 'choices' are not all objects: {str(choices)[:300]}")
    choices = sorted(choices, key=lambda c: c.get("index", 0))
    usage = data.get("usage") or {}
    completion_total = usage.get("completion_tokens")
    texts = [_choice_text(c, chat) for c in choices]
    rows_per = [_logprob_rows(c.get("logprobs")) for c in choices]
    # Tokens per choice: the log-probs' length; else usage's total (after the choices that have
    # log-probs) split over the rest in proportion to their text lengths, an estimate.
    rest = (completion_total or 0) - sum(len(r) for r in rows_per if r)
    rest_chars = sum(len(t) for t, r in zip(texts, rows_per, strict=True) if not r) or 1
    alone = sum(1 for r in rows_per if not r) == 1
    samples = []
    for choice, text, rows in zip(choices, texts, rows_per, strict=True):
        if rows:
            tokens = len(rows)
        elif isinstance(completion_total, int):
            tokens = max(0, rest if alone else round(rest * len(text) / rest_chars))
        else:
            tokens = 0
        lps = tps = None
        if (logprobs or top_logprobs) and rows:
            lps = tuple(0.0 if v is None else v for _, v, _ in rows)
            if top_logprobs:
                tps = tuple(_top_k(alts, top_logprobs) for _, _, alts in rows)
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        samples.append(Sample(text, tokens, finish, lps, tps))
    prompt_tokens = usage.get("prompt_tokens")
    return samples, prompt_tokens if isinstance(prompt_tokens, int) else 0


def _comparable(text: str) -> str:
    # Per-token strings of split multi-byte characters come back lossy ("", U+FFFD, byte
    # escapes); compare the ASCII parts only.
    return "".join(c for c in text if c.isascii())


def echo_logprobs(
    prompt_only: dict[str, Any], full: dict[str, Any], continuation: str, *, url: str
) -> tuple[float, ...]:
    """The continuation's log-probs from two ``/completions`` responses made with ``echo=true,
    logprobs=1, max_tokens=1``: one for the prompt alone, one for prompt + continuation.

    The continuation's token count is the difference of the two ``usage.prompt_tokens``; its
    log-probs are the last that many echoed prompt positions (generated tokens are dropped). Raises
    EngineError when the server echoed no prompt log-probs, or when the echoed tokens at those
    positions do not spell the continuation (a server that shifts echo log-probs by one, or a
    prompt/continuation boundary that tokenizes as one token).
    """
    p_prompt = (prompt_only.get("usage") or {}).get("prompt_tokens")
    usage = full.get("usage") or {}
    p_full = usage.get("prompt_tokens")
    if not isinstance(p_prompt, int) or not isinstance(p_full, int):
        raise EngineError(f"{url} cannot score: its /completions answer has no usage.prompt_tokens")
    n_cont = p_full - p_prompt
    choices = full.get("choices") or [{}]
    rows = _logprob_rows(choices[0].get("logprobs"))
    generated = usage.get("completion_tokens")
    generated = generated if isinstance(generated, int) else 1
    prompt_rows = len(rows) - generated
    first = prompt_rows - n_cont
    if not rows or first < 1 or n_cont < 1:
        if rows and n_cont < 1:
            raise EngineError(
                f"{url}: the continuation {continuation[:40]!r} added no token to the prompt "
                f"({p_prompt} -> {p_full} tokens); it merges into the prompt's last token"
            )
        raise EngineError(
            f"{url} cannot score: /completions with echo=true and logprobs=1 returned "
            f"{len(rows)} log-prob positions for a {p_full}-token prompt (no echoed prompt "
            "log-probs; vLLM, SGLang and the llama-cpp-python server return them, llama-server "
            "does not). Use the llamacpp or hf engine to score."
        )
    span = rows[first:prompt_rows]
    spelled = "".join(tok for tok, _, _ in span)
    if _comparable(spelled) != _comparable(continuation):
        raise EngineError(
            f"{url}: echoed prompt log-probs do not line up with the continuation (tokens spell "
            f"{spelled[:60]!r}, expected {continuation[:60]!r}). The llama-cpp-python server shifts "
            "echo log-probs by one token when the prompt does not start with the model's BOS token "
            "(e.g. SmolLM2 on a raw prompt; a ChatML prompt is fine); score with the llamacpp "
            "engine, a vLLM / SGLang server, or a chat-templated prompt."
        )
    if any(v is None for _, v, _ in span):
        raise EngineError(f"{url}: echoed prompt log-probs contain nulls inside the continuation")
    return tuple(float(v) for _, v, _ in span)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Transport: one attempt at one endpoint, classified.


class _Transient(Exception):
    """A failure worth retrying (elsewhere): connection, timeout, 5xx, 429."""

    def __init__(self, message: str, *, down: bool = False, counts: bool = True, retry_after=None):
        super().__init__(message)
        self.down = down  # the server is not listening: take it out of rotation now
        self.counts = counts  # counts towards the endpoint's consecutive failures (not 429)
        self.retry_after = retry_after


class _Fatal(Exception):
    """A failure no retry fixes: a 4xx answer (bad request, unknown model) or a non-JSON body."""


@dataclass(slots=True)
class _Slot:
    """Mutable state of one endpoint, guarded by the engine's lock."""

    endpoint: Endpoint
    client: httpx.Client
    outstanding: int = 0
    sent: int = 0
    consecutive: int = 0
    failures: int = 0
    dead_until: float | None = None  # None: in rotation; else one probe is allowed after it
    ignores_n: bool = False
    last_error: str | None = None

    def usable(self, now: float, concurrency: int) -> bool:
        if self.dead_until is None:
            return self.outstanding < concurrency
        return now >= self.dead_until and self.outstanding == 0  # half-open: one probe


@dataclass(slots=True)
class _Job:
    index: int  # request index
    start: int  # first sample index this job draws
    count: int
    attempts: int = 0
    not_before: float = 0.0
    order: int = field(default_factory=itertools.count().__next__)


class OpenAIEngine:
    """Sample from and score with OpenAI-compatible servers; see the module docstring.

    ``endpoints``: :class:`Endpoint` s or ``(base_url, model)`` pairs. ``api_key``: sent as a
    bearer token (default ``$OPENAI_API_KEY``, else none). ``timeout``: seconds per HTTP request.
    ``max_retries``: further attempts per request after a transient failure. ``concurrency``:
    requests in flight per endpoint. ``api``: ``auto`` (chat for messages, completions for raw
    prompts), ``chat`` (raw prompts go as one user message) or ``completions`` (messages are
    rendered with ``chat_template``). ``chat_template``: ``chatml`` or None (then messages that
    must be rendered client-side use the server's ``/apply-template``, which llama-server has).
    ``max_failures``: consecutive failures that take an endpoint out of rotation (a refused
    connection does it at once); ``revive_after``: seconds before a dead endpoint gets one probe.
    ``split_n``: always send ``n`` single-sample requests (sample ``i`` with ``seed + i``), so
    that the texts do not depend on whether a server honours ``n`` (vLLM draws ``n`` samples from
    one seed its own way).

    ``generate`` and ``score`` may be called from several threads.
    """

    def __init__(
        self,
        endpoints: Sequence[Endpoint | tuple[str, str]],
        *,
        spec: str | None = None,
        api_key: str | None = None,
        timeout: float = 600.0,
        max_retries: int = 3,
        concurrency: int = 4,
        api: str = "auto",
        chat_template: str | None = None,
        backoff: float = 0.5,
        max_failures: int = 3,
        revive_after: float = 60.0,
        split_n: bool = False,
    ):
        eps = tuple(e if isinstance(e, Endpoint) else Endpoint(*e) for e in endpoints)
        if not eps:
            raise ConfigError("OpenAIEngine needs at least one endpoint")
        checks = [
            ("timeout", timeout, timeout > 0, "> 0"),
            ("max_retries", max_retries, max_retries >= 0, ">= 0"),
            ("concurrency", concurrency, concurrency >= 1, ">= 1"),
            ("backoff", backoff, backoff >= 0, ">= 0"),
            ("max_failures", max_failures, max_failures >= 1, ">= 1"),
            ("revive_after", revive_after, revive_after >= 0, ">= 0"),
            ("api", api, api in API_KINDS, f"one of {API_KINDS}"),
            ("chat_template", chat_template, chat_template in (None, *CHAT_TEMPLATES),
             f"None or one of {CHAT_TEMPLATES}"),
        ]  # fmt: skip
        for name, value, ok, want in checks:
            if not ok:
                raise ConfigError(f"openai engine option {name}={value!r}: must be {want}")
        self.endpoints = eps
        self.spec = spec or "openai:" + ",".join(f"{e.base_url}#{e.model}" for e in eps)
        names = sorted({e.model for e in eps})
        self.model = names[0] if len(names) == 1 else "+".join(names)
        self.api = api
        self.chat_template = chat_template
        self.timeout = timeout
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.backoff = backoff
        self.max_failures = max_failures
        self.revive_after = revive_after
        self.split_n = split_n
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        http_timeout = httpx.Timeout(timeout, connect=min(10.0, timeout))
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._slots = [
            _Slot(e, httpx.Client(base_url=e.base_url, headers=headers, timeout=http_timeout,
                                  limits=limits))
            for e in eps
        ]  # fmt: skip
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._templates: dict[str, str] = {}

    @classmethod
    def from_spec(cls, spec: str, **options: Any) -> OpenAIEngine:
        """Build from ``openai:URL#MODEL[,URL#MODEL...]``; options are the constructor's keywords."""
        valid = [
            p
            for p in inspect.signature(cls.__init__).parameters
            if p not in ("self", "endpoints", "spec")
        ]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise ConfigError(f"unknown openai engine option(s) {unknown}; valid: {valid}")
        return cls(parse_spec(spec), spec=spec, **options)

    # -- public API -----------------------------------------------------------------------

    def generate(self, requests: Sequence[Request]) -> list[Result]:
        """Sample every request over all live endpoints; results in request order.

        Raises EngineError when a request fails ``max_retries + 1`` times, when a server rejects
        a request (4xx), or when every endpoint is out of rotation.
        """
        reqs = list(requests)
        samples: list[dict[int, Sample]] = [{} for _ in reqs]
        prompt_tokens = [0] * len(reqs)
        ready: deque[_Job] = deque(_Job(i, 0, r.n) for i, r in enumerate(reqs))
        delayed: list[tuple[float, int, _Job]] = []
        inflight: dict[Future, tuple[_Slot, _Job]] = {}
        pool = self._executor()
        try:
            while ready or delayed or inflight:
                now = time.monotonic()
                while delayed and delayed[0][0] <= now:
                    ready.appendleft(heapq.heappop(delayed)[2])
                self._dispatch(reqs, ready, inflight, pool, now)
                if not inflight:
                    self._raise_if_all_dead()
                    if not ready and not delayed:
                        break
                wake = max(0.0, delayed[0][0] - time.monotonic()) if delayed else None
                if not inflight:
                    # Only backoffs (or a dead endpoint's probe time) to wait for.
                    time.sleep(min(wake if wake is not None else 0.05, 0.05 if ready else 60.0))
                    continue
                done, _ = wait(list(inflight), timeout=wake, return_when=FIRST_COMPLETED)
                for fut in done:
                    slot, job = inflight.pop(fut)
                    self._settle(reqs, slot, job, fut, ready, delayed, samples, prompt_tokens)
        except BaseException:
            for fut in inflight:
                fut.cancel()
            raise
        return [
            Result(tuple(s[i] for i in range(r.n)), prompt_tokens=pt)
            for r, s, pt in zip(reqs, samples, prompt_tokens, strict=True)
        ]

    def score(self, prompt: Prompt, continuation: str) -> Scored:
        """Log-probs of ``continuation``'s tokens after ``prompt`` (see the module docstring for
        which servers can; others raise EngineError saying so). Messages are rendered with
        ``chat_template`` or the server's ``/apply-template``. An empty continuation scores ``()``.
        """
        if not continuation:
            return Scored(())
        attempts = 0
        while True:
            slot = self._acquire_one()
            try:
                text = prompt if isinstance(prompt, str) else self._render(slot, prompt)
                body = {"model": slot.endpoint.model, "max_tokens": 1, "temperature": 0.0,
                        "logprobs": 1, "echo": True}  # fmt: skip
                first = self._post(slot, "/completions", {**body, "prompt": text})
                second = self._post(slot, "/completions", {**body, "prompt": text + continuation})
            except _Transient as exc:
                attempts += 1
                self._release(slot, exc)
                self._raise_if_all_dead()
                if attempts > self.max_retries:
                    raise EngineError(self._gave_up(slot, attempts, exc)) from None
                time.sleep(self._delay(attempts, exc, slot))
                continue
            except _Fatal as exc:
                self._release(slot, None)
                raise EngineError(f"{slot.endpoint.base_url} cannot score: {exc}") from None
            except BaseException:
                self._release(slot, None)
                raise
            self._release(slot, None)
            return Scored(echo_logprobs(first, second, continuation, url=slot.endpoint.base_url))

    def score_many(self, pairs: Sequence[tuple[Prompt, str]]) -> list[Scored]:
        """``score`` of many (prompt, continuation) pairs, concurrently, in order."""
        return list(self._executor().map(lambda pc: self.score(*pc), pairs))

    def health(self) -> tuple[EndpointHealth, ...]:
        """Per endpoint: in rotation or not, requests sent, failures, last error."""
        with self._lock:
            return tuple(
                EndpointHealth(s.endpoint.base_url, s.endpoint.model, s.dead_until is None,
                               s.sent, s.failures, s.last_error)
                for s in self._slots
            )  # fmt: skip

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        for slot in self._slots:
            slot.client.close()

    def __enter__(self) -> OpenAIEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scheduling -----------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.concurrency * len(self._slots), thread_name_prefix="openai"
                )
            return self._pool

    def _pick(self, now: float) -> _Slot | None:
        # Least outstanding requests; ties go to the endpoint sent fewest so far (round robin).
        usable = [s for s in self._slots if s.usable(now, self.concurrency)]
        return min(usable, key=lambda s: (s.outstanding, s.sent), default=None)

    def _dispatch(self, reqs, ready, inflight, pool, now) -> None:
        while ready:
            with self._lock:
                slot = self._pick(now)
                if slot is None:
                    return
                job = ready.popleft()
                if job.count > 1 and (slot.ignores_n or self.split_n):
                    singles = [_Job(job.index, job.start + k, 1) for k in range(1, job.count)]
                    ready.extendleft(reversed(singles))
                    job.count = 1
                slot.outstanding += 1
                slot.sent += 1
            try:  # outside the lock: rendering messages may ask the server for its template
                path, body = self._body(slot, reqs[job.index], job)
            except BaseException:
                self._release(slot, None)
                raise
            inflight[pool.submit(self._post, slot, path, body)] = (slot, job)

    def _settle(self, reqs, slot, job, fut, ready, delayed, samples, prompt_tokens) -> None:
        exc = fut.exception()
        if exc is None:
            self._release(slot, None)
            req = reqs[job.index]
            chat = self._uses_chat(req)
            got, ptoks = parse_choices(
                fut.result(), chat=chat, logprobs=req.logprobs, top_logprobs=req.top_logprobs
            )
            if not got:
                raise EngineError(
                    f"{slot.endpoint.base_url} returned no choices for request {job.index}"
                )
            got = got[: job.count]
            for k, sample in enumerate(got):
                samples[job.index][job.start + k] = sample
            prompt_tokens[job.index] = prompt_tokens[job.index] or ptoks
            if len(got) < job.count:
                if not slot.ignores_n:
                    log.info("%s returned %d of %d choices; splitting n from now on",
                             slot.endpoint.base_url, len(got), job.count)  # fmt: skip
                    with self._lock:
                        slot.ignores_n = True
                ready.appendleft(_Job(job.index, job.start + len(got), job.count - len(got)))
            return
        if isinstance(exc, _Fatal):
            self._release(slot, None)
            raise EngineError(f"{slot.endpoint.base_url}: request {job.index} failed: {exc}")
        if not isinstance(exc, _Transient):
            self._release(slot, None)
            raise exc
        self._release(slot, exc)
        self._raise_if_all_dead()
        job.attempts += 1
        if job.attempts > self.max_retries:
            raise EngineError(self._gave_up(slot, job.attempts, exc, index=job.index))
        delay = self._delay(job.attempts, exc, slot)
        heapq.heappush(delayed, (time.monotonic() + delay, job.order, job))

    def _delay(self, attempt: int, exc: _Transient, slot: _Slot) -> float:
        if exc.retry_after is not None:
            return min(_BACKOFF_CAP, exc.retry_after)
        with self._lock:
            others_alive = any(s.dead_until is None for s in self._slots if s is not slot)
            failed_over = slot.dead_until is not None and others_alive
        if failed_over:
            return 0.0  # re-send to a live endpoint at once
        return min(_BACKOFF_CAP, self.backoff * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)

    def _acquire_one(self) -> _Slot:
        while True:
            with self._lock:
                slot = self._pick(time.monotonic())
                if slot is not None:
                    slot.outstanding += 1
                    slot.sent += 1
                    return slot
            self._raise_if_all_dead()
            time.sleep(0.01)

    def _release(self, slot: _Slot, exc: _Transient | None) -> None:
        with self._lock:
            slot.outstanding -= 1
            if exc is None:
                slot.consecutive = 0
                slot.dead_until = None
                return
            slot.last_error = str(exc)
            if not exc.counts:
                return
            slot.failures += 1
            slot.consecutive += 1
            if exc.down or slot.consecutive >= self.max_failures or slot.dead_until is not None:
                if slot.dead_until is None:
                    log.warning("taking %s out of rotation: %s", slot.endpoint.base_url, exc)
                slot.dead_until = time.monotonic() + self.revive_after

    def _raise_if_all_dead(self) -> None:
        with self._lock:
            now = time.monotonic()
            if any(s.dead_until is None or now >= s.dead_until for s in self._slots):
                return
            detail = "; ".join(f"{s.endpoint.base_url} ({s.last_error})" for s in self._slots)
        raise EngineError(f"every endpoint of {self.spec!r} is down: {detail}")

    def _gave_up(self, slot: _Slot, attempts: int, exc: Exception, index: int | None = None) -> str:
        what = "score request" if index is None else f"request {index}"
        return (
            f"{what} failed {attempts} times (max_retries={self.max_retries}); last error at "
            f"{slot.endpoint.base_url}: {exc}"
        )

    # -- request bodies -------------------------------------------------------------------

    def _uses_chat(self, req: Request) -> bool:
        if self.api == "auto":
            return req.messages is not None
        return self.api == "chat"

    def _body(self, slot: _Slot, req: Request, job: _Job) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": slot.endpoint.model,
            "n": job.count,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "max_tokens": req.max_tokens,
        }
        if req.stop:
            body["stop"] = list(req.stop)
        if req.seed is not None:
            body["seed"] = req.seed + job.start
        want_lp = req.logprobs or req.top_logprobs > 0
        if self._uses_chat(req):
            msgs = (
                req.messages if req.messages is not None else (Message("user", req.prompt or ""),)
            )
            body["messages"] = [{"role": m.role, "content": m.content} for m in msgs]
            if want_lp:
                body["logprobs"] = True
                body["top_logprobs"] = req.top_logprobs
            return "/chat/completions", body
        # Runs in the dispatching thread: a server template lookup here is one short request.
        body["prompt"] = req.prompt if req.prompt is not None else self._render(slot, req.messages)
        if want_lp:
            body["logprobs"] = req.top_logprobs
        return "/completions", body

    def _render(self, slot: _Slot, messages: Sequence[Message] | None) -> str:
        msgs = tuple(messages or ())
        if self.chat_template == "chatml":
            return render_chatml(msgs)
        key = repr((slot.endpoint.base_url, msgs))
        if key in self._templates:
            return self._templates[key]
        root = slot.endpoint.base_url.removesuffix("/v1")
        payload = {"messages": [{"role": m.role, "content": m.content} for m in msgs]}
        try:
            resp = slot.client.post(root + "/apply-template", json=payload)
            text = resp.json().get("prompt") if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            text = None
        if not isinstance(text, str):
            raise EngineError(
                f"{slot.endpoint.base_url}: messages must be rendered to a prompt here (api="
                f"{self.api!r} or score) but the server has no /apply-template endpoint; pass "
                "chat_template='chatml' for ChatML models (Qwen, SmolLM2) or a prompt string "
                "rendered with the model's template"
            )
        if len(self._templates) < 10_000:
            self._templates[key] = text
        return text

    def _post(self, slot: _Slot, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = slot.endpoint.base_url + path
        try:
            resp = slot.client.post(path, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise _Transient(f"cannot connect to {url}: {exc}", down=True) from None
        except httpx.TimeoutException:
            raise _Transient(f"no answer from {url} within {self.timeout:g}s") from None
        except httpx.TransportError as exc:
            raise _Transient(f"{url}: {type(exc).__name__}: {exc}") from None
        code = resp.status_code
        if code == 429:
            raise _Transient(f"{url}: HTTP 429 (busy)", counts=False,
                             retry_after=_retry_after(resp.headers.get("retry-after")))  # fmt: skip
        if code >= 500:
            raise _Transient(f"{url}: HTTP {code}: {resp.text[:300]}")
        if code >= 400:
            hint = " (does the URL end in /v1?)" if code == 404 else ""
            raise _Fatal(f"{url}: HTTP {code}{hint}: {resp.text[:500]}")
        try:
            data = resp.json()
        except ValueError:
            raise _Fatal(f"{url}: answer is not JSON: {resp.text[:200]!r}") from None
        if not isinstance(data, dict):
            raise _Fatal(f"{url}: answer is not a JSON object: {str(data)[:200]}")
        return data


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


__all__ = [
    "API_KINDS",
    "Endpoint",
    "EndpointHealth",
    "OpenAIEngine",
    "echo_logprobs",
    "parse_choices",
    "parse_spec",
    "render_chatml",
]
