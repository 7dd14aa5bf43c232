"""Beam search on a scripted tree of steps whose scores are known."""

import pytest

from reasonloop.engines.base import render_chatml
from reasonloop.engines.scripted import ScriptedEngine
from reasonloop.errors import ConfigError
from reasonloop.records import Problem
from reasonloop.search import BeamSearch, RewardModelScorer, StepSpec, default_prompt
from reasonloop.search.steps import mini_steps

CHOICE = Problem("q1", "science", "Which?", "C", choices=("one", "two", "three"))
BASE = "P:\n"
END = "<|end_of_solution|>"

# partial response -> the steps sampled from it, in sample order
TREE = {
    "": ["s1 a", "s1 b", "s1 c"],
    "s1 b\n\n": ["s2 d", f"Answer: B {END}", "s2 e"],
    "s1 c\n\n": ["s2 f", "s2 g", "s2 h"],
    "s1 c\n\ns2 f\n\n": [f"Answer: C {END}", "s3 i", f"Answer: C {END}"],
}
SCORES = {
    "s1 a\n\n": 0.5,
    "s1 b\n\n": 0.9,
    "s1 c\n\n": 0.7,
    "s1 b\n\ns2 d\n\n": 0.6,
    f"s1 b\n\nAnswer: B {END}": 0.8,
    "s1 b\n\ns2 e\n\n": 0.2,
    "s1 c\n\ns2 f\n\n": 0.95,
    "s1 c\n\ns2 g\n\n": 0.1,
    "s1 c\n\ns2 h\n\n": 0.3,
    f"s1 c\n\ns2 f\n\nAnswer: C {END}": 0.9,
    "s1 c\n\ns2 f\n\ns3 i\n\n": 0.8,  # ties with the finished B beam, which came first
}


def tree_engine(tree=TREE):
    def reply(req, i):
        assert req.prompt.startswith(BASE)
        return tree[req.prompt[len(BASE) :]][i]

    return ScriptedEngine(reply)


def test_beam_keeps_the_top_k_at_each_depth(table_scorer):
    engine = tree_engine()
    scorer = table_scorer(SCORES)
    result = BeamSearch(scorer, beam_width=2, expand=3, max_depth=10).run(CHOICE, BASE, engine)
    levels = [[b["text"] for b in level] for level in result.details["levels"]]
    assert levels == [
        ["s1 b\n\n", "s1 c\n\n"],
        ["s1 c\n\ns2 f\n\n", f"s1 b\n\nAnswer: B {END}"],
        [f"s1 c\n\ns2 f\n\nAnswer: C {END}", f"s1 b\n\nAnswer: B {END}"],
    ]
    assert [[b["done"] for b in level] for level in result.details["levels"]] == [
        [False, False],
        [False, True],
        [True, True],
    ]
    assert (result.response, result.answer) == (f"s1 c\n\ns2 f\n\nAnswer: C {END}", "C")
    assert result.details["depths"] == 3 and result.details["finished"] == 2
    assert [(c.answer, c.score) for c in result.candidates] == [("C", 0.9), ("B", 0.8)]
    # the duplicate third child at depth 3 is not scored again; finished beams are not rescored
    assert len(scorer.calls) == 3 + 6 + 2
    # token accounting: every sampled step, kept or not (the duplicate too)
    assert result.tokens == 6 + (2 + 3 + 2 + 6) + (3 + 2 + 3) == 27
    # prompt tokens per request: 'P:' plus the partial response's words
    assert result.prompt_tokens == 1 + (3 + 3) + 5
    # requests: one per open beam, seeds continuing across requests
    assert [(r.n, r.seed, r.stop) for r in engine.calls] == [
        (3, 0, ("\n\n",)),
        (3, 3, ("\n\n",)),
        (3, 6, ("\n\n",)),
        (3, 9, ("\n\n",)),
    ]
    assert [c.tokens for c in result.candidates] == [2 + 2 + 3, 2 + 3]


def test_beam_joins_step_samples_for_the_scorer(table_scorer):
    scorer = table_scorer(SCORES)
    BeamSearch(scorer, beam_width=2, expand=3).run(CHOICE, BASE, tree_engine())
    response, sample = scorer.calls[-1]
    assert response == "s1 c\n\ns2 f\n\ns3 i\n\n"
    assert sample.text == response and sample.tokens == 6


def test_beam_max_depth_returns_the_best_open_beam(table_scorer):
    result = BeamSearch(table_scorer(SCORES), beam_width=2, expand=3, max_depth=1).run(
        CHOICE, BASE, tree_engine()
    )
    assert result.response == "s1 b\n\n" and result.answer is None
    assert [c.finish_reason for c in result.candidates] == ["length", "length"]


def test_beam_guided_by_a_prm_sees_the_prefix_steps():
    seen = []

    def prm(problem, prompt, steps):
        seen.append(steps)
        last = "\n\n".join(steps) + "\n\n"
        return [0.5] * (len(steps) - 1) + [SCORES.get(last, 0.99)]

    beam = BeamSearch(RewardModelScorer(prm, aggregate="last"), beam_width=1, expand=3)
    result = beam.run(CHOICE, BASE, tree_engine())
    # width 1: s1 b (0.9) -> its finished child (0.99)
    assert result.response == f"s1 b\n\nAnswer: B {END}"
    assert seen[:3] == [("s1 a",), ("s1 b",), ("s1 c",)]
    assert seen[3:6] == [("s1 b", "s2 d"), ("s1 b", "Answer: B"), ("s1 b", "s2 e")]


def test_beam_over_mini_steps(chunk_engine, table_scorer):
    engine = chunk_engine(BASE, ["abcde", "abxyz"])
    scorer = table_scorer({"ab": 1.0, "abcd": 0.9, "abxy": 0.1, "abcde": 1.0, "abxyz": 0.0})
    result = BeamSearch(scorer, beam_width=1, expand=2, step=mini_steps(2)).run(
        CHOICE, BASE, engine
    )
    # "ab" twice (the duplicate is dropped), then "abcd" beats "abxy", then "abcde" ends (EOS)
    assert [[b["text"] for b in lv] for lv in result.details["levels"]] == [
        ["ab"],
        ["abcd"],
        ["abcde"],
    ]
    assert result.response == "abcde"
    assert [r.max_tokens for r in engine.calls] == [2, 2, 2]
    assert result.tokens == (2 + 2) + (2 + 2) + (1 + 1)


def test_beam_token_budget_ends_a_beam(chunk_engine, table_scorer):
    engine = chunk_engine(BASE, ["abcdefgh"])
    scorer = table_scorer({}, default=0.5)
    beam = BeamSearch(scorer, beam_width=1, expand=1, step=mini_steps(3), max_tokens=5)
    result = beam.run(CHOICE, BASE, engine)
    assert result.response == "abcde"
    assert [r.max_tokens for r in engine.calls] == [3, 2]
    assert result.candidates[0].finish_reason == "length"


def test_beam_renders_chat_prompts_to_continue_them(table_scorer):
    base = render_chatml(default_prompt(CHOICE))

    def reply(req, i):
        assert req.prompt.startswith(base)
        return f"Answer: C {END}"

    engine = ScriptedEngine(reply)
    result = BeamSearch(table_scorer({}, default=1.0), expand=1).run(CHOICE, None, engine)
    assert result.answer == "C"
    assert engine.calls[0].prompt == base


def test_beam_settings_are_checked(table_scorer):
    with pytest.raises(ConfigError, match="beam_width"):
        BeamSearch(table_scorer({}), beam_width=0)
    assert BeamSearch(table_scorer({})).step == StepSpec()


def test_engines_that_render_their_own_template_are_asked(table_scorer):
    class Rendering(ScriptedEngine):
        def render(self, prompt):
            return "TEMPLATE[" + "|".join(m.content for m in prompt) + "]"

    engine = Rendering([f"Answer: C {END}"])
    BeamSearch(table_scorer({}, default=1.0), expand=1).run(CHOICE, None, engine)
    assert engine.calls[0].prompt.startswith("TEMPLATE[") and "Which?" in engine.calls[0].prompt
