"""MCTS on a scripted tree whose rewards are known: exact visits and values after each run."""

import math

import pytest

from reasonloop.engines.scripted import ScriptedEngine
from reasonloop.errors import ConfigError
from reasonloop.records import Problem
from reasonloop.search import MCTS, TokenConfidence, VerifierScorer
from reasonloop.search.mcts import uct
from reasonloop.search.steps import mini_steps

CHOICE = Problem("q1", "science", "Which?", "B", choices=("one", "two", "three"))
BASE = "P:\n"
END = "<|end_of_solution|>"

EXPANSIONS = {"": ["A", "B"], "A\n\n": ["A1", "A2"], "B\n\n": ["B1", "B2"]}
ROLLOUTS = {"A\n\n": "ra", "B\n\n": "rb"}  # any other node rolls out "r"
REWARDS = {
    "A\n\nra": 0.8,
    "B\n\nrb": 0.2,
    "A\n\nA1\n\nr": 1.0,
    "A\n\nA2\n\nr": 0.0,
    "B\n\nB1\n\nr": 0.5,
    "B\n\nB2\n\nr": 0.3,
}


def tree_engine(expansions=EXPANSIONS, rollouts=ROLLOUTS):
    def reply(req, i):
        partial = req.prompt[len(BASE) :]
        if req.stop:  # an expansion: one step
            return expansions[partial][i]
        return rollouts.get(partial, "r")

    return ScriptedEngine(reply)


def by_text(root):
    return {n.text: (n.visits, n.value) for n in root.walk()}


def test_mcts_backs_up_a_hand_computed_tree(table_scorer):
    """Five iterations, c = 1, two children per expansion:

    1. expand the root (A, B); roll out A: 0.8
    2. B is unvisited: roll out B: 0.2
    3. UCT A = 0.8 + sqrt(ln 2) = 1.633 > B = 1.033: A was visited, expand it (A1, A2);
       roll out A1: 1.0
    4. A = 0.9 + sqrt(ln 3 / 2) = 1.641 > B = 0.2 + sqrt(ln 3) = 1.248; in A, A2 is unvisited:
       roll out A2: 0.0
    5. A = 0.6 + sqrt(ln 4 / 3) = 1.280 < B = 0.2 + sqrt(ln 4) = 1.377: expand B (B1, B2);
       roll out B1: 0.5
    """
    engine = tree_engine()
    scorer = table_scorer(REWARDS)
    result, root = MCTS(scorer, iterations=5, children=2, c=1.0, max_depth=2).search(
        CHOICE, BASE, engine
    )
    assert by_text(root) == {
        "": (5, pytest.approx(2.5 / 5)),
        "A\n\n": (3, pytest.approx(1.8 / 3)),
        "A\n\nA1\n\n": (1, 1.0),
        "A\n\nA2\n\n": (1, 0.0),
        "B\n\n": (2, pytest.approx(0.7 / 2)),
        "B\n\nB1\n\n": (1, 0.5),
        "B\n\nB2\n\n": (0, 0.0),
    }
    assert root.value_sum == pytest.approx(2.5)
    # final: most visited A (3 > 2), then A1 (visits tie, higher value); its best rollout
    assert result.response == "A\n\nA1\n\nr"
    assert [(c.text, c.score) for c in result.candidates] == [
        ("A\n\nra", 0.8),
        ("B\n\nrb", 0.2),
        ("A\n\nA1\n\nr", 1.0),
        ("A\n\nA2\n\nr", 0.0),
        ("B\n\nB1\n\nr", 0.5),
    ]
    assert result.details["path"] == [
        {"visits": 5, "value": pytest.approx(0.5)},
        {"visits": 3, "value": pytest.approx(0.6)},
        {"visits": 1, "value": 1.0},
    ]
    assert result.details["nodes"] == 7 and result.details["oracle"] is False
    # tokens: 3 expansions of 2 one-word steps, 5 one-word rollouts
    assert result.tokens == 6 + 5
    kinds = [
        ("expand" if r.stop else "rollout", r.prompt[len(BASE) :], r.seed) for r in engine.calls
    ]
    assert kinds == [
        ("expand", "", 0),
        ("rollout", "A\n\n", 2),
        ("rollout", "B\n\n", 3),
        ("expand", "A\n\n", 4),
        ("rollout", "A\n\nA1\n\n", 6),
        ("rollout", "A\n\nA2\n\n", 7),
        ("expand", "B\n\n", 8),
        ("rollout", "B\n\nB1\n\n", 10),
    ]
    # prompt tokens: 'P:' plus the partial response's words, per request
    assert result.prompt_tokens == 1 + 2 + 2 + 2 + 3 + 3 + 2 + 3


def test_mcts_final_by_reward_and_one_more_iteration(table_scorer):
    result, root = MCTS(
        table_scorer(REWARDS), iterations=6, children=2, max_depth=2, final="reward"
    ).search(CHOICE, BASE, tree_engine())
    # 6: root N=5: A = 0.6 + sqrt(ln5/3) = 1.334, B = 0.35 + sqrt(ln5/2) = 1.247 -> A;
    #    in A (N=3): A1 = 1 + sqrt(ln3) = 2.048 > A2 = 1.048 -> A1, at max depth: roll out again
    assert by_text(root)["A\n\nA1\n\n"] == (2, 1.0)
    assert by_text(root)["A\n\n"] == (4, pytest.approx(2.8 / 4))
    assert result.response == "A\n\nA1\n\nr"  # the best-rewarded rollout overall


def test_uct_formula():
    from reasonloop.search.mcts import Node

    parent = Node("", "", 0, visits=4)
    child = Node("x", "x", 1, parent=parent, visits=2, value_sum=1.0)
    assert uct(child, parent.visits, 1.5) == pytest.approx(0.5 + 1.5 * math.sqrt(math.log(4) / 2))
    assert uct(Node("y", "y", 1), 4, 1.0) == math.inf


def test_complete_nodes_are_scored_once_without_rollouts(table_scorer):
    expansions = {"": [f"Answer: B {END}", "A"]}
    rewards = {f"Answer: B {END}": 1.0, "A\n\nra": 0.1}
    scorer = table_scorer(rewards)
    engine = tree_engine(expansions)
    result, root = MCTS(scorer, iterations=4, children=2, max_depth=1).search(CHOICE, BASE, engine)
    done, open_ = root.children
    assert done.complete and not open_.complete
    # 1: expand, score the complete child (no rollout); 2: roll out A; 3, 4: UCT -> complete child
    assert (done.visits, done.value, open_.visits) == (3, 1.0, 1)
    assert [r.stop for r in engine.calls] == [("\n\n",), ()]
    assert [s for s, _ in scorer.calls] == [f"Answer: B {END}", "A\n\nra"]
    assert (result.response, result.answer) == (f"Answer: B {END}", "B")
    assert result.tokens == 3 + 1 + 1


def test_mcts_token_confidence_reward(top_engine):
    def reply(req, i):
        if req.stop:
            return ["sure sure", "maybe"][i]
        return "maybe"

    engine = top_engine(reply)
    result, root = MCTS(TokenConfidence(), iterations=1, children=2).search(CHOICE, BASE, engine)
    # the rollout from 'sure sure': confidences 0.9, 0.9 (path) and 0.4 (rollout)
    assert root.value == pytest.approx((0.9 + 0.9 + 0.4) / 3)
    assert result.candidates[0].text == "sure sure\n\nmaybe"
    assert all(r.top_logprobs == 5 and r.logprobs for r in engine.calls)


def test_oracle_mcts_is_flagged():
    expansions = {"": ["A", "B"]}
    rollouts = {"A\n\n": "Answer: C", "B\n\n": "Answer: B"}
    result = MCTS(VerifierScorer(), iterations=2, children=2, max_depth=1).run(
        CHOICE, BASE, tree_engine(expansions, rollouts)
    )
    assert result.details["oracle"] is True
    assert [c.score for c in result.candidates] == [0.0, 1.0]
    # visits tie (1 each): B has the higher value
    assert (result.response, result.answer) == ("B\n\nAnswer: B", "B")


def test_mcts_over_mini_steps(chunk_engine, table_scorer):
    engine = chunk_engine(BASE, ["abcdef", "abxyzw"])
    scorer = table_scorer({"abcdef": 0.9, "abxyzw": 0.2})
    mcts = MCTS(scorer, iterations=3, children=2, step=mini_steps(2), max_depth=3)
    result, root = mcts.search(CHOICE, BASE, engine)
    # the two samples from the root are the same mini-step "ab": one child
    (ab,) = root.children
    assert ab.step == "ab" and [c.step for c in ab.children] == ["cd", "xy"]
    assert [r.max_tokens for r in engine.calls if r.stop == ()][:1] == [2]
    assert result.response == "abcdef"


def test_mcts_settings_are_checked(table_scorer):
    with pytest.raises(ConfigError, match="iterations"):
        MCTS(table_scorer({}), iterations=0)
    with pytest.raises(ConfigError, match="final"):
        MCTS(table_scorer({}), final="best")  # type: ignore[arg-type]
