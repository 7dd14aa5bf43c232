"""``evaluate`` with greedy / sample and with the search strategies, on scripted engines."""

import json

import pytest

from reasonloop.engines.scripted import ScriptedEngine
from reasonloop.errors import ConfigError
from reasonloop.evaluate.run import EvalSettings, evaluate, load_spend
from reasonloop.records import Problem
from reasonloop.search import MCTS, BeamSearch, BestOfN, Majority, Reflection

CHOICES = ("one", "two", "three")
PROBLEMS = [Problem(f"q{i}", "science", f"Which {i}?", "B", choices=CHOICES) for i in range(3)]


def replies(req, i):
    """Sample i answers A, B, B, C, ...: the vote says B; sample 0 alone says A."""
    return f"so I think Answer: {'ABBC'[i % 4]}"


class Scorer:
    """Scores the answer letter: C best, then B, then A (the oracle would say B)."""

    def score(self, problem, prompt, response, sample=None):
        return {"A": 0.1, "B": 0.5, "C": 0.9}[response[-1]]


def test_search_reports_accuracy_and_tokens_spent_and_resumes(tmp_path):
    engine = ScriptedEngine(replies)
    s = EvalSettings(strategy="majority", k=4)
    r = evaluate(engine, "toy", PROBLEMS, tmp_path, s)
    assert (r.strategy, r.n_problems, r.metrics) == ("majority k=4", 3, {"acc": 1.0, "pass@1": 1.0})
    assert r.mean_tokens == 4 * 5  # tokens spent per problem: four 5-word samples
    spend = load_spend(tmp_path)
    assert spend["tokens_per_problem"] == 20 and spend["problems"] == 3
    assert spend["prompt_tokens_per_problem"] > 0 and spend["accuracy"] == 1.0
    assert json.loads((tmp_path / "metrics.json").read_text())["strategy"] == "majority k=4"
    assert [(c.n, c.temperature, c.seed) for c in engine.calls] == [(4, 0.7, 0)] * 3
    # resumed: nothing is sampled again, the same result comes back
    again = ScriptedEngine(replies)
    assert evaluate(again, "toy", PROBLEMS, tmp_path, s) == r and again.calls == []
    # another strategy in the same directory is another run
    s2 = EvalSettings("best-of-n", k=4, scorer="letters")
    best = evaluate(ScriptedEngine(replies), "toy", PROBLEMS, tmp_path, s2, scorer=Scorer())
    assert (best.strategy, best.metrics["acc"]) == ("best-of-n k=4 scorer=letters", 0.0)
    assert evaluate(ScriptedEngine(replies), "toy", PROBLEMS, tmp_path, s) == r


def test_a_given_scorer_ranks_best_of_n(tmp_path):
    s = EvalSettings(strategy="best-of-n", k=4, scorer="letters")
    r = evaluate(ScriptedEngine(replies), "toy", PROBLEMS, tmp_path, s, scorer=Scorer())
    assert r.metrics["acc"] == 0.0  # C ranks highest and is wrong
    w = EvalSettings("weighted", k=4, scorer="letters")
    k1 = evaluate(ScriptedEngine(replies), "toy", PROBLEMS[:2], tmp_path / "w", w, scorer=Scorer())
    assert k1.metrics["acc"] == 1.0  # B's two votes weigh 1.0, C's one 0.9


def test_interrupted_search_keeps_finished_problems(tmp_path):
    calls = []

    def flaky(req, i):
        calls.append(req)
        if len(calls) > 4:  # dies on the second problem
            raise RuntimeError("killed")
        return replies(req, i)

    s = EvalSettings(strategy="majority", k=4)
    with pytest.raises(RuntimeError):
        evaluate(ScriptedEngine(flaky), "toy", PROBLEMS, tmp_path, s)
    engine = ScriptedEngine(replies)
    r = evaluate(engine, "toy", PROBLEMS, tmp_path, s)
    assert len(engine.calls) == 2 and r.n_problems == 3


def test_sample_and_greedy_keep_their_metrics_and_report_spend(tmp_path):
    r = evaluate(ScriptedEngine(replies), "toy", PROBLEMS, tmp_path, EvalSettings("sample", k=4))
    assert r.strategy == "sample" and r.metrics["maj@4"] == 1.0 and r.metrics["acc"] == 0.5
    assert r.mean_tokens == 5  # per sample, as before
    assert load_spend(tmp_path)["tokens_per_problem"] == 20  # all four samples
    g = evaluate(ScriptedEngine(["so Answer: B"]), "toy", PROBLEMS, tmp_path / "g", EvalSettings())
    assert (g.strategy, g.metrics["pass@1"]) == ("greedy", 1.0)
    assert load_spend(tmp_path / "g")["tokens_per_problem"] == 3


def test_settings_build_each_strategy_with_its_budget():
    assert isinstance(_build(EvalSettings("majority", k=3)), Majority)
    b = _build(EvalSettings("best-of-n", k=5, max_tokens=64), scorer=Scorer())
    assert isinstance(b, BestOfN) and (b.n, b.max_tokens) == (5, 64)
    beam = _build(
        EvalSettings("beam", k=2, options=(("expand", 3), ("step_tokens", 16))), scorer=Scorer()
    )
    assert isinstance(beam, BeamSearch) and (beam.beam_width, beam.expand) == (2, 3)
    assert beam.step.max_tokens == 16
    mcts = _build(EvalSettings("mcts", k=6, options=(("children", 2),)), scorer=Scorer())
    assert isinstance(mcts, MCTS) and (mcts.iterations, mcts.children) == (6, 2)
    refl = _build(EvalSettings("reflection", max_tokens=99))
    assert isinstance(refl, Reflection) and (refl.temperature, refl.max_tokens) == (0.0, 99)
    assert EvalSettings("beam", k=2, scorer="prm:x").label() == "beam k=2 scorer=prm:x agg=min"
    assert EvalSettings("reflection").label() == "reflection"
    assert EvalSettings("mcts", k=4).label() == "mcts k=4 scorer=confidence"
    # a GenRM's form (and GenRM-CoT's votes) tell its runs apart: P(Yes) is not P(Yes|Yes or No)
    assert EvalSettings("best-of-n", k=4, scorer="genrm:x").label() == (
        "best-of-n k=4 scorer=genrm:x form=yes"
    )
    assert EvalSettings(
        "best-of-n", k=4, scorer="genrm-cot:x", genrm_form="yes-no", verifications=2
    ).label() == ("best-of-n k=4 scorer=genrm-cot:x form=yes-no votes=2")


def _build(s, scorer=None):
    from reasonloop.search import make_strategy

    return make_strategy(s.strategy, **s.strategy_options(scorer))


def test_bad_settings():
    with pytest.raises(ConfigError, match="strategy must be one of greedy, sample, majority") as e:
        EvalSettings("vote")
    assert e.value.field == "strategy"
    with pytest.raises(ConfigError, match="strategy 'majority' uses no scorer"):
        EvalSettings("majority", scorer="confidence")
    with pytest.raises(ConfigError, match="strategy 'sample' takes no options"):
        EvalSettings("sample", options=(("n", 2),))
    with pytest.raises(ConfigError, match=r"top_p must be <= 1, got 1\.5"):
        EvalSettings(top_p=1.5)
    with pytest.raises(ConfigError, match="strategy 'beam'"):
        _build(EvalSettings("beam", options=(("bogus", 1),)), scorer=Scorer())
