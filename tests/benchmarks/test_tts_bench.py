"""The test-time compute benchmark's sample sharing: a repeated seeded request is answered from
memory, with the same samples, and the wrapped engine sees it once."""

import importlib.util
import sys
from pathlib import Path

from reasonloop.engines.base import Message, Request
from reasonloop.engines.scripted import ScriptedEngine

spec = importlib.util.spec_from_file_location(
    "tts_bench", Path(__file__).parents[2] / "benchmarks" / "tts_bench.py"
)
tts_bench = importlib.util.module_from_spec(spec)
sys.modules["tts_bench"] = tts_bench  # its dataclasses look their module up
spec.loader.exec_module(tts_bench)


def test_shared_samples_answer_a_repeated_request_from_memory():
    counter = iter(range(1000))
    inner = ScriptedEngine(lambda req, i: f"answer {next(counter)}")
    eng = tts_bench.SharedSamples(inner)
    msgs = (Message("user", "q"),)
    maj = Request(messages=msgs, n=2, temperature=0.7, seed=0)
    conf = Request(messages=msgs, n=2, temperature=0.7, seed=0, top_logprobs=5, logprobs=True)
    other = Request(messages=msgs, n=2, temperature=0.7, seed=1)
    first = eng.generate([maj])[0]
    again = eng.generate([conf, other])
    assert [s.text for s in first.samples] == ["answer 0", "answer 1"]
    assert again[0] is first  # the same samples, with log-probs (every request asks for them)
    assert first.samples[0].logprobs == (-1.0, -1.0)
    assert [s.text for s in again[1].samples] == ["answer 2", "answer 3"]  # another seed: sampled
    assert len(inner.calls) == 2 and inner.calls[0].top_logprobs == 5 and eng.hits == 1
    # unseeded requests are never shared
    free = Request(messages=msgs, n=1, temperature=0.7)
    assert eng.generate([free])[0] is not eng.generate([free])[0]
    assert eng.score is not None and eng.spec == "scripted"


def test_a_prm_adds_best_of_n_and_guides_beam_and_mcts_beside_token_confidence(monkeypatch):
    import reasonloop.search

    monkeypatch.setattr(reasonloop.search, "make_scorer", lambda name, aggregate: f"built {name}")
    args = tts_bench.parser().parse_args(["--k", "4", "--prm", "p", "--orm", "o"])
    runs = tts_bench.build_runs(args)
    assert [r.name for r in runs] == [
        "greedy",
        "maj@4",
        "best-of-4 confidence",
        "best-of-4 logprob",
        "best-of-4 orm",
        "best-of-4 prm",
        "best-of-4 oracle",
        "beam 4x2 confidence",
        "beam 4x2 prm",
        "mcts 8 it confidence",
        "mcts 8 it prm",
    ]
    guided = {
        r.name: (r.settings.scorer, r.scorer) for r in runs if r.name.startswith(("beam", "mcts"))
    }
    assert guided["beam 4x2 prm"] == ("prm:p", "built prm:p")
    assert guided["mcts 8 it confidence"] == ("confidence", None)
    # without a PRM, token confidence alone guides them
    plain = tts_bench.build_runs(tts_bench.parser().parse_args([]))
    assert [r.name for r in plain if r.name.startswith(("beam", "mcts"))] == [
        "beam 4x2 confidence",
        "mcts 8 it confidence",
    ]
