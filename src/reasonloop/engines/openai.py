"""The OpenAI-compatible HTTP engine: vLLM, SGLang and llama.cpp servers, one or many endpoints.

This module is the transport (HTTP, balancing over endpoints, retries, health); the wire format
(specs, parsing answers) is :mod:`reasonloop.engines.openai_wire`.

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

import httpx

from reasonloop.engines.base import Message, Prompt, Request, Result, Sample, Scored, render_chatml
from reasonloop.engines.openai_wire import Endpoint, echo_logprobs, parse_choices, parse_spec
from reasonloop.errors import ConfigError, EngineError

log = logging.getLogger(__name__)

API_KINDS = ("auto", "chat", "completions")
CHAT_TEMPLATES = ("chatml",)
_BACKOFF_CAP = 8.0


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


__all__ = ["API_KINDS", "EndpointHealth", "OpenAIEngine"]
