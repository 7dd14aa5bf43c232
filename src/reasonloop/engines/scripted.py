"""A scripted engine for tests of orchestration logic: replies come from a function or a list.

It implements the :class:`~reasonloop.engines.base.Engine` protocol without a model. Use it to test
loops whose model calls must return known texts (REL, search, votes); never as the only test of a
stage that a real engine runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from reasonloop.engines.base import Message, Prompt, Request, Result, Sample, Scored


def prompt_text(req: Request) -> str:
    """The request's text: the raw prompt, or the messages' contents joined by newlines."""
    if req.prompt is not None:
        return req.prompt
    return "\n".join(m.content for m in req.messages or ())


class ScriptedEngine:
    """``reply(request, sample_index) -> str`` decides each sample; or pass a list of texts to be
    returned in order (cycling). Tokens are counted as whitespace-separated words. ``calls``
    records every request seen."""

    def __init__(
        self,
        reply: Callable[[Request, int], str] | Sequence[str],
        *,
        spec: str = "scripted",
        model: str = "scripted",
        logprob: Callable[[str], float] | None = None,
    ):
        self.spec = spec
        self.model = model
        self.calls: list[Request] = []
        self._logprob = logprob or (lambda tok: -1.0)
        if callable(reply):
            self._reply = reply
        else:
            texts = list(reply)
            counter = iter(range(10**9))
            self._reply = lambda req, i: texts[next(counter) % len(texts)]

    def generate(self, requests: Sequence[Request]) -> list[Result]:
        out = []
        for req in requests:
            self.calls.append(req)
            samples = []
            for i in range(req.n):
                text = self._reply(req, i)
                finish = "stop"
                words = text.split()
                if len(words) > req.max_tokens:
                    text, finish = " ".join(words[: req.max_tokens]), "length"
                    words = words[: req.max_tokens]
                for s in req.stop:
                    if s in text:
                        text, finish = text[: text.index(s)], "stop"
                lps = tuple(self._logprob(w) for w in text.split()) if req.logprobs else None
                samples.append(Sample(text, len(text.split()), finish, lps))
            out.append(Result(tuple(samples), prompt_tokens=len(prompt_text(req).split())))
        return out

    def score(self, prompt: Prompt, continuation: str) -> Scored:
        return Scored(tuple(self._logprob(w) for w in continuation.split()))

    def close(self) -> None:
        pass


__all__ = ["Message", "ScriptedEngine", "prompt_text"]
