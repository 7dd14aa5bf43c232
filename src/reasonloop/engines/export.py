"""transformers → GGUF: write a trained Llama-architecture model as a ``.gguf`` llama.cpp loads —
the inverse of :mod:`reasonloop.engines.convert`.

Why: llama.cpp generates several times faster than transformers on a CPU, so the generation-heavy
phases (explore, evaluate) run a trained model through ``llamacpp:FILE.gguf``. The model is a
saved directory (a full fine-tune, ``train sft``'s output) or a base with a PEFT LoRA adapter,
merged into the base's weights before writing.

What goes in the file:

- the weights, renamed to llama.cpp's tensor names; Q and K projections permuted from
  transformers' rotary layout (each head's first half-dims, then its second half) to llama.cpp's
  (the two halves interleaved in pairs) — the inverse of what a GGUF loader does on the way in;
- ``f16``: every matrix as F16; ``q8_0``: every matrix whose rows split into 32-value blocks as
  Q8_0 (gguf-py's quantizer), the others as F16; norms stay F32 in both;
- the tokenizer and chat template. When the model descends from a GGUF (``reasonloop convert``
  records its source in the folder's marker; ``train sft`` records the model it started from;
  an adapter records its base), the source GGUF's tokenizer is copied as is — its pre-tokenizer
  name, token types and special ids are what llama.cpp was given for it — and tokens the training
  added (the format's markers) are appended. Otherwise it is built from ``tokenizer.json``.

Not done: architectures other than Llama (``LlamaForCausalLM``; no biases, no rope scaling),
tokenizers other than byte-level BPE when there is no source GGUF, and k-quants (llama.cpp's
``llama-quantize``, or :func:`reasonloop.engines.convert.requantize_gguf`, re-encodes a written
file). The whole model is held in memory as float32 while writing: fine for the small models this
is for, not for a 70B.

The file is written under a temporary name beside ``out`` and renamed into place when complete,
so a failure leaves any earlier file at ``out`` as it was and no partial file behind.

Example::

    export_gguf("runs/sft", "runs/sft.q8_0.gguf")           # then --engine llamacpp:runs/sft.q8_0.gguf
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonloop.engines.convert import MARKER
from reasonloop.errors import ConfigError, MissingDependency

log = logging.getLogger(__name__)

EXPORT_TYPES = ("q8_0", "f16")

# transformers' per-layer module names → llama.cpp's
_LAYER_NAMES = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_TOP_NAMES = {
    "model.embed_tokens": "token_embd",
    "model.norm": "output_norm",
    "lm_head": "output",
}

# tokenizer.json pre-tokenizers (as JSON) whose llama.cpp counterpart is known, for models that
# do not descend from a GGUF; llama.cpp picks its splitting regex by this name
_PRE_TOKENIZERS = {
    json.dumps({"type": "ByteLevel", "use_regex": True}, sort_keys=True): "gpt-2",
    json.dumps(
        {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Digits", "individual_digits": True},
                {"type": "ByteLevel", "use_regex": True},
            ],
        },
        sort_keys=True,
    ): "smollm",
}

# how many links (adapter → base, fine-tune → its start) to follow looking for a source GGUF
_MAX_LINEAGE = 8


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What :func:`export_gguf` wrote."""

    out: Path
    kind: str
    tensors: int
    bytes: int
    vocab: int
    added_tokens: tuple[str, ...]  # tokens beyond the source GGUF's vocabulary (appended)
    tokenizer_from: str  # the source GGUF, or the tokenizer.json it was built from
    merged_adapter: str | None
    seconds: float


def export_gguf(
    model_dir: str | Path,
    out: str | Path,
    *,
    kind: str = "q8_0",
    adapter: str | Path | None = None,
) -> ExportSummary:
    """Write the model in ``model_dir`` (merged with the LoRA ``adapter`` when given) to ``out``.

    ``model_dir`` may itself be an adapter folder (``adapter_config.json``): its recorded base is
    loaded and the adapter merged. Raises :class:`ConfigError` (one line naming the path and the
    fix) for a missing folder, a model that is not a Llama, an unsupported tokenizer or type.
    Does not check the output with llama.cpp (the tests do).
    """
    gguf = _gguf()
    t0 = time.perf_counter()
    if kind not in EXPORT_TYPES:
        raise ConfigError(
            f"--type {kind!r} is not one export writes; choose {' or '.join(EXPORT_TYPES)}"
        )
    model_dir = Path(model_dir)
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; name a file such as {out / 'model.gguf'}")
    if adapter is None and (model_dir / "adapter_config.json").is_file():
        adapter, model_dir = model_dir, _adapter_base(model_dir)
    adapter = Path(adapter) if adapter is not None else None
    config = _llama_config(model_dir)
    if adapter is not None:
        _require_dir(adapter, "--adapter", "a folder a PEFT LoRA run saved (adapter_config.json)")
        if not (adapter / "adapter_config.json").is_file():
            raise ConfigError(
                f"{adapter}: no adapter_config.json; --adapter takes a folder a PEFT LoRA run saved"
            )
    tok_dir = adapter if adapter is not None and _has_tokenizer(adapter) else model_dir
    if not _has_tokenizer(tok_dir):
        raise ConfigError(
            f"{tok_dir}: no tokenizer (tokenizer.json); save it beside the model "
            "(tokenizer.save_pretrained(DIR)) and export again"
        )
    tokenizer = _load_tokenizer(tok_dir)
    source = find_source_gguf(adapter if adapter is not None else model_dir)
    vocab = _vocab_from_source(source, tokenizer) if source is not None else None
    if vocab is None:
        vocab = _vocab_from_tokenizer_json(tok_dir, tokenizer)
    weights = _merged_state(model_dir, adapter, len(tokenizer))
    n_vocab = weights["model.embed_tokens.weight"].shape[0]
    if len(vocab.tokens) > n_vocab:
        raise ConfigError(
            f"{tok_dir}: the tokenizer has {len(vocab.tokens)} tokens but the model's embeddings "
            f"only {n_vocab} rows; resize them (model.resize_token_embeddings) before saving"
        )
    tokens, types = list(vocab.tokens), list(vocab.types)
    while len(tokens) < n_vocab:  # rows the model has and the tokenizer never emits
        tokens.append(f"[PAD{len(tokens)}]".encode())
        types.append(int(gguf.TokenType.UNUSED))

    out.parent.mkdir(parents=True, exist_ok=True)
    # a fresh name beside ``out`` (same filesystem: the rename is atomic), created with the
    # default permissions a plain open() gives (mkstemp's 0600 would make the model private)
    tmp = str(out.parent / f".{out.name}.{secrets.token_hex(6)}.partial")
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        writer = gguf.GGUFWriter(tmp, "llama")
        _write_hparams(writer, config, n_vocab, kind, model_dir)
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        for key, (value, vtype, sub) in vocab.keys.items():
            writer.add_key_value(key, value, vtype, sub)
        count = _add_tensors(writer, weights, config, kind)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    summary = ExportSummary(
        out=out,
        kind=kind,
        tensors=count,
        bytes=out.stat().st_size,
        vocab=n_vocab,
        added_tokens=vocab.added,
        tokenizer_from=vocab.origin,
        merged_adapter=str(adapter) if adapter is not None else None,
        seconds=time.perf_counter() - t0,
    )
    log.info("wrote %s (%s, %d tensors, %d bytes)", out, kind, count, summary.bytes)
    return summary


@dataclass(frozen=True, slots=True)
class _Vocab:
    tokens: list[bytes]
    types: list[int]
    keys: dict[str, tuple[Any, Any, Any]]  # other tokenizer.* keys: value, type, array item type
    added: tuple[str, ...]  # tokens appended to a source GGUF's vocabulary
    origin: str  # where it came from: the source GGUF or a tokenizer.json


def _gguf() -> Any:
    try:
        import gguf
    except ImportError as exc:
        raise MissingDependency("gguf", "train") from exc
    return gguf


def _require_dir(path: Path, what: str, fix: str) -> None:
    if not path.is_dir():
        raise ConfigError(f"{what} {path}: no such folder; pass {fix}")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read it as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


def _adapter_base(adapter: Path) -> Path:
    base = _read_json(adapter / "adapter_config.json").get("base_model_name_or_path")
    if not isinstance(base, str) or not Path(base).is_dir():
        raise ConfigError(
            f"{adapter}/adapter_config.json: field 'base_model_name_or_path' is {base!r}, not a "
            "local folder; pass the base model folder as MODEL_DIR and this one as --adapter"
        )
    return Path(base)


def _llama_config(model_dir: Path) -> dict[str, Any]:
    """config.json of a model this module can write, or a one-line ConfigError saying why not."""
    _require_dir(model_dir, "MODEL_DIR", "a folder saved by save_pretrained (train sft's output)")
    path = model_dir / "config.json"
    if not path.is_file():
        raise ConfigError(
            f"{model_dir}: no config.json; pass a transformers model folder (save_pretrained)"
        )
    config = _read_json(path)
    arch = config.get("model_type")
    if arch != "llama":
        raise ConfigError(
            f"{path}: field 'model_type' is {arch!r}, not 'llama'; export-gguf writes "
            "Llama-architecture models only (LlamaForCausalLM)"
        )
    rope = config.get("rope_scaling") or config.get("rope_parameters") or {}
    unsupported = {
        "attention_bias": bool(config.get("attention_bias")),
        "mlp_bias": bool(config.get("mlp_bias")),
        "hidden_act": config.get("hidden_act", "silu") != "silu",
        "rope type": rope.get("rope_type", rope.get("type", "default")) != "default",
    }
    bad = [k for k, v in unsupported.items() if v]
    if bad:
        raise ConfigError(
            f"{path}: {', '.join(bad)} not supported by export-gguf (plain Llama only: no biases, "
            "SiLU, default RoPE)"
        )
    return config


def _has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer.json").is_file()


def _load_tokenizer(folder: Path) -> Any:
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise MissingDependency("transformers", "train") from exc
    return AutoTokenizer.from_pretrained(str(folder))


def find_source_gguf(folder: str | Path) -> Path | None:
    """The GGUF a model folder descends from, or None: followed through the links reasonloop
    records — a conversion's marker (``reasonloop convert``), a training run's starting model
    (``reasonloop_train.json``), an adapter's base (``adapter_config.json``). A recorded GGUF
    that no longer exists counts as none. Does not check that the tokenizers agree (export does)."""

    here = Path(folder)
    for _ in range(_MAX_LINEAGE):
        try:
            if (here / MARKER).is_file():
                gguf = Path(json.loads((here / MARKER).read_text())["source"]["gguf"])
                return gguf if gguf.is_file() else None
            if (here / "reasonloop_train.json").is_file():
                nxt = json.loads((here / "reasonloop_train.json").read_text())["settings"]["model"]
            elif (here / "adapter_config.json").is_file():
                nxt = json.loads((here / "adapter_config.json").read_text())[
                    "base_model_name_or_path"
                ]
            else:
                return None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(nxt, str):
            return None
        if nxt.endswith(".gguf"):
            return Path(nxt) if Path(nxt).is_file() else None
        here = Path(nxt)
    return None


def _field_value(field: Any, vtype: Any) -> Any:
    """One GGUFReader field's value in the form GGUFWriter.add_key_value takes (strings as bytes,
    so nothing is re-encoded on the way through)."""
    gguf = _gguf()
    if vtype == gguf.GGUFValueType.ARRAY:
        sub = field.types[1]
        if sub == gguf.GGUFValueType.STRING:
            return [bytes(field.parts[i]) for i in field.data]
        return [field.parts[i][0].item() for i in field.data]
    if vtype == gguf.GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]])
    return field.parts[field.data[0]][0].item()


def _vocab_from_source(source: Path, tokenizer: Any) -> _Vocab | None:
    """The source GGUF's tokenizer, extended by the tokens ``tokenizer`` has beyond it; None
    (with a warning) when the two disagree on a shared token."""
    gguf = _gguf()
    reader = gguf.GGUFReader(str(source))
    fields = reader.fields
    tok_field = fields.get("tokenizer.ggml.tokens")
    if tok_field is None or "tokenizer.ggml.token_type" not in fields:
        log.warning("%s has no tokenizer; building one from tokenizer.json", source)
        return None
    tokens = _field_value(tok_field, gguf.GGUFValueType.ARRAY)
    types = _field_value(fields["tokenizer.ggml.token_type"], gguf.GGUFValueType.ARRAY)
    n_src = len(tokens)
    ours = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    if len(ours) < n_src or any(
        (o or "").encode("utf-8") != t for o, t in zip(ours, tokens, strict=False)
    ):
        log.warning(
            "the tokenizer does not extend %s's (%d tokens); building it from tokenizer.json",
            source,
            n_src,
        )
        return None
    special = {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    added = tuple(ours[n_src:])
    for i, text in enumerate(added, n_src):
        tokens.append(text.encode("utf-8"))
        types.append(int(gguf.TokenType.CONTROL if i in special else gguf.TokenType.USER_DEFINED))
    keys = {}
    for name, field in fields.items():
        if name.startswith("tokenizer.") and name not in (
            tok_field.name,
            "tokenizer.ggml.token_type",
        ):
            vtype = field.types[0]
            sub = field.types[1] if len(field.types) > 1 else None
            keys[name] = (_field_value(field, vtype), vtype, sub)
    template = getattr(tokenizer, "chat_template", None)
    source_template = keys.get("tokenizer.chat_template", (b"",))[0].decode("utf-8")
    if isinstance(template, str) and template and template != source_template:
        # what training rendered its data with is what the model now expects
        log.info("the model folder's chat template differs from %s's; writing the folder's", source)
        keys["tokenizer.chat_template"] = (template, gguf.GGUFValueType.STRING, None)
    return _Vocab(tokens, types, keys, added, str(source))


def _canonical_pre(pre: Any) -> str:
    """A tokenizer.json pre-tokenizer reduced to what decides how text is split."""
    if not isinstance(pre, dict):
        return json.dumps(pre)
    kind = pre.get("type")
    if kind == "Sequence":
        return json.dumps(
            {
                "type": kind,
                "pretokenizers": [
                    json.loads(_canonical_pre(p)) for p in pre.get("pretokenizers", [])
                ],
            },
            sort_keys=True,
        )
    keep = {"ByteLevel": ("use_regex",), "Digits": ("individual_digits",)}.get(kind, tuple(pre))
    return json.dumps({k: pre.get(k) for k in ("type", *keep)}, sort_keys=True)


def _vocab_from_tokenizer_json(folder: Path, tokenizer: Any) -> _Vocab:
    """A GGUF tokenizer (llama.cpp's ``gpt2`` kind: byte-level BPE) built from tokenizer.json."""
    gguf = _gguf()
    path = folder / "tokenizer.json"
    data = _read_json(path)
    model = data.get("model") or {}
    if model.get("type") != "BPE" or not _canonical_pre(data.get("pre_tokenizer")).count(
        '"ByteLevel"'
    ):
        raise ConfigError(
            f"{path}: a {model.get('type')} tokenizer without byte-level pre-tokenizing; "
            "export-gguf builds byte-level BPE tokenizers only (or copies a source GGUF's: "
            "export a model converted with `reasonloop convert`)"
        )
    pre = _PRE_TOKENIZERS.get(_canonical_pre(data.get("pre_tokenizer")))
    if pre is None:
        raise ConfigError(
            f"{path}: field 'pre_tokenizer' ({_canonical_pre(data.get('pre_tokenizer'))}) has no "
            f"known llama.cpp counterpart (known: {', '.join(sorted(set(_PRE_TOKENIZERS.values())))}); "
            "export a model converted from a GGUF (`reasonloop convert`), whose tokenizer is copied"
        )
    ids = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    added = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for i, text in enumerate(ids):
        if text is None:
            tokens.append(f"[PAD{i}]".encode())
            types.append(int(gguf.TokenType.UNUSED))
            continue
        tokens.append(text.encode("utf-8"))
        if i in added:
            kind = gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED
        else:
            kind = gguf.TokenType.NORMAL
        types.append(int(kind))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    v = gguf.GGUFValueType
    keys: dict[str, tuple[Any, Any, Any]] = {
        "tokenizer.ggml.model": ("gpt2", v.STRING, None),
        "tokenizer.ggml.pre": (pre, v.STRING, None),
    }
    if merges:
        keys["tokenizer.ggml.merges"] = (merges, v.ARRAY, v.STRING)
    for name, tid in (
        ("bos", tokenizer.bos_token_id),
        ("eos", tokenizer.eos_token_id),
        ("unknown", tokenizer.unk_token_id),
        ("padding", tokenizer.pad_token_id),
    ):
        if tid is not None:
            keys[f"tokenizer.ggml.{name}_token_id"] = (int(tid), v.UINT32, None)
    probe = tokenizer("a")["input_ids"]
    keys["tokenizer.ggml.add_bos_token"] = (
        bool(probe) and tokenizer.bos_token_id is not None and probe[0] == tokenizer.bos_token_id,
        v.BOOL,
        None,
    )
    keys["tokenizer.ggml.add_eos_token"] = (
        len(probe) > 1
        and tokenizer.eos_token_id is not None
        and probe[-1] == tokenizer.eos_token_id,
        v.BOOL,
        None,
    )
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, str) and template:
        keys["tokenizer.chat_template"] = (template, v.STRING, None)
    return _Vocab(tokens, types, keys, (), str(path))


def _merged_state(model_dir: Path, adapter: Path | None, n_tokens: int) -> dict[str, Any]:
    """The model's weights as float32 numpy arrays by transformers name, adapter merged in."""
    try:
        import torch
        from transformers import AutoModelForCausalLM
    except ImportError as exc:
        raise MissingDependency("transformers", "train") from exc
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    if adapter is not None:
        try:
            from peft import PeftModel
        except ImportError as exc:
            raise MissingDependency("peft", "train") from exc
        if model.get_input_embeddings().weight.shape[0] < n_tokens:
            # training added tokens (the format's markers): the adapter holds the grown embeddings
            model.resize_token_embeddings(n_tokens)
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    state = {
        name: t.detach().to(torch.float32).cpu().numpy() for name, t in model.state_dict().items()
    }
    emb, head = state.get("model.embed_tokens.weight"), state.get("lm_head.weight")
    if head is not None and emb is not None and head.shape == emb.shape and (head == emb).all():
        del state["lm_head.weight"]  # tied: llama.cpp reuses token_embd when output is absent
    return state


def _write_hparams(
    writer: Any, config: dict[str, Any], n_vocab: int, kind: str, model_dir: Path
) -> None:
    gguf = _gguf()
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or hidden // heads)
    rope = config.get("rope_parameters") or {}
    theta = config.get("rope_theta") or rope.get("rope_theta") or 10000.0
    writer.add_name(model_dir.resolve().name)
    writer.add_context_length(int(config.get("max_position_embeddings", 2048)))
    writer.add_embedding_length(hidden)
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(heads)
    writer.add_head_count_kv(int(config.get("num_key_value_heads") or heads))
    writer.add_rope_freq_base(float(theta))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_vocab_size(n_vocab)
    writer.add_rope_dimension_count(head_dim)
    if head_dim != hidden // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    ftype = gguf.LlamaFileType.MOSTLY_Q8_0 if kind == "q8_0" else gguf.LlamaFileType.MOSTLY_F16
    writer.add_file_type(int(ftype))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _rotary_to_interleaved(w: Any, n_head: int) -> Any:
    """Rows of a Q/K projection from transformers' rotary layout (per head: the first halves of
    all pairs, then the second halves) to llama.cpp's (per head: pairs side by side)."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _gguf_name(name: str) -> tuple[str, str | None]:
    """(llama.cpp tensor name, transformers module) of a transformers parameter name."""
    stem, _, leaf = name.rpartition(".")
    if leaf == "weight" and stem in _TOP_NAMES:
        return f"{_TOP_NAMES[stem]}.weight", None
    parts = stem.split(".")
    if leaf == "weight" and parts[:2] == ["model", "layers"] and len(parts) > 3:
        module = ".".join(parts[3:])
        if module in _LAYER_NAMES:
            return f"blk.{int(parts[2])}.{_LAYER_NAMES[module]}.weight", module
    raise ConfigError(
        f"parameter {name!r} has no llama.cpp Llama counterpart; export-gguf writes plain "
        "LlamaForCausalLM weights only"
    )


def _add_tensors(writer: Any, weights: dict[str, Any], config: dict[str, Any], kind: str) -> int:
    import numpy as np

    gguf = _gguf()
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    q8 = gguf.GGMLQuantizationType.Q8_0
    block = gguf.GGML_QUANT_SIZES[q8][0]
    for name, w in weights.items():
        gname, module = _gguf_name(name)
        if module == "self_attn.q_proj":
            w = _rotary_to_interleaved(w, heads)
        elif module == "self_attn.k_proj":
            w = _rotary_to_interleaved(w, kv_heads)
        if w.ndim == 1:
            writer.add_tensor(gname, np.ascontiguousarray(w, dtype=np.float32))
        elif kind == "q8_0" and w.shape[-1] % block == 0:
            writer.add_tensor(gname, gguf.quants.quantize(w, q8), raw_dtype=q8)
        else:  # f16, or rows that do not split into Q8_0 blocks
            writer.add_tensor(gname, np.ascontiguousarray(w, dtype=np.float16))
    return len(weights)


__all__ = ["EXPORT_TYPES", "ExportSummary", "export_gguf", "find_source_gguf"]
