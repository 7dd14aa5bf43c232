"""The llama.cpp engine on the packaged SmolLM2-135M-Instruct GGUF (real model, no mocks)."""

import codecs
import logging
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("llama_cpp")

from reasonloop.engines import load_engine  # noqa: E402
from reasonloop.engines.base import Request, user_messages  # noqa: E402
from reasonloop.engines.llamacpp import (  # noqa: E402
    _Seq,
    pick_token,
    pick_tokens,
    token_logprobs,
)

pytestmark = pytest.mark.slow
MSGS = user_messages("What is 2+3? Answer briefly.")


@pytest.fixture(scope="module")
def engine():
    e = load_engine("default")
    yield e
    e.close()


def texts(result):
    return [s.text for s in result.samples]


def test_start_logs_the_cpu_code_llama_cpp_runs(engine, caplog):
    from reasonloop.engines.llamacpp import LlamaCppEngine, cpu_backend

    with caplog.at_level(logging.INFO, logger="reasonloop.engines.llamacpp"):
        LlamaCppEngine(engine.path, n_ctx=256, n_parallel=1).close()
    lines = [r.getMessage() for r in caplog.records if "llama.cpp CPU backend" in r.getMessage()]
    info = cpu_backend()
    assert len(lines) == 1 and info.system_info.strip() in lines[0] and info.library in lines[0]
    assert "AVX2" in info.features or "NEON" in info.features  # what the README requires
    if info.variant:
        assert f"variant {info.variant} (score {info.score}" in lines[0]


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


# -- parallel decoding ------------------------------------------------------------------------------

SEEDED = Request(messages=MSGS, n=8, temperature=1.0, max_tokens=16, seed=21)


def test_eight_seeded_samples_reproduce_on_a_rerun(engine):
    a = engine.generate([SEEDED])[0]
    b = engine.generate([SEEDED])[0]
    assert a == b and len(set(texts(a))) > 4


def test_a_sample_does_not_depend_on_what_runs_beside_it(engine):
    eight = engine.generate([SEEDED])[0]
    for i in (0, 3, 7):  # sample i alone, with seed s + i, is sample i of the n=8 run
        alone = engine.generate([replace(SEEDED, n=1, seed=21 + i)])[0].samples[0]
        assert alone == eight.samples[i]
    # packed with other requests (other prompts, other lengths) into the same groups
    other = Request(prompt="Once upon a time, in a land far away, there", n=3, temperature=0.7)
    packed = engine.generate([replace(other, max_tokens=30), SEEDED, replace(other, max_tokens=5)])
    assert packed[1] == eight


def test_more_samples_than_sequences_run_in_groups(engine):
    small = load_engine("default", n_parallel=3, kv_cells=600)  # room for 2 streams of 256 cells
    try:
        req = replace(SEEDED, max_tokens=8)
        assert small.generate([req])[0] == engine.generate([req])[0]
        assert small._streams == 2
    finally:
        small.close()


def test_decoded_logprobs_are_those_score_computes(engine):
    req = Request(messages=MSGS, n=4, temperature=1.0, max_tokens=12, seed=3, logprobs=True)
    result = engine.generate([replace(req, top_logprobs=3)])[0]
    prompt = engine.render(MSGS)
    compared = 0
    for s in result.samples:
        assert s.tokens == len(s.logprobs) == len(s.top_logprobs) > 0
        chosen, tops = engine._logprobs(prompt, s.text, 3)  # what score() computes, with the tops
        if len(chosen) != s.tokens:
            continue  # the text tokenizes otherwise than it was sampled: not comparable
        compared += 1
        # flash attention makes a batch and one token at a time agree (see the module docstring)
        assert s.logprobs == pytest.approx(chosen, abs=1e-5)
        assert engine.score(MSGS, s.text).logprobs == pytest.approx(s.logprobs, abs=1e-5)
        for got, want, lp in zip(s.top_logprobs, tops, s.logprobs, strict=True):
            assert got == pytest.approx(want, abs=1e-5) and got[0] >= lp - 1e-9
    assert compared >= 2
    # without logprobs= nothing is computed; the texts are the same
    plain = engine.generate([replace(req, logprobs=False)])[0]
    assert texts(plain) == texts(result) and plain.samples[0].logprobs is None


def test_stop_strings_cut_at_the_earliest_stop(engine):
    prompt = "Count: 1, 2, 3,"
    full = engine.generate([Request(prompt=prompt, max_tokens=16, logprobs=True)])[0].samples[0]
    stops = (full.text[6:8], full.text[2:4])  # the second one occurs first
    at = min(full.text.find(x) for x in stops)
    cut = engine.generate([Request(prompt=prompt, max_tokens=16, stop=stops, logprobs=True)])[0]
    s = cut.samples[0]
    assert s.finish_reason == "stop" and s.text == full.text[:at] and at > 0
    # counted: the tokens that make up the kept text
    assert s.tokens == len(engine._tokens(prompt + s.text)) - len(engine._tokens(prompt))
    assert s.logprobs == full.logprobs[: s.tokens]
    # a stop that never occurs changes nothing; max_tokens ends every sample with "length"
    assert (
        engine.generate([Request(prompt=prompt, max_tokens=16, stop=("@@",), logprobs=True)])[
            0
        ].samples[0]
        == full
    )
    several = engine.generate([Request(prompt=prompt, n=3, temperature=0.5, max_tokens=5, seed=1)])
    assert [(x.tokens, x.finish_reason) for x in several[0].samples] == [(5, "length")] * 3


def forced(engine, req, ids):
    """Feed ``ids`` through the decoder's per-token step (one-hot logits, greedy) until it stops."""
    s = _Seq(
        req=req,
        r=0,
        i=0,
        seq=0,
        start=0,
        rng=np.random.default_rng(0),
        decoder=codecs.getincrementaldecoder("utf-8")(errors="replace"),
    )
    for t in ids:
        logits = np.zeros(engine._n_vocab, dtype=np.float32)
        logits[t] = 10.0
        engine._step([s], logits[None, :])
        if s.finish:
            break
    return s.sample()


def test_token_bytes_are_decoded_incrementally_and_eos_ends_a_sample(engine):
    woman = engine._tokens("👩")  # one character in three tokens of partial UTF-8
    ab = engine._tokens("ab")
    assert len(woman) == 3
    s = forced(engine, Request(prompt="x", max_tokens=10), [*ab, *woman, *ab, 2, *ab])
    assert (s.text, s.tokens, s.finish_reason) == ("ab👩ab", 5, "stop")  # EOS: not counted
    # cut inside the character by max_tokens: the partial bytes become one replacement char
    s = forced(engine, Request(prompt="x", max_tokens=3), [*ab, *woman])
    assert (s.text, s.tokens, s.finish_reason) == ("ab\ufffd", 3, "length")
    # a stop string that spans the partial tokens
    s = forced(engine, Request(prompt="x", max_tokens=10, stop=("👩a",)), [*ab, *woman, *ab])
    assert (s.text, s.tokens, s.finish_reason) == ("ab", 1, "stop")


def test_the_logits_matrix_holds_each_items_row_in_batch_order(engine):
    engine._context(256)
    engine._mem.clear()
    ids = engine._tokens("The capital of France is")
    # the same prompt in streams 0 and 1, then the next step of both, both rows asked for
    for seq in (0, 1):
        engine._decode([(t, j, seq, False) for j, t in enumerate(ids)])
    engine._decode([(ids[-1], len(ids), 1, True), (ids[-2], len(ids), 0, True)])
    matrix = engine._all_logits(2).copy()
    assert np.array_equal(matrix[0], engine._logits(0)) and np.array_equal(
        matrix[1], engine._logits(1)
    )
    assert not np.array_equal(matrix[0], matrix[1])


def test_empty_prompt_and_no_requests(engine):
    assert engine.generate([]) == []
    r = engine.generate([Request(prompt="", max_tokens=3)])[0]
    assert r.prompt_tokens == 1 and 0 < r.samples[0].tokens <= 3  # started from BOS


# -- the sampler on hand-made logits ------------------------------------------------------------------


def test_greedy_takes_the_argmax_and_leaves_the_generator_alone():
    rng = np.random.default_rng(0)
    assert pick_token(np.array([0.1, 2.0, 1.9], np.float32), 0.0, 0.5, rng) == 1
    assert rng.random() == np.random.default_rng(0).random()


def test_top_p_keeps_the_smallest_head_reaching_p():
    logits = np.log(np.array([0.15, 0.5, 0.05, 0.3]))
    rng = np.random.default_rng(1)
    draws = np.bincount([pick_token(logits, 1.0, 0.7, rng) for _ in range(4000)], minlength=4)
    assert draws[0] == draws[2] == 0  # 0.5 + 0.3 reach 0.7: the rest is cut
    assert draws[1] / 4000 == pytest.approx(0.5 / 0.8, abs=0.03)
    # temperature flattens; top_p=1 keeps everything
    draws = np.bincount([pick_token(logits, 5.0, 1.0, rng) for _ in range(4000)], minlength=4)
    assert draws.min() > 600


def test_top_p_widens_past_its_window_when_the_head_is_flat():
    logits = np.zeros(5000)  # 0.9 of a flat distribution needs 4500 tokens, beyond the window
    rng = np.random.default_rng(2)
    picks = {pick_token(logits, 1.0, 0.9, rng) for _ in range(3000)}
    assert max(picks) > 2000 and len(picks) > 1500


def test_rows_are_picked_together_as_one_at_a_time_by_the_float64_inverse_cdf():
    rng = np.random.default_rng(3)
    logits = (rng.standard_normal((40, 3000)) * 4).astype(np.float32)  # 6 blocks, the last short
    temps = [0.0 if k % 5 == 0 else 0.3 + k / 20 for k in range(40)]
    top_ps = [0.9 if k % 7 == 3 else 1.0 for k in range(40)]
    together = pick_tokens(logits, temps, top_ps, [np.random.default_rng(k) for k in range(40)])
    alone = [
        pick_token(logits[k], temps[k], top_ps[k], np.random.default_rng(k)) for k in range(40)
    ]
    assert together == alone
    # the reference: one uniform against the float64 cumulative softmax of the whole row
    for k in range(40):
        if temps[k] > 0 and top_ps[k] == 1.0:
            z = logits[k].astype(np.float64) / temps[k]
            cum = np.cumsum(np.exp(z - z.max()))
            u = np.random.default_rng(k).random()
            assert together[k] == int(np.searchsorted(cum, u * cum[-1], side="right"))
        elif temps[k] == 0:
            assert together[k] == int(np.argmax(logits[k]))


def test_draws_across_blocks_follow_the_softmax():
    logits = np.full(2000, -1e4, np.float32)
    where, probs = [5, 600, 1100, 1999], np.array([0.1, 0.2, 0.3, 0.4])
    logits[where] = np.log(probs)
    rng = np.random.default_rng(4)
    picks = pick_tokens(np.tile(logits, (8000, 1)), [1.0] * 8000, [1.0] * 8000, [rng] * 8000)
    assert set(picks) == set(where)
    freq = np.array([picks.count(w) for w in where]) / 8000
    assert freq == pytest.approx(probs, abs=0.02)


def test_token_logprobs_is_a_log_softmax():
    logits = np.array([1.0, 3.0, 2.0], np.float32)
    lp, top = token_logprobs(logits, 2, 2)
    full = logits - np.log(np.exp(logits).sum())
    assert lp == pytest.approx(full[2]) and top == pytest.approx([full[1], full[2]])


# -- the default engine's model: the packaged GGUF re-encoded as Q8_0 --------------------------------


def test_requantized_copy_is_cached_once_and_scores_like_the_source(tmp_path, monkeypatch):
    from reasonloop.engines.convert import requantize_gguf
    from reasonloop.engines.llamacpp import LlamaCppEngine, default_model_path
    from reasonloop.errors import EngineError

    monkeypatch.setenv("REASONLOOP_CACHE", str(tmp_path))
    source = default_model_path()
    out = requantize_gguf(source, "Q8_0")
    assert out.parent == tmp_path / "gguf" and out.name.startswith("SmolLM2-135M-Instruct")
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no partial file left
    before = out.stat().st_mtime_ns
    assert requantize_gguf(source, "Q8_0") == out and out.stat().st_mtime_ns == before
    with pytest.raises(EngineError, match="Q4_0"):
        requantize_gguf(source, "Q4_0")
    with pytest.raises(EngineError, match="no such GGUF"):
        requantize_gguf(tmp_path / "missing.gguf")
    # same next-token distribution to within 0.01 nats per token (Q8_0 holds 4-bit weights)
    prompt, text = MSGS, "The answer is 5, because two plus three makes five."
    nll = []
    for path in (source, str(out)):
        e = LlamaCppEngine(path, n_parallel=1)
        nll.append(-np.mean(e.score(prompt, text).logprobs))
        e.close()
    assert nll[0] > 0.5 and abs(nll[0] - nll[1]) < 0.01
