"""The OpenAI-compatible HTTP engine against real llama.cpp servers on 127.0.0.1.

The servers are llama-cpp-python's bundled server on the packaged SmolLM2 GGUF (see
``llama_server.py``); it ignores ``n > 1``, so it also exercises the top-up path. A few tests use a
tiny scripted HTTP server (real sockets) for what a healthy llama.cpp server never does: 5xx, 429,
4xx and hanging answers. Response-shape tests use vLLM-shaped JSON.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reasonloop.engines import load_engine
from reasonloop.engines.base import Message, Request, render_chatml, user_messages
from reasonloop.engines.openai import OpenAIEngine
from reasonloop.engines.openai_wire import (
    Endpoint,
    echo_logprobs,
    parse_choices,
    parse_spec,
)
from reasonloop.errors import ConfigError, EngineError


def _load_helper():
    spec = importlib.util.spec_from_file_location(
        "llama_server", Path(__file__).with_name("llama_server.py")
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


helper = _load_helper()
needs_server = pytest.mark.skipif(
    helper.missing_deps() is not None, reason=str(helper.missing_deps())
)

COUNT = "1, 2, 3,"  # greedy SmolLM2 continues " 4, 5, 6, ..."


@pytest.fixture(scope="module")
def server():
    with helper.LlamaServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def server2():
    with helper.LlamaServer() as srv:
        yield srv


@pytest.fixture()
def engine(server):
    with OpenAIEngine([(server.url, "smollm2")], concurrency=2) as eng:
        yield eng


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


# --- specs and options ------------------------------------------------------------------------


def test_parse_spec_several_endpoints():
    eps = parse_spec(
        "openai:http://10.0.0.1:8000/v1#Qwen/Qwen2.5-7B, https://h2/v1/#Qwen/Qwen2.5-7B"
    )
    assert eps == (
        Endpoint("http://10.0.0.1:8000/v1", "Qwen/Qwen2.5-7B"),
        Endpoint("https://h2/v1", "Qwen/Qwen2.5-7B"),
    )
    eng = load_engine("openai:http://10.0.0.1:8000/v1#m,http://10.0.0.2:8000/v1#m", timeout=5)
    assert isinstance(eng, OpenAIEngine)
    assert (eng.model, eng.spec, len(eng.endpoints)) == (
        "m",
        "openai:http://10.0.0.1:8000/v1#m,http://10.0.0.2:8000/v1#m",
        2,
    )
    eng.close()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("openai:", "not an openai spec"),
        ("llamacpp:x.gguf", "not an openai spec"),
        ("openai:http://h:8000/v1", "endpoint 1 ('http://h:8000/v1'): missing '#MODEL'"),
        ("openai:http://h:8000/v1#", "missing '#MODEL'"),
        ("openai:http://h:1/v1#m,", "endpoint 2 (''): empty endpoint"),
        ("openai:h:8000/v1#m", "must start with http:// or https://"),
        ("openai:ftp://h/v1#m", "must start with http:// or https://"),
        ("openai:http://#m", "must start with http:// or https://"),
        ("openai:http://h:99999/v1#m", "bad port"),
        ("openai:http://h/v1#my model", "contains whitespace"),
        (
            "openai:http://h/v1#m,http://h/v1/#m",
            "endpoint 2 ('http://h/v1/#m'): URL 'http://h/v1' appears twice",
        ),
    ],
)
def test_bad_specs_are_config_errors(spec, message):
    with pytest.raises(ConfigError, match="expected|must|bad|twice|whitespace") as err:
        OpenAIEngine.from_spec(spec)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_ctx": 512}, "unknown openai engine option(s) ['n_ctx']"),
        ({"api": "responses"}, "api='responses': must be one of ('auto', 'chat', 'completions')"),
        ({"concurrency": 0}, "concurrency=0: must be >= 1"),
        ({"timeout": 0}, "timeout=0: must be > 0"),
        ({"max_retries": -1}, "max_retries=-1: must be >= 0"),
        ({"chat_template": "llama3"}, "chat_template='llama3'"),
    ],
)
def test_bad_options_are_config_errors(options, message):
    with pytest.raises(ConfigError) as err:
        OpenAIEngine.from_spec("openai:http://127.0.0.1:1/v1#m", **options)
    assert message in str(err.value)


def test_api_key_from_option_or_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    with OpenAIEngine([("http://h/v1", "m")]) as eng:
        assert eng._slots[0].client.headers["authorization"] == "Bearer env-key"
    with OpenAIEngine([("http://h/v1", "m")], api_key="opt-key") as eng:
        assert eng._slots[0].client.headers["authorization"] == "Bearer opt-key"
    monkeypatch.delenv("OPENAI_API_KEY")
    with OpenAIEngine([("http://h/v1", "m")]) as eng:
        assert "authorization" not in eng._slots[0].client.headers


# --- response shapes (vLLM-shaped JSON) ------------------------------------------------------


def test_parse_chat_choices_with_logprobs_and_reasoning():
    data = {
        "choices": [
            {
                "index": 1,
                "message": {"role": "assistant", "content": "B", "reasoning_content": " think "},
                "finish_reason": "length",
                "logprobs": None,
            },
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi there"},
                "finish_reason": "stop",
                "logprobs": {
                    "content": [
                        {"token": "Hi", "logprob": -0.5, "top_logprobs": [
                            {"token": "Hi", "logprob": -0.5}, {"token": "Hello", "logprob": -1.5},
                            {"token": "Hey", "logprob": -0.2}]},
                        {"token": " there", "logprob": -1.0, "top_logprobs": [
                            {"token": " there", "logprob": -1.0}]},
                    ]
                },
            },
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9},
    }  # fmt: skip
    samples, prompt_tokens = parse_choices(data, chat=True, logprobs=True, top_logprobs=2)
    assert prompt_tokens == 12
    assert [(s.text, s.tokens, s.finish_reason) for s in samples] == [
        ("Hi there", 2, "stop"),
        ("<think>\nthink\n</think>\n\nB", 7, "length"),  # no log-probs: 9 in all - 2
    ]
    assert samples[0].logprobs == (-0.5, -1.0)
    assert samples[0].top_logprobs == ((-0.2, -0.5), (-1.0,))
    assert samples[1].logprobs is None


def test_parse_completion_choices_legacy_shape_and_token_split():
    data = {
        "choices": [
            {"index": 0, "text": " 4, 5", "finish_reason": "length",
             "logprobs": {"tokens": [" 4", ",", " 5"], "token_logprobs": [-0.1, -0.2, -0.3],
                          "top_logprobs": [{" 4": -0.1}, {",": -0.2, ".": -2.0}, {" 5": -0.3}],
                          "text_offset": [8, 10, 11]}},
        ],
        "usage": {"prompt_tokens": 8, "completion_tokens": 3},
    }  # fmt: skip
    samples, _ = parse_choices(data, chat=False, logprobs=True)
    assert samples[0] == type(samples[0])(" 4, 5", 3, "length", (-0.1, -0.2, -0.3), None)
    two = {
        "choices": [
            {"index": 0, "text": "aaaa", "finish_reason": "stop"},
            {"index": 1, "text": "bbbbbbbbbbbb", "finish_reason": None},
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 8},
    }
    samples, _ = parse_choices(two, chat=False)
    assert [(s.tokens, s.finish_reason) for s in samples] == [(2, "stop"), (6, "stop")]
    with pytest.raises(EngineError, match="no 'choices'"):
        parse_choices({"error": "x"}, chat=False)


def test_echo_logprobs_from_vllm_shape_and_refusals():
    prompt_only = {"usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    full = {
        "choices": [{"text": "<s>a b c d e!", "logprobs": {
            "tokens": ["<s>", "a", " b", " c", " d", " e", "!"],
            "token_logprobs": [None, -1.0, -2.0, -3.0, -0.5, -0.25, -0.1]}}],
        "usage": {"prompt_tokens": 6, "completion_tokens": 1},
    }  # fmt: skip
    assert echo_logprobs(prompt_only, full, " c d e", url="u") == (-3.0, -0.5, -0.25)
    with pytest.raises(EngineError, match="do not line up"):
        echo_logprobs(prompt_only, full, " x y z", url="u")
    no_echo = {"choices": [{"logprobs": {"tokens": ["!"], "token_logprobs": [-0.1]}}],
               "usage": {"prompt_tokens": 6, "completion_tokens": 1}}  # fmt: skip
    with pytest.raises(EngineError, match="u cannot score: .*no echoed prompt log-probs"):
        echo_logprobs(prompt_only, no_echo, " c d e", url="u")


def test_render_chatml():
    assert render_chatml((Message("system", "S"), Message("user", "Q"))) == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
    )


# --- failures: nothing listening, and a scripted HTTP server ---------------------------------


def test_all_endpoints_dead_fails_fast_naming_each_url():
    urls = [dead_url(), dead_url()]
    with OpenAIEngine([(u, "m") for u in urls], max_retries=5, backoff=1.0) as eng:
        t0 = time.monotonic()
        with pytest.raises(EngineError) as err:
            eng.generate([Request(prompt="x", max_tokens=2)] * 6)
        assert time.monotonic() - t0 < 2.0
        msg = str(err.value)
        assert "is down" in msg and all(
            f"{u} (cannot connect to {u}/completions" in msg for u in urls
        )
        assert [h.alive for h in eng.health()] == [False, False]
        with pytest.raises(EngineError, match="is down"):  # still down: fails at once
            eng.score("x", "y")


class Scripted(BaseHTTPRequestHandler):
    """Answers POSTs from ``server.script`` (status, headers, body, delay) in order; records
    each request body."""

    def do_POST(self):  # noqa: N802 -- http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append((self.path, body))
        status, headers, payload, delay = self.server.script.pop(0)
        time.sleep(delay)
        raw = json.dumps(payload).encode()
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except OSError:  # the client gave up (timeout test)
            pass

    def log_message(self, *args):
        pass


@pytest.fixture()
def scripted():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    httpd.script, httpd.seen = [], []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


OK_BODY = {
    "choices": [{"index": 0, "text": " ok", "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 2, "completion_tokens": 1},
}


def test_retries_5xx_and_429_then_succeeds(scripted):
    scripted.script = [
        (503, {}, {"error": "loading"}, 0),
        (429, {"Retry-After": "0"}, {"error": "busy"}, 0),
        (500, {}, {"error": "oops"}, 0),
        (200, {}, OK_BODY, 0),
    ]
    with OpenAIEngine([(scripted.url, "m")], backoff=0.01, max_retries=3) as eng:
        (res,) = eng.generate([Request(prompt="hi", max_tokens=3, seed=5, stop=("\n",))])
        assert (res.samples[0].text, res.samples[0].tokens, res.prompt_tokens) == (" ok", 1, 2)
        (h,) = eng.health()
        assert (h.alive, h.sent, h.failures) == (True, 4, 2)  # 429 is not a failure
    assert [p for p, _ in scripted.seen] == ["/v1/completions"] * 4
    assert scripted.seen[0][1] == {
        "model": "m", "n": 1, "temperature": 0.0, "top_p": 1.0, "max_tokens": 3,
        "stop": ["\n"], "seed": 5, "prompt": "hi",
    }  # fmt: skip


def test_4xx_is_not_retried(scripted):
    scripted.script = [(400, {}, {"error": {"message": "model 'm' not found"}}, 0)]
    with (
        OpenAIEngine([(scripted.url, "m")], backoff=0.01) as eng,
        pytest.raises(EngineError) as err,
    ):
        eng.generate([Request(messages=user_messages("hi"))])
    assert "HTTP 400" in str(err.value) and "model 'm' not found" in str(err.value)
    assert [p for p, _ in scripted.seen] == ["/v1/chat/completions"]


def test_timeouts_are_retried_then_reported(scripted):
    scripted.script = [(200, {}, OK_BODY, 1.0), (200, {}, OK_BODY, 1.0)]
    eng = OpenAIEngine([(scripted.url, "m")], timeout=0.2, max_retries=1, backoff=0.01)
    with eng, pytest.raises(EngineError) as err:
        eng.generate([Request(prompt="hi")])
    assert "request 0 failed 2 times (max_retries=1)" in str(err.value)
    assert "within 0.2s" in str(err.value)


# --- a real llama.cpp server --------------------------------------------------------------------


@needs_server
def test_completions_stop_and_max_tokens(engine, server):
    before = server.requests_answered("/completions")
    stop, length = engine.generate(
        [
            Request(prompt=COUNT, max_tokens=20, stop=(" 6",)),
            Request(prompt=COUNT, max_tokens=3),
        ]
    )
    assert [(s.text, s.finish_reason) for s in stop.samples] == [(" 4, 5,", "stop")]
    assert [(s.text, s.tokens, s.finish_reason) for s in length.samples] == [(" 4,", 3, "length")]
    assert stop.prompt_tokens == length.prompt_tokens == 8
    assert server.requests_answered("/completions") - before == 2


@needs_server
def test_chat_greedy_is_deterministic_with_logprobs(engine, server):
    req = Request(messages=user_messages("What is 2+2?"), max_tokens=12, logprobs=True,
                  top_logprobs=3)  # fmt: skip
    first, again = engine.generate([req, req])
    a, b = first.samples[0], again.samples[0]
    assert a == b and a.text and first.prompt_tokens == 37  # SmolLM2's template adds a system turn
    assert a.tokens == len(a.logprobs) == len(a.top_logprobs) <= 12
    for lp, top in zip(a.logprobs, a.top_logprobs, strict=True):
        assert len(top) == 3 and list(top) == sorted(top, reverse=True)
        assert lp <= top[0] + 1e-9
    assert server.requests_answered("/chat/completions") >= 2


@needs_server
def test_n3_on_a_server_that_ignores_n(engine, server):
    req = Request(messages=user_messages("Name a colour."), n=3, temperature=1.0, seed=11,
                  max_tokens=8)  # fmt: skip
    # warm the server's prompt cache first: the first sample of a prompt never seen before (read
    # cold, in one batch) can differ from later ones that reuse the cached prompt; from the second
    # identical call on, the bundled server's samples are the same every time (checked below)
    engine.generate([req])
    before = server.requests_answered("/chat/completions")
    (res,) = engine.generate([req])
    assert len(res.samples) == 3
    assert server.requests_answered("/chat/completions") - before == 3  # 1 asked for 3 -> 2 more
    (again,) = engine.generate([req])
    assert again == res  # same seed, same samples (split up front now)
    singles = engine.generate(
        [
            Request(messages=req.messages, temperature=1.0, seed=11 + i, max_tokens=8)
            for i in range(3)
        ]
    )
    assert tuple(r.samples[0] for r in singles) == res.samples  # sample i used seed + i
    assert len({s.text for s in res.samples}) >= 2


@needs_server
def test_score_chatml_prompt_matches_in_process_llama_cpp(server):
    import numpy as np
    from llama_cpp import Llama

    msgs = user_messages("What is 2+2?")
    cont = "2+2 equals 4."
    with OpenAIEngine([(server.url, "smollm2")], chat_template="chatml") as eng:
        scored = eng.score(msgs, cont)
        assert eng.score(msgs, "").logprobs == ()
        with pytest.raises(EngineError, match="BOS token"):
            eng.score("The capital of France is", " Paris.")  # raw prompt: shifted by one
    llm = Llama(str(server.model), n_ctx=256, logits_all=True, verbose=False)
    prompt = render_chatml(msgs)
    p_ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    ids = llm.tokenize((prompt + cont).encode(), add_bos=False, special=True)
    llm.eval(ids)
    logits = np.asarray(llm.scores[: len(ids)], dtype=np.float64)
    logz = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
    want = [logits[i - 1, ids[i]] - logz[i - 1] for i in range(len(p_ids), len(ids))]
    assert scored.tokens == len(want) == 7
    assert scored.logprobs == pytest.approx(want, abs=1e-3)


@needs_server
def test_messages_on_completions_api_need_a_template(server):
    eng = OpenAIEngine([(server.url, "m")], api="completions")
    with eng, pytest.raises(EngineError, match="no /apply-template endpoint; pass chat_template"):
        eng.generate([Request(messages=user_messages("hi"), max_tokens=2)])
    with OpenAIEngine([(server.url, "m")], api="completions", chat_template="chatml") as eng:
        (res,) = eng.generate([Request(messages=user_messages("What is 2+2?"), max_tokens=4)])
        assert res.prompt_tokens == 16  # ChatML without SmolLM2's default system turn


@needs_server
@pytest.mark.slow
def test_two_endpoints_share_the_load(server, server2):
    before = [server.requests_answered(), server2.requests_answered()]
    spec = f"openai:{server.url}#smollm2,{server2.url}#smollm2"
    with OpenAIEngine.from_spec(spec, concurrency=1) as eng:
        results = eng.generate([Request(prompt=f"{k}, {k + 1},", max_tokens=4) for k in range(10)])
        sent = [h.sent for h in eng.health()]
    answered = [server.requests_answered() - before[0], server2.requests_answered() - before[1]]
    assert all(r.samples[0].text for r in results)
    assert answered == sent and sum(answered) == 10 and min(answered) >= 3


@needs_server
@pytest.mark.slow
def test_endpoint_killed_mid_run_its_requests_finish_elsewhere(server):
    prompts = [f"{k}, {k + 1}, {k + 2}," for k in range(4)]
    with OpenAIEngine([(server.url, "smollm2")]) as ref_engine:
        reference = [r.samples[0].text for r in ref_engine.generate(
            [Request(prompt=p, max_tokens=8) for p in prompts])]  # fmt: skip
    requests = [Request(prompt=prompts[i % 4], max_tokens=8) for i in range(12)]
    with helper.LlamaServer() as victim:
        survivor_before = server.requests_answered()

        def kill_after_two():
            deadline = time.monotonic() + 60
            while victim.requests_answered() < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            victim.kill()

        killer = threading.Thread(target=kill_after_two)
        spec = f"openai:{victim.url}#smollm2,{server.url}#smollm2"
        with OpenAIEngine.from_spec(spec, concurrency=2, backoff=0.05) as eng:
            killer.start()
            results = eng.generate(requests)
            killer.join()
            health = eng.health()
        victim_answered = victim.requests_answered()
    assert [r.samples[0].text for r in results] == [reference[i % 4] for i in range(12)]
    assert 2 <= victim_answered < 12
    assert server.requests_answered() - survivor_before >= 12 - victim_answered
    assert (health[0].alive, health[1].alive) == (False, True)
    assert health[0].last_error and victim.url in health[0].last_error
