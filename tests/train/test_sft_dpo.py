import math

import pytest
import torch

from reasonloop.format import END_THOUGHT, render
from reasonloop.train.dpo import DPOSettings, train_dpo
from reasonloop.train.sft import SFTSettings, add_format_tokens, read_conversations, train_sft

pytestmark = pytest.mark.slow


def sft_rows(n=8):
    return [
        {
            "messages": [
                {"role": "user", "content": f"add {i} and 2"},
                {
                    "role": "assistant",
                    "content": render(f"{i}+2={i + 2}. check ok", f"answer {i + 2}"),
                },
            ]
        }
        for i in range(n)
    ]


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def changed(before, model):
    return [k for k, v in model.named_parameters() if not torch.equal(before[k], v.detach())]


def test_format_markers_become_single_tokens(tiny):
    model, tok = tiny
    n = len(tok)
    pieces = tok(END_THOUGHT, add_special_tokens=False)["input_ids"]
    before = model.get_input_embeddings().weight.detach().clone()
    before_out = model.get_output_embeddings().weight.detach().clone()
    assert not model.config.tie_word_embeddings  # the output rows are set on their own
    assert len(pieces) == len(END_THOUGHT)  # the tiny tokenizer spells it letter by letter
    assert add_format_tokens(tok, model) == [
        "<|begin_of_thought|>",
        "<|end_of_thought|>",
        "<|begin_of_solution|>",
        "<|end_of_solution|>",
    ]
    assert len(tok) == n + 4 and model.get_input_embeddings().weight.shape[0] == n + 4
    ids = tok(END_THOUGHT, add_special_tokens=False)["input_ids"]
    assert len(ids) == 1
    assert tok.decode(ids, skip_special_tokens=True) == END_THOUGHT  # kept when decoding
    # the new row starts as the mean of its pieces' rows; the old rows are untouched
    weight = model.get_input_embeddings().weight.detach()
    torch.testing.assert_close(weight[ids[0]], before[pieces].mean(dim=0), rtol=0, atol=1e-7)
    assert torch.equal(weight[:n], before)
    out = model.get_output_embeddings().weight.detach()
    torch.testing.assert_close(out[ids[0]], before_out[pieces].mean(dim=0), rtol=0, atol=1e-7)
    assert out.shape[0] == n + 4 and torch.equal(out[:n], before_out)
    assert add_format_tokens(tok, model) == []


def test_sft_two_steps_change_parameters_with_finite_loss(tiny, tmp_path, write_jsonl):
    model, tok = tiny
    data = write_jsonl(tmp_path / "train.jsonl", sft_rows())
    assert read_conversations(data)[0]["completion"][0]["role"] == "assistant"
    add_format_tokens(tok, model)
    before = snapshot(model)
    s = SFTSettings(
        model="-",
        data=str(data),
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        batch_size=4,
        learning_rate=1e-2,
        max_length=256,
        logging_steps=1,
    )
    metrics = train_sft(s, model=model, tokenizer=tok)
    assert metrics["global_step"] == 2
    assert math.isfinite(metrics["train_loss"]) and metrics["train_loss"] > 0
    assert len(changed(before, model)) > 10
    assert (tmp_path / "out" / "config.json").exists() and (
        tmp_path / "out" / "tokenizer.json"
    ).exists()


def test_gradient_checkpointing_is_off_by_default_and_changes_no_number(
    make_tiny, tmp_path, write_jsonl
):
    """TRL turns activation recomputation on by default; reasonloop's trainers leave it off (it
    only costs compute on CPU) and turn it on when asked, with the same loss and weights."""
    data = write_jsonl(tmp_path / "train.jsonl", sft_rows())
    runs = {}
    for on in (False, True):
        model, tok = make_tiny()
        s = SFTSettings(
            model="-",
            data=str(data),
            output_dir=str(tmp_path / f"out-{on}"),
            max_steps=2,
            batch_size=4,
            learning_rate=1e-2,
            max_length=256,
            gradient_checkpointing=on,
        )
        metrics = train_sft(s, model=model, tokenizer=tok)
        assert model.is_gradient_checkpointing is on
        runs[on] = (metrics["train_loss"], snapshot(model))
    assert runs[True][0] == pytest.approx(runs[False][0], rel=1e-5)
    for name, w in runs[False][1].items():
        torch.testing.assert_close(runs[True][1][name], w, rtol=1e-4, atol=1e-5)


def test_a_lora_student_trains_the_markers_it_was_given(make_tiny, tmp_path, write_jsonl):
    """With LoRA and markers just added, the embedding (and output) matrices train beside the
    adapter, are saved with it, and come back when the adapter is merged; the other weights stay
    frozen. (Frozen marker rows left a SmolLM2 LoRA student unable to emit the markers.)"""
    peft = pytest.importorskip("peft")
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasonloop.train.sft import LoraSettings

    model, tok = make_tiny()
    model.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    s = SFTSettings(
        model=str(tmp_path / "base"),
        data=str(write_jsonl(tmp_path / "train.jsonl", sft_rows())),
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        batch_size=4,
        learning_rate=1e-2,
        max_length=256,
        lora=LoraSettings(r=4),
    )
    train_sft(s)
    saved = load_file(tmp_path / "out" / "adapter_model.safetensors")
    embed = saved["base_model.model.model.embed_tokens.weight"]
    assert embed.shape[0] == len(tok) + 4 and "base_model.model.lm_head.weight" in saved
    fresh, fresh_tok = make_tiny()  # the start: the rows as add_format_tokens leaves them
    ids = fresh_tok.convert_tokens_to_ids(add_format_tokens(fresh_tok, fresh))
    start = fresh.get_input_embeddings().weight.detach()
    assert (embed[ids] - start[ids]).abs().max() > 1e-3  # the markers' rows trained
    # merged onto a fresh base, the adapter brings the trained matrices back
    base = AutoModelForCausalLM.from_pretrained(tmp_path / "base")
    base.resize_token_embeddings(len(AutoTokenizer.from_pretrained(tmp_path / "out")))
    merged = peft.PeftModel.from_pretrained(base, str(tmp_path / "out")).merge_and_unload()
    torch.testing.assert_close(merged.get_input_embeddings().weight, embed, rtol=0, atol=0)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged.state_dict()[q], fresh.state_dict()[q])  # LoRA merged in
    k = "model.layers.0.mlp.down_proj.weight"  # not a LoRA target: untouched
    assert torch.equal(merged.state_dict()[k], fresh.state_dict()[k])


def pref_rows(n=4):
    rows = []
    for i in range(n):
        rows.append(
            {
                "prompt": [{"role": "user", "content": f"add {i} and 2"}],
                "chosen": [
                    {"role": "assistant", "content": render(f"{i}+2={i + 2} ok", f"answer {i + 2}")}
                ],
                "rejected": [
                    {"role": "assistant", "content": render(f"{i}+2={i + 3} hm", f"answer {i + 3}")}
                ],
            }
        )
    return rows


@pytest.mark.parametrize(
    "align,sft_weight", [("thought", 0.5), ("full", 0.0), ("thought", 0.0), ("full", 0.5)]
)
def test_dpo_two_steps_change_parameters_with_finite_loss(
    tmp_path, align, sft_weight, make_tiny, write_jsonl
):
    model, tok = make_tiny()
    ref, _ = make_tiny()
    add_format_tokens(tok, model)
    ref.resize_token_embeddings(len(tok))
    ref.load_state_dict(model.state_dict())
    data = write_jsonl(tmp_path / "pairs.jsonl", pref_rows())
    before = snapshot(model)
    s = DPOSettings(
        model="-",
        data=str(data),
        output_dir=str(tmp_path / "out"),
        align=align,
        sft_weight=sft_weight,
        max_steps=2,
        batch_size=2,
        learning_rate=1e-2,
        max_length=256,
        logging_steps=1,
    )
    metrics = train_dpo(s, model=model, tokenizer=tok, ref_model=ref)
    assert metrics["global_step"] == 2
    assert math.isfinite(metrics["train_loss"])
    assert len(changed(before, model)) > 10


def first_step_loss(tmp_path, make_tiny, write_jsonl, rows, align):
    model, tok = make_tiny()
    ref, _ = make_tiny()
    add_format_tokens(tok, model)
    ref.resize_token_embeddings(len(tok))
    # a reference that differs from the policy, so the log-ratios are not all zero
    ref.load_state_dict({k: v + 0.01 * torch.randn_like(v) for k, v in model.state_dict().items()})
    data = write_jsonl(tmp_path / f"pairs-{align}-{len(str(rows))}.jsonl", rows)
    s = DPOSettings(
        model="-",
        data=str(data),
        output_dir=str(tmp_path / "out"),
        align=align,
        max_steps=1,
        batch_size=4,
        learning_rate=1e-9,
        max_length=256,
        logging_steps=1,
    )
    return train_dpo(s, model=model, tokenizer=tok, ref_model=ref)["train_loss"]


def test_thought_alignment_ignores_solution_tokens(tmp_path, make_tiny, write_jsonl):
    rows = pref_rows()
    other = [
        dict(
            r,
            rejected=[
                {
                    "role": "assistant",
                    "content": r["rejected"][0]["content"].replace(
                        "answer", "the final answer is surely"
                    ),
                }
            ],
        )
        for r in rows
    ]
    torch.manual_seed(0)
    a = first_step_loss(tmp_path, make_tiny, write_jsonl, rows, "thought")
    torch.manual_seed(0)
    b = first_step_loss(tmp_path, make_tiny, write_jsonl, other, "thought")
    assert a == pytest.approx(
        b, abs=1e-6
    )  # only the solutions differ: the thought-only loss is the same
    torch.manual_seed(0)
    c = first_step_loss(tmp_path, make_tiny, write_jsonl, rows, "full")
    torch.manual_seed(0)
    d = first_step_loss(tmp_path, make_tiny, write_jsonl, other, "full")
    assert abs(c - d) > 1e-4  # the full-response loss sees them
