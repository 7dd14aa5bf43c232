"""The llama.cpp engine on the packaged SmolLM2-135M-Instruct GGUF (real model, no mocks)."""

import pytest

pytest.importorskip("llama_cpp")

from reasonloop.engines import load_engine  # noqa: E402
from reasonloop.engines.base import Request, user_messages  # noqa: E402

pytestmark = pytest.mark.slow
MSGS = user_messages("What is 2+3? Answer briefly.")


@pytest.fixture(scope="module")
def engine():
    e = load_engine("default")
    yield e
    e.close()


def texts(result):
    return [s.text for s in result.samples]


def test_chat_template_and_greedy_determinism(engine):
    assert engine.render(MSGS).endswith(
        "<|im_start|>user\nWhat is 2+3? Answer briefly.<|im_end|>\n<|im_start|>assistant\n"
    )
    a = engine.generate([Request(messages=MSGS, max_tokens=24)])[0]
    b = engine.generate([Request(messages=MSGS, max_tokens=24)])[0]
    assert texts(a) == texts(b) and "5" in a.samples[0].text


def test_seeds_reproduce_samples(engine):
    req = Request(messages=MSGS, n=3, temperature=1.0, max_tokens=24, seed=11)
    a, b = engine.generate([req, req])
    assert texts(a) == texts(b) and len(set(texts(a))) > 1
    c = engine.generate([Request(messages=MSGS, n=2, temperature=1.0, max_tokens=24, seed=12)])[0]
    assert texts(c) == texts(a)[1:]  # sample i uses seed + i


def test_max_tokens_and_stop(engine):
    s = engine.generate([Request(prompt="Count: 1, 2, 3,", max_tokens=8)])[0].samples[0]
    assert s.finish_reason == "length" and s.tokens == 8
    cut = engine.generate([Request(prompt="Count: 1, 2, 3,", max_tokens=16, stop=("6",))])[
        0
    ].samples[0]
    assert "6" not in cut.text and cut.finish_reason == "stop"


def test_score_agrees_with_sampled_logprobs(engine):
    s = engine.generate([Request(messages=MSGS, max_tokens=16, logprobs=True, top_logprobs=3)])[
        0
    ].samples[0]
    sc = engine.score(MSGS, s.text)
    assert len(sc.logprobs) == len(s.logprobs) > 0
    assert sum(sc.logprobs) == pytest.approx(sum(s.logprobs), abs=1e-6)
    assert all(lp <= 0 for lp in sc.logprobs) and sc.perplexity >= 1.0
    # greedy: every chosen token is the most likely one
    assert all(abs(lp - top[0]) < 1e-4 for lp, top in zip(s.logprobs, s.top_logprobs, strict=True))
