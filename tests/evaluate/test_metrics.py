from fractions import Fraction

import pytest

from reasonloop.evaluate.metrics import ks_for, maj_at_k, pass_at_k, stderr
from reasonloop.verify.answers import majority_vote


@pytest.mark.parametrize(
    "n,c,k,expected",
    [
        (10, 0, 1, Fraction(0)),
        (10, 10, 5, Fraction(1)),
        (10, 3, 1, Fraction(3, 10)),
        # 1 - C(7,2)/C(10,2) = 1 - 21/45
        (10, 3, 2, Fraction(24, 45)),
        # 1 - C(5,3)/C(8,3) = 1 - 10/56
        (8, 3, 3, Fraction(46, 56)),
        (4, 1, 4, Fraction(1)),
        (5, 2, 4, Fraction(1)),  # n - c < k: every 4-subset holds a correct one
        (20, 1, 10, Fraction(1, 2)),
    ],
)
def test_pass_at_k_hand_computed(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(float(expected), abs=1e-12)


def test_pass_at_k_rejects_bad_arguments():
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_majority_vote_groups_equivalent_strings():
    same = {frozenset({"1/2", "0.5", r"\frac{1}{2}"})}

    def equal(a, b):
        return a == b or any({a, b} <= g for g in same)

    answers = ["3", "1/2", "0.5", r"\frac{1}{2}", "3", None]
    correct = [False, True, True, True, False, False]
    v = majority_vote(answers, correct, equal=equal)
    assert (v.answer, v.votes, v.total, v.correct) == ("1/2", 3, 6, True)
    # without equivalence, "3" wins 2 to 1
    v = majority_vote(answers, correct)
    assert (v.answer, v.votes, v.correct) == ("3", 2, False)


def test_majority_vote_ties_go_to_the_earliest_answer():
    assert majority_vote(["5", "7", "7", "5"], [True, False, False, True]).answer == "5"
    assert majority_vote(["7", "5", "5", "7"], [False, True, True, False]).answer == "7"


def test_weighted_vote_and_no_answers():
    v = majority_vote(["a", "b", "b"], [True, False, False], weights=[0.9, 0.4, 0.4])
    assert v.answer == "a" and v.correct
    v = majority_vote([None, None], [False, False])
    assert (v.answer, v.votes, v.correct) == (None, 0, False)


def test_maj_at_k_uses_the_first_k():
    answers = ["1", "2", "2", "1", "1"]
    correct = [True, False, False, True, True]
    assert maj_at_k(answers, correct, 1) == 1.0
    assert maj_at_k(answers, correct, 3) == 0.0
    assert maj_at_k(answers, correct, 5) == 1.0


def test_ks_and_stderr():
    assert ks_for(1) == [1]
    assert ks_for(8) == [1, 2, 4, 8]
    assert ks_for(20) == [1, 2, 4, 8, 16, 20]
    assert stderr(0.5, 100) == pytest.approx(0.05)
