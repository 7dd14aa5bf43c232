"""The transformers engine: the trainable student (``hf:PATH``).

``PATH`` is a saved model directory (or a hub id, with a network), a directory holding a PEFT
adapter (``adapter_config.json``: its base model is loaded and the adapter put on top), or a
``.gguf`` file (dequantized by transformers, needs the ``gguf`` package; converted once into the
cache and loaded from there after, see :mod:`reasonloop.engines.convert`).

Sampling is a batched, KV-cached decode loop written here rather than ``model.generate``, so that
every sample has its own ``torch.Generator``: sample ``i`` of a request with seed ``s`` is drawn
with seed ``s + i`` whatever else shares its batch. Log-probs are those of the model's own
distribution (temperature 1), taken from the raw logits. Not made for speed on large models: on a
GPU box serve the model with vLLM and use ``openai:``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasonloop.engines import base
from reasonloop.engines.base import Message, Prompt, Request, Result, Sample, Scored
from reasonloop.engines.convert import gguf_to_hf
from reasonloop.errors import EngineError, MissingDependency

log = logging.getLogger(__name__)


def _torch():
    try:
        import torch
    except ImportError as exc:
        raise MissingDependency("torch", "train") from exc
    return torch


def load_model(path: str, *, dtype: str = "float32", device: str = "cpu") -> tuple[Any, Any]:
    """(model, tokenizer) from a model dir / hub id, an adapter dir, or a .gguf file."""
    torch = _torch()
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MissingDependency("transformers", "train") from exc
    torch_dtype = getattr(torch, dtype)
    p = Path(path)
    try:
        if p.suffix == ".gguf":
            tok, model = _load_gguf(p, torch_dtype)
        elif (p / "adapter_config.json").exists():
            try:
                from peft import AutoPeftModelForCausalLM
            except ImportError as exc:
                raise MissingDependency("peft", "train") from exc
            model = AutoPeftModelForCausalLM.from_pretrained(str(p), dtype=torch_dtype)
            tok = AutoTokenizer.from_pretrained(str(p))
        else:
            tok = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    except (OSError, ValueError) as exc:
        raise EngineError(f"hf:{path}: cannot load the model ({exc})") from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model.to(device).eval(), tok


def _load_gguf(p: Path, torch_dtype: Any) -> tuple[Any, Any]:
    """(tokenizer, model) of a GGUF: dequantized once into the cache, then loaded from there; where
    the cache cannot be written, dequantized in memory as before."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        src, kw = str(gguf_to_hf(p)), {}
    except OSError as exc:
        log.warning("%s: cannot cache the conversion (%s); dequantizing in memory", p, exc)
        src, kw = str(p.parent), {"gguf_file": p.name}
    tok = AutoTokenizer.from_pretrained(src, **kw)
    return tok, AutoModelForCausalLM.from_pretrained(src, dtype=torch_dtype, **kw)


class HFEngine:
    """The Engine protocol over a transformers causal LM; see the module docstring."""

    def __init__(
        self,
        path: str,
        *,
        spec: str | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        batch_size: int = 16,
        model: Any = None,
        tokenizer: Any = None,
    ):
        torch = _torch()
        if device == "cpu":
            torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
        self.spec = spec or f"hf:{path}"
        self.model = Path(path).name or path  # the name, for provenance (Engine protocol)
        self.lm = model  # the torch module (for training code)
        self.tokenizer = tokenizer
        if self.lm is None or self.tokenizer is None:
            self.lm, self.tokenizer = load_model(path, dtype=dtype, device=device)
        self.device = device
        self.batch_size = max(1, batch_size)
        eos = self.lm.generation_config.eos_token_id if self.lm.generation_config else None
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        self.eos_ids = frozenset(ids)
        # padding and unknown are never valid outputs: they are masked out of every sample
        self.banned = [
            t for t in (self.tokenizer.pad_token_id, self.tokenizer.unk_token_id) if t is not None
        ]
        self.banned = [t for t in self.banned if t not in self.eos_ids]

    # -- prompts -----------------------------------------------------------------------------------

    def render(self, prompt: Prompt) -> str:
        """The text the model sees: a raw prompt as is, messages through the chat template (with
        an open assistant turn). A tokenizer without a template gets ``role: content`` lines."""
        if isinstance(prompt, str):
            return prompt
        msgs = [{"role": m.role, "content": m.content} for m in prompt]
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                msgs, add_generation_prompt=True, tokenize=False
            )
        return "".join(f"{m['role']}: {m['content']}\n" for m in msgs) + "assistant: "

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    # -- sampling ----------------------------------------------------------------------------------

    def generate(self, requests: Sequence[Request]) -> list[Result]:
        jobs = []  # (request index, sample index, prompt ids)
        prompt_ids = []
        for r, req in enumerate(requests):
            ids = self._encode(
                self.render(req.messages if req.messages is not None else req.prompt)
            )
            prompt_ids.append(ids)
            jobs += [(r, i, ids) for i in range(req.n)]
        # long prompts together, so that a batch pads little
        order = sorted(range(len(jobs)), key=lambda j: -len(jobs[j][2]))
        samples: dict[tuple[int, int], Sample] = {}
        for start in range(0, len(order), self.batch_size):
            batch = [jobs[j] for j in order[start : start + self.batch_size]]
            for (r, i, _), sample in zip(batch, self._decode(batch, requests), strict=True):
                samples[(r, i)] = sample
        return [
            Result(tuple(samples[(r, i)] for i in range(req.n)), prompt_tokens=len(prompt_ids[r]))
            for r, req in enumerate(requests)
        ]

    def _decode(
        self, batch: list[tuple[int, int, list[int]]], requests: Sequence[Request]
    ) -> list[Sample]:
        torch = _torch()
        pad = self.tokenizer.pad_token_id
        width = max(len(ids) for _, _, ids in batch)
        input_ids = torch.tensor(
            [[pad] * (width - len(ids)) + ids for _, _, ids in batch], device=self.device
        )
        attn = torch.tensor(
            [[0] * (width - len(ids)) + [1] * len(ids) for _, _, ids in batch], device=self.device
        )
        reqs = [requests[r] for r, _, _ in batch]
        gens = []
        for (_, i, _), req in zip(batch, reqs, strict=True):
            g = torch.Generator(device="cpu")
            g.manual_seed((req.seed if req.seed is not None else 0) + i)
            gens.append(g)
        max_new = max(req.max_tokens for req in reqs)
        out_ids: list[list[int]] = [[] for _ in batch]
        logps: list[list[float]] = [[] for _ in batch]
        tops: list[list[tuple[float, ...]]] = [[] for _ in batch]
        finish: list[str | None] = [None] * len(batch)
        cut: list[str | None] = [None] * len(batch)
        past = None
        cur = input_ids
        with torch.no_grad():
            for _ in range(max_new):
                pos = (attn.cumsum(-1) - 1).clamp(min=0)
                out = self.lm(
                    input_ids=cur,
                    attention_mask=attn,
                    position_ids=pos[:, -cur.shape[1] :],
                    past_key_values=past,
                    use_cache=True,
                )
                past = out.past_key_values
                logits = out.logits[:, -1, :].float()
                lp = torch.log_softmax(logits, dim=-1)  # the model's own distribution
                if self.banned:
                    logits[:, self.banned] = float("-inf")  # never sampled
                greedy = logits.argmax(-1).tolist()  # one batched argmax; sampled rows draw below
                nxt = [
                    pad
                    if finish[b] is not None
                    else greedy[b]
                    if req.temperature <= 0
                    else self._pick(logits[b], req, gens[b])
                    for b, req in enumerate(reqs)
                ]
                want_lp = any(r.logprobs or r.top_logprobs for r in reqs)
                chosen = (
                    lp.gather(1, torch.tensor(nxt, device=self.device)[:, None])[:, 0].tolist()
                    if want_lp
                    else None
                )
                for b, req in enumerate(reqs):
                    if finish[b] is not None:
                        continue
                    tok = nxt[b]
                    out_ids[b].append(tok)
                    if chosen is not None and (req.logprobs or req.top_logprobs):
                        logps[b].append(chosen[b])
                    if req.top_logprobs:
                        tops[b].append(tuple(lp[b].topk(req.top_logprobs).values.tolist()))
                    if tok in self.eos_ids:
                        finish[b] = "stop"
                    elif req.stop and self._hit_stop(out_ids[b], req.stop):
                        finish[b], cut[b] = "stop", "stop"
                    elif len(out_ids[b]) >= req.max_tokens:
                        finish[b] = "length"
                if all(f is not None for f in finish):
                    break
                cur = torch.tensor(nxt, device=self.device).unsqueeze(1)
                attn = torch.cat([attn, torch.ones_like(cur)], dim=1)
        samples = []
        for b, req in enumerate(reqs):
            ids = out_ids[b]
            if ids and ids[-1] in self.eos_ids:
                ids = ids[:-1]
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            if cut[b]:
                idx = min((text.find(s) for s in req.stop if s in text), default=-1)
                if idx >= 0:
                    text = text[:idx]
            samples.append(
                Sample(
                    text=text,
                    tokens=len(out_ids[b]),
                    finish_reason=finish[b] or "length",
                    logprobs=tuple(logps[b]) if req.logprobs else None,
                    top_logprobs=tuple(tops[b]) if req.top_logprobs else None,
                )
            )
        return samples

    def _pick(self, logits: Any, req: Request, gen: Any) -> int:
        torch = _torch()
        if req.temperature <= 0:
            return int(logits.argmax())
        probs = torch.softmax(logits / req.temperature, dim=-1)
        if req.top_p < 1.0:
            sorted_p, idx = probs.sort(descending=True)
            keep = sorted_p.cumsum(0) - sorted_p < req.top_p
            probs = torch.zeros_like(probs).scatter(0, idx[keep], sorted_p[keep])
        return int(torch.multinomial(probs, 1, generator=gen))

    def _hit_stop(self, ids: list[int], stops: Sequence[str]) -> bool:
        tail = self.tokenizer.decode(ids[-32:], skip_special_tokens=True)
        return any(s in tail for s in stops)

    # -- scoring -----------------------------------------------------------------------------------

    def score(self, prompt: Prompt, continuation: str) -> Scored:
        """Log-probs of ``continuation``'s tokens after ``prompt`` in one forward pass. The
        boundary: ``prompt + continuation`` is tokenized whole and the tokens past the longest
        common prefix with the prompt's own tokens are scored (so a merge across the boundary
        counts toward the continuation)."""
        torch = _torch()
        text = self.render(prompt)
        p_ids = self._encode(text)
        full = self._encode(text + continuation)
        k = base.continuation_start(p_ids, full)
        if len(full) <= k:
            return Scored(())
        with torch.no_grad():
            logits = self.lm(input_ids=torch.tensor([full], device=self.device)).logits[0].float()
        lp = torch.log_softmax(logits[:-1], dim=-1)
        target = torch.tensor(full[1:], device=self.device)
        per_token = lp.gather(1, target.unsqueeze(1)).squeeze(1)[k - 1 :]
        return Scored(tuple(float(x) for x in per_token))

    def close(self) -> None:
        pass


__all__ = ["HFEngine", "Message", "load_model"]
