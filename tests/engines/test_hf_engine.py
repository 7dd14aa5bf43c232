"""The transformers engine on a tiny Llama built from a config with a character tokenizer."""

import pytest

pytestmark = pytest.mark.slow
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from reasonloop.demo.student import make_student, make_task_tokenizer  # noqa: E402
from reasonloop.engines.base import Message, Request  # noqa: E402
from reasonloop.engines.hf import HFEngine  # noqa: E402
from reasonloop.format import render  # noqa: E402

MSGS = (Message("user", "Reach 55 using the numbers 2 6 7 21"),)


@pytest.fixture(scope="module")
def engine():
    tok = make_task_tokenizer(
        ["Reach 55 using the numbers 2 6 7 21", render("Try 2*21=42", "Answer: \\boxed{2*21}")],
        max_number=0,
        words=False,
    )
    return HFEngine(
        "tiny",
        model=make_student(tok, hidden_size=32, layers=2, heads=4),
        tokenizer=tok,
        batch_size=4,
    )


def texts(result):
    return [s.text for s in result.samples]


def test_chat_template_is_applied(engine):
    assert (
        engine.render(MSGS)
        == "<|im_start|>user\nReach 55 using the numbers 2 6 7 21<|im_end|>\n<|im_start|>assistant\n"
    )
    assert engine.render("raw prompt") == "raw prompt"


def test_greedy_is_deterministic_and_independent_of_the_batch(engine):
    alone = engine.generate([Request(messages=MSGS, max_tokens=24)])[0]
    other = Request(
        messages=(Message("user", "a much longer prompt that pads the batch"),), max_tokens=24
    )
    batched = engine.generate([other, Request(messages=MSGS, max_tokens=24)])[1]
    assert texts(alone) == texts(batched)
    assert alone.samples[0].tokens == 24 and alone.samples[0].finish_reason == "length"


def test_same_seed_same_texts_different_seed_different(engine):
    req = Request(messages=MSGS, n=3, temperature=1.0, max_tokens=20, seed=7)
    a = engine.generate([req])[0]
    b = engine.generate([Request(messages=MSGS, n=1, temperature=1.0, max_tokens=20, seed=9), req])[
        1
    ]
    assert texts(a) == texts(b) and len(set(texts(a))) == 3
    c = engine.generate([Request(messages=MSGS, n=3, temperature=1.0, max_tokens=20, seed=8)])[0]
    assert texts(c)[:2] == texts(a)[1:]  # sample i uses seed + i


def test_stop_strings_cut_the_text(engine):
    full = engine.generate([Request(messages=MSGS, max_tokens=30)])[0].samples[0].text
    stop = full[5:7]
    cut = engine.generate([Request(messages=MSGS, max_tokens=30, stop=(stop,))])[0].samples[0]
    assert cut.finish_reason == "stop" and cut.text == full[: full.index(stop)]


def test_score_matches_a_hand_computation_and_the_sampled_logprobs(engine):
    # an untrained model may sample chat special tokens, which the text leaves out; take the first
    # seed whose sample round-trips through its text
    for seed in range(20):
        sample = engine.generate(
            [Request(messages=MSGS, temperature=1.0, max_tokens=16, seed=seed, logprobs=True)]
        )[0].samples[0]
        scored = engine.score(MSGS, sample.text)
        # a sample that ended on EOS counts the EOS token; its text (and so the score) does not
        if len(scored.logprobs) == sample.tokens - (sample.finish_reason == "stop"):
            break
    n = len(scored.logprobs)
    assert n > 0
    assert sum(scored.logprobs) == pytest.approx(sum(sample.logprobs[:n]), abs=1e-3)
    ids = engine.tokenizer(engine.render(MSGS) + sample.text, add_special_tokens=False)["input_ids"]
    n = len(engine.tokenizer(engine.render(MSGS), add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        lp = torch.log_softmax(engine.lm(input_ids=torch.tensor([ids])).logits[0], dim=-1)
    hand = [float(lp[i - 1, ids[i]]) for i in range(n, len(ids))]
    assert scored.logprobs == pytest.approx(tuple(hand), abs=1e-5)
    assert scored.perplexity > 1.0


def test_top_logprobs(engine):
    s = engine.generate([Request(messages=MSGS, max_tokens=5, logprobs=True, top_logprobs=3)])[
        0
    ].samples[0]
    assert len(s.top_logprobs) == 5 and all(len(t) == 3 for t in s.top_logprobs)
    # greedy picks the most likely token (padding and unknown are never sampled)
    assert all(abs(lp - top[0]) < 1e-6 for lp, top in zip(s.logprobs, s.top_logprobs, strict=True))


def test_a_saved_model_loads_by_spec(engine, tmp_path):
    from reasonloop.engines import load_engine

    engine.lm.save_pretrained(tmp_path / "m")
    engine.tokenizer.save_pretrained(tmp_path / "m")
    loaded = load_engine(f"hf:{tmp_path / 'm'}")
    req = Request(messages=MSGS, max_tokens=12)
    assert texts(loaded.generate([req])[0]) == texts(engine.generate([req])[0])
    assert loaded.spec == f"hf:{tmp_path / 'm'}" and loaded.model == "m"
