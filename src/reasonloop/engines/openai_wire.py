"""The OpenAI-compatible wire format: engine specs naming endpoints, and the pure functions that
read a server's JSON answers (choices, both shapes of log-probs, echoed prompt log-probs).

Nothing here sends a request: :mod:`reasonloop.engines.openai` does the HTTP, balancing and
retries, and calls these on what comes back. What the format covers, and the server quirks it
allows for, is described there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from reasonloop.engines.base import Sample
from reasonloop.errors import ConfigError, EngineError

SPEC_FORM = "openai:URL#MODEL[,URL#MODEL...], e.g. openai:http://127.0.0.1:8000/v1#my-model"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One server: ``base_url`` up to and including ``/v1``; ``model`` the name it serves."""

    base_url: str
    model: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))


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


# --- response parsing: pure functions over the decoded JSON ---------------------------------


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


__all__ = ["SPEC_FORM", "Endpoint", "echo_logprobs", "parse_choices", "parse_spec"]
