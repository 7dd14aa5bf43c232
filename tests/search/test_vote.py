"""Greedy, majority, weighted vote and best-of-N on scripted engines with known replies."""

import math

import pytest

from reasonloop.engines.base import Message
from reasonloop.engines.scripted import ScriptedEngine, prompt_text
from reasonloop.errors import ConfigError, EngineError
from reasonloop.records import Problem
from reasonloop.search import (
    BestOfN,
    Greedy,
    LogProbScorer,
    Majority,
    TokenConfidence,
    VerifierScorer,
    WeightedVote,
    default_prompt,
    make_scorer,
    make_strategy,
)

CHOICE = Problem("q1", "science", "Which?", "B", choices=("one", "two", "three"))
COUNTDOWN = Problem("c1", "puzzle", "Reach 10 using the numbers 2 5 3", "2*5", source="countdown")
MATH = Problem("m1", "math", "Half of one?", "1/2")


def answers(*letters):
    """Replies 'because i Answer: L' (4 words each) for each letter (None: no answer)."""
    return [f"because {i} Answer: {x}" if x else "no idea here" for i, x in enumerate(letters)]


def words(texts):
    return sum(len(t.split()) for t in texts)


def test_greedy_one_sample_at_temperature_zero_with_the_default_prompt():
    engine = ScriptedEngine(["so Answer: C"])
    result = Greedy(max_tokens=50).run(CHOICE, None, engine)
    assert (result.response, result.answer, result.tokens) == ("so Answer: C", "C", 3)
    (req,) = engine.calls
    assert (req.n, req.temperature, req.max_tokens, req.seed) == (1, 0.0, 50, 0)
    assert req.messages == default_prompt(CHOICE)
    assert req.messages[0].role == "system" and "A) one" in req.messages[1].content
    assert result.prompt_tokens == len(prompt_text(req).split())
    assert result.details == {"strategy": "greedy"}


def test_majority_picks_the_most_frequent_answer_and_its_first_sample():
    replies = answers("A", "B", None, "B", "C", "B")
    engine = ScriptedEngine(replies)
    result = Majority(n=6, seed=7).run(CHOICE, "Q", engine)
    assert result.answer == "B"
    assert result.response == replies[1]
    assert result.details == {"strategy": "majority", "votes": 3, "n": 6, "chosen": 1}
    assert [c.answer for c in result.candidates] == ["A", "B", None, "B", "C", "B"]
    assert all(c.score is None for c in result.candidates)
    # token accounting: every sample's tokens, prompt excluded; the prompt once per request
    assert result.tokens == words(replies) == 5 * 4 + 3
    assert result.prompt_tokens == 1
    (req,) = engine.calls
    # the sampling block's defaults: top_p 1.0 (temperature alone), as every stage samples
    assert (req.prompt, req.n, req.seed, req.temperature, req.top_p) == ("Q", 6, 7, 0.7, 1.0)
    assert not req.logprobs and req.top_logprobs == 0


def test_majority_tie_goes_to_the_answer_seen_first_and_no_answer_to_the_first_sample():
    assert Majority(n=4).run(CHOICE, "Q", ScriptedEngine(answers("C", "A", "A", "C"))).answer == "C"
    replies = answers(None, None)
    result = Majority(n=2).run(CHOICE, "Q", ScriptedEngine(replies))
    assert (result.answer, result.response, result.details["chosen"]) == (None, replies[0], None)


def test_majority_groups_equivalent_math_answers():
    replies = ["so \\boxed{2}", "so \\boxed{\\frac{1}{2}}", "so \\boxed{0.5}", "so \\boxed{2}"]
    result = Majority(n=4).run(MATH, "Q", ScriptedEngine(replies))
    # 1/2 and 0.5 vote together (2 votes) and tie with 2 (2 votes): the first seen wins
    assert result.answer == "2"
    replies.append("so \\boxed{.5}")
    result = Majority(n=5).run(MATH, "Q", ScriptedEngine(replies))
    assert (result.answer, result.response, result.details["votes"]) == (
        "\\frac{1}{2}",
        replies[1],
        3,
    )


def test_majority_with_custom_extract_and_equal():
    replies = ["x=7", "x = 7", "x=8"]
    result = Majority(
        n=3, extract=lambda r: r.split("=")[-1], equal=lambda a, b: a.strip() == b.strip()
    ).run(MATH, "Q", ScriptedEngine(replies))
    assert (result.answer, result.details["votes"]) == ("7", 2)


def test_weighted_vote_can_overturn_the_majority(table_scorer):
    replies = answers("A", "B", "B", "B")
    scores = dict(zip(replies, [0.9, 0.3, 0.3, 0.2], strict=True))
    assert Majority(n=4).run(CHOICE, "Q", ScriptedEngine(replies)).answer == "B"
    result = WeightedVote(table_scorer(scores), n=4).run(CHOICE, "Q", ScriptedEngine(replies))
    # A: 0.9 against B: 0.3 + 0.3 + 0.2 = 0.8
    assert (result.answer, result.response) == ("A", replies[0])
    assert result.details["votes"] == 1
    assert result.details["weight"] == pytest.approx(0.9)
    assert [c.score for c in result.candidates] == [0.9, 0.3, 0.3, 0.2]
    assert result.details["oracle"] is False


def test_weighted_vote_negative_or_nan_scores_weigh_nothing(table_scorer):
    replies = answers("A", "B", "B")
    scores = dict(zip(replies, [-5.0, 0.1, math.nan], strict=True))
    result = WeightedVote(table_scorer(scores), n=3).run(CHOICE, "Q", ScriptedEngine(replies))
    assert (result.answer, result.details["weight"]) == ("B", pytest.approx(0.1))


def test_weighted_vote_by_token_confidence(top_engine):
    # confidences: 'sure' 0.9, 'maybe' 0.4, any other word 0.5
    replies = ["sure sure Answer: A", "maybe maybe Answer: B", "maybe Answer: B"]
    # A: (0.9+0.9+0.5+0.5)/4 = 0.7; B: (0.4+0.4+0.5+0.5)/4 + (0.4+0.5+0.5)/3 = 0.45 + 0.4667
    engine = top_engine(replies)
    result = WeightedVote(TokenConfidence(), n=3).run(CHOICE, "Q", engine)
    assert [c.score for c in result.candidates] == pytest.approx([0.7, 0.45, 1.4 / 3])
    assert result.answer == "B"
    assert result.details["weight"] == pytest.approx(0.45 + 1.4 / 3)
    (req,) = engine.calls
    assert (req.logprobs, req.top_logprobs) == (True, 5)


def test_best_of_n_picks_the_top_scored_and_ties_go_first(table_scorer):
    replies = answers("A", "B", "C", "B")
    scores = dict(zip(replies, [0.2, 0.7, 0.7, math.nan], strict=True))
    result = BestOfN(table_scorer(scores), n=4).run(CHOICE, "Q", ScriptedEngine(replies))
    assert (result.response, result.answer) == (replies[1], "B")
    assert result.details["chosen"] == 1 and result.details["best_score"] == 0.7
    assert result.tokens == 16


def test_best_of_n_by_token_confidence(top_engine):
    replies = ["maybe Answer: A", "sure sure Answer: C", "other Answer: B"]
    result = BestOfN(TokenConfidence(), n=3).run(CHOICE, "Q", top_engine(replies))
    assert result.answer == "C"
    assert result.candidates[1].score == pytest.approx(0.7)


def test_token_confidence_needs_top_logprobs():
    with pytest.raises(EngineError, match="top 5 alternatives"):
        BestOfN(TokenConfidence(), n=2).run(CHOICE, "Q", ScriptedEngine(["Answer: A"]))


def test_best_of_n_by_mean_logprob():
    table = {"good": -0.1, "bad": -3.0}

    def lp(word):
        return table.get(word, -1.0)

    replies = ["bad bad Answer: A", "good good Answer: B"]
    engine = ScriptedEngine(replies, logprob=lp)
    result = BestOfN(LogProbScorer(engine), n=2).run(CHOICE, "Q", engine)
    assert result.answer == "B"
    # (-0.1 - 0.1 - 1 - 1) / 4
    assert result.candidates[1].score == pytest.approx(-0.55)
    prob = BestOfN(LogProbScorer(engine, exp=True), n=2).run(CHOICE, "Q", ScriptedEngine(replies))
    assert prob.candidates[0].score == pytest.approx(math.exp(-2.0))


def test_oracle_best_of_n_on_countdown_is_flagged():
    replies = ["Answer: 2+5+3", "Answer: 2*5", "Answer: 5*3"]
    result = BestOfN(VerifierScorer(), n=3).run(COUNTDOWN, "Q", ScriptedEngine(replies))
    # 2+5+3 = 10 as well, and ties go to the earlier sample
    assert [c.score for c in result.candidates] == [1.0, 1.0, 0.0]
    assert (result.answer, result.response, result.details["chosen"]) == ("2+5+3", replies[0], 0)
    assert result.details["oracle"] is True
    replies = ["Answer: 5*3", "Answer: 2*5"]
    result = BestOfN(VerifierScorer(), n=2).run(COUNTDOWN, "Q", ScriptedEngine(replies))
    assert (result.answer, result.details["chosen"]) == ("2*5", 1)


def test_factories_and_bad_settings():
    assert make_strategy("majority", n=3) == Majority(n=3)
    with pytest.raises(ConfigError, match="unknown strategy 'vote'"):
        make_strategy("vote")
    with pytest.raises(ConfigError, match="strategy 'greedy'"):
        make_strategy("greedy", n=3)
    assert make_scorer("confidence") == TokenConfidence()
    with pytest.raises(ConfigError, match="needs an engine"):
        make_scorer("logprob")
    with pytest.raises(ConfigError, match="unknown scorer"):
        make_scorer("prm")
    with pytest.raises(ConfigError, match="n must be >= 1"):
        Majority(n=0).run(CHOICE, "Q", ScriptedEngine(["x"]))


def test_chat_prompt_given_is_sent_as_messages():
    msgs = (Message("user", "hi"),)
    engine = ScriptedEngine(["Answer: A"])
    Majority(n=1).run(CHOICE, msgs, engine)
    assert engine.calls[0].messages == msgs


def test_every_strategy_satisfies_the_protocol():
    from reasonloop.search import STRATEGIES, Strategy, TokenConfidence

    for name, cls in STRATEGIES.items():
        needs_scorer = name in ("weighted-vote", "best-of-n", "beam")
        s = cls(TokenConfidence()) if needs_scorer else cls()
        assert isinstance(s, Strategy), name
