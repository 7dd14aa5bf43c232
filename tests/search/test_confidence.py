import math

import pytest

from reasonloop.search.confidence import mean_confidence, token_confidence, token_confidences

L = math.log


def test_hand_computed_confidence():
    # Marco-o1's form: the chosen token's probability over the sum of the top 5 alternatives'.
    # position 1: the chosen token (p=0.5) is the top-1 entry: 0.5 / (0.5+0.2+0.1+0.1+0.05)
    # position 2: the chosen token (p=0.01) is not among the top 5: it is in no term of the
    #             sum: 0.01 / (0.6+0.2+0.1+0.05+0.03)
    lps = [L(0.5), L(0.01)]
    tops = [
        [L(0.5), L(0.2), L(0.1), L(0.1), L(0.05)],
        [L(0.6), L(0.2), L(0.1), L(0.05), L(0.03)],
    ]
    c1 = 0.5 / 0.95
    c2 = 0.01 / 0.98
    assert token_confidences(lps, tops) == pytest.approx((c1, c2), abs=1e-12)
    assert mean_confidence(lps, tops) == pytest.approx((c1 + c2) / 2, abs=1e-12)
    assert mean_confidence(lps, tops) == pytest.approx(
        0.268260, abs=1e-6
    )  # (0.526316 + 0.010204) / 2


def test_the_named_variant_adds_the_chosen_token_as_a_sixth_term():
    # the same positions with form="top-k+chosen": position 2 becomes 0.01 / (0.98 + 0.01)
    lps = [L(0.5), L(0.01)]
    tops = [
        [L(0.5), L(0.2), L(0.1), L(0.1), L(0.05)],
        [L(0.6), L(0.2), L(0.1), L(0.05), L(0.03)],
    ]
    got = token_confidences(lps, tops, form="top-k+chosen")
    assert got == pytest.approx((0.5 / 0.95, 0.01 / 0.99), abs=1e-12)
    assert mean_confidence(lps, tops, form="top-k+chosen") == pytest.approx(0.268208, abs=1e-6)
    # the forms agree whenever the chosen token is in the top 5
    assert token_confidence(L(0.2), tops[0], form="top-k+chosen") == token_confidence(
        L(0.2), tops[0]
    )
    with pytest.raises(ValueError, match="form must be one of"):
        token_confidence(L(0.5), tops[0], form="top-6")


def test_chosen_matched_within_tolerance_counts_once():
    # the engine's entry for the chosen token differs in the 7th decimal: same token
    lp = L(0.5)
    alts = [lp + 1e-7, L(0.25), L(0.25)]
    assert token_confidence(lp, alts, form="top-k+chosen") == pytest.approx(0.5, abs=1e-9)
    assert token_confidence(lp, alts) == pytest.approx(0.5, abs=1e-6)
    # the engine's rounding never lifts the top-k form above 1
    assert token_confidence(0.0, [-1e-7, -50.0]) == 1.0


def test_only_top_k_alternatives_count():
    # six alternatives given (servers add the sampled token); the smallest is dropped for k=5
    alts = [L(0.3), L(0.2), L(0.1), L(0.1), L(0.1), L(0.1)]
    assert token_confidence(L(0.3), alts) == pytest.approx(0.3 / 0.8)
    assert token_confidence(L(0.3), alts, k=2) == pytest.approx(0.3 / 0.5)


def test_stable_for_very_negative_logprobs():
    assert token_confidence(-1000.0, [-999.0, -1000.0]) == pytest.approx(1 / (math.e + 1))
    assert token_confidence(-math.inf, [0.0]) == 0.0


def test_positions_without_alternatives_are_skipped():
    assert token_confidences([L(0.5), L(0.9)], [[], [L(0.9), L(0.1)]]) == pytest.approx((0.9,))
    assert mean_confidence([L(0.5)], [[]]) is None
    assert mean_confidence([], []) is None


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 positions but top_logprobs has 1"):
        token_confidences([0.0, 0.0], [[0.0]])
