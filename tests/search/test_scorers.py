import math

import pytest

from reasonloop.engines.base import Sample
from reasonloop.errors import ConfigError
from reasonloop.format import render
from reasonloop.records import Problem
from reasonloop.search import RewardModelScorer, Scorer, TokenConfidence, VerifierScorer
from reasonloop.search.scorers import AGGREGATES, aggregate, make_scorer

P = Problem("m1", "math", "2+2?", "4")
L = math.log


class StepTable:
    """A fake PRM: a score per step text; records the steps it was given."""

    def __init__(self, table):
        self.table = table
        self.seen = []

    def __call__(self, problem, prompt, steps):
        self.seen.append(steps)
        return [self.table[s] for s in steps]


@pytest.mark.parametrize(
    "how,expected", [("min", 0.2), ("last", 0.9), ("mean", 0.6), ("prod", 0.7 * 0.2 * 0.9)]
)
def test_prm_aggregation_over_response_steps(how, expected):
    prm = StepTable({"a": 0.7, "b": 0.2, "so \\boxed{4}": 0.9})
    scorer = RewardModelScorer(prm, aggregate=how)
    assert scorer.score(P, "Q", render("a\n\nb", "so \\boxed{4}")) == pytest.approx(expected)
    assert prm.seen == [("a", "b", "so \\boxed{4}")]


def test_orm_and_edge_cases():
    orm = RewardModelScorer(lambda problem, prompt, steps: [0.25], aggregate="last")
    assert orm.score(P, "Q", "one\n\ntwo") == 0.25
    assert orm.score(P, "Q", "   ") == 0.0  # no steps: not called, 0.0
    assert RewardModelScorer(lambda *a: []).score(P, "Q", "x") == 0.0
    assert not orm.oracle and RewardModelScorer(lambda *a: [1.0], oracle=True).oracle
    with pytest.raises(ConfigError, match="aggregate must be one of"):
        RewardModelScorer(lambda *a: [], aggregate="max")  # type: ignore[arg-type]
    assert aggregate([], "min") is None


def test_scorers_satisfy_the_protocol():
    assert isinstance(TokenConfidence(), Scorer)
    assert isinstance(RewardModelScorer(lambda *a: []), Scorer)
    assert isinstance(VerifierScorer(), Scorer)
    assert TokenConfidence().top_logprobs == 5


def test_verifier_scorer_grades_math():
    v = VerifierScorer()
    assert v.oracle
    assert v.score(P, "Q", render("2+2", "\\boxed{4}")) == 1.0
    assert v.score(P, "Q", render("2+2", "\\boxed{5}")) == 0.0
    assert v.score(P, "Q", "<|begin_of_thought|> never ends") == 0.0


def test_prod_is_the_product_of_the_step_scores():
    assert aggregate([0.5, 0.5, 0.8], "prod") == pytest.approx(0.2)
    assert aggregate([0.9], "prod") == pytest.approx(0.9)
    assert aggregate([0.9, 0.0, 1.0], "prod") == 0.0
    assert aggregate([], "prod") is None
    assert "prod" in AGGREGATES


def test_confidence_scorers_by_name_use_their_form():
    lps = (L(0.5), L(0.01))
    tops = ((L(0.5), L(0.2), L(0.1), L(0.1), L(0.05)), (L(0.6), L(0.2), L(0.1), L(0.05), L(0.03)))
    sample = Sample("x y", 2, "stop", logprobs=lps, top_logprobs=tops)
    seed, variant = make_scorer("confidence"), make_scorer("confidence+chosen")
    assert (seed.form, variant.form) == ("top-k", "top-k+chosen")
    assert seed.score(P, "Q", "x y", sample) == pytest.approx((0.5 / 0.95 + 0.01 / 0.98) / 2)
    assert variant.score(P, "Q", "x y", sample) == pytest.approx((0.5 / 0.95 + 0.01 / 0.99) / 2)
    with pytest.raises(ConfigError, match="form must be one of"):
        TokenConfidence(form="softmax")
