"""The demo's student: a character-level tokenizer made for the task and a small Llama from a config.

The tokenizer's vocabulary is every character seen in the training texts, plus the chat markers
(``<|im_start|>``, ``<|im_end|>``) and the format's markers as single tokens; it carries a
ChatML-style chat template, so the student trains and samples through the same SFT/DPO code and the
``hf:`` engine as any real model. Everything is built locally: nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from reasonloop.errors import MissingDependency
from reasonloop.format import MARKERS

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ("<pad>", "<unk>", "<|im_start|>", "<|im_end|>")


def make_char_tokenizer(texts: Iterable[str]) -> Any:
    """A character tokenizer over ``texts`` with the chat and format markers as atomic tokens."""
    try:
        from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
        from transformers import PreTrainedTokenizerFast
    except ImportError as exc:
        raise MissingDependency("transformers", "train") from exc
    chars: set[str] = set("\n ")
    for t in texts:
        for m in (*MARKERS, *SPECIALS):
            t = t.replace(m, "")
        chars.update(t)
    vocab = {tok: i for i, tok in enumerate([*SPECIALS, *sorted(chars)])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()  # characters join back without spaces
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", eos_token="<|im_end|>"
    )
    tok.add_tokens(
        [AddedToken(s, special=True, normalized=False) for s in ("<|im_start|>", "<|im_end|>")]
    )
    tok.add_tokens([AddedToken(m, special=False, normalized=False) for m in MARKERS])
    tok.chat_template = CHAT_TEMPLATE
    return tok


def make_student(
    tokenizer: Any,
    *,
    hidden_size: int = 128,
    layers: int = 4,
    heads: int = 4,
    max_position_embeddings: int = 1024,
    seed: int = 0,
) -> Any:
    """A Llama-architecture causal LM from a config, initialised with ``seed``."""
    try:
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM
    except ImportError as exc:
        raise MissingDependency("transformers", "train") from exc
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 3,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(cfg)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model
