import random
import re

import pytest

from reasonloop.curate.filters import (
    FilterConfig,
    check_correct,
    check_format,
    check_truncated,
    default_filters,
    first_failure,
    foreign_script_fraction,
    gibberish_fraction,
    make_gibberish,
    make_mixed_language,
    make_repetition,
    make_short_thought,
    repeated_ngram_fraction,
)
from reasonloop.errors import ConfigError
from reasonloop.format import render
from reasonloop.records import Trajectory, Verdict

GOOD_THOUGHT = (
    "First I list what is known: the sum of two numbers is 10 and their difference is 4. "
    "Let me try adding the equations: 2x = 14, so x = 7 and y = 3. "
    "Wait, let me check: 7 + 3 = 10 and 7 - 3 = 4. Both hold, so the larger number is 7."
)
GOOD = render(GOOD_THOUGHT, "The larger number is \\boxed{7}.")
OK = Verdict(True, "7", "correct")


def t(text=GOOD, verdict=OK, finish="stop"):
    return Trajectory("p", text, verdict=verdict, finish_reason=finish)


# (filter, trajectory, expected)
TABLE = [
    (check_format, t(), True),
    (check_format, t("<|begin_of_thought|> still thinking"), (False, "thought_unfinished")),
    (check_format, t(render("", "\\boxed{7}")), (False, "missing_thought")),
    (check_format, t("<|begin_of_thought|>x<|end_of_thought|>"), (False, "missing_solution")),
    (check_truncated, t(), True),
    (check_truncated, t(finish="length"), (False, "truncated")),
    (check_truncated, t(GOOD.replace("<|end_of_solution|>", "")), (False, "truncated")),
    (check_correct, t(), True),
    (check_correct, t(verdict=Verdict(False, "6", "wrong")), (False, "wrong_answer")),
    (check_correct, t(verdict=None), (False, "ungraded")),
    (make_short_thought(20), t(), True),
    (make_short_thought(20), t(render("7.", "\\boxed{7}")), (False, "short_thought")),
    (make_repetition(5, 0.3, 8), t(), True),
    (
        make_repetition(5, 0.3, 8),
        t(render("so the answer is 7 " * 40, "\\boxed{7}")),
        (False, "repetition"),
    ),
    (
        make_repetition(5, 0.9, 3),
        t(render("\n".join(["Let me check again."] * 5), "\\boxed{7}")),
        (False, "repetition"),
    ),
    (make_gibberish(0.25), t(), True),
    (make_gibberish(0.25), t(render("$\\frac{a}{b} = \\sqrt{2}$ x^2 + 3x", "\\boxed{7}")), True),
    (
        make_gibberish(0.25),
        t(render("xqzrtk bvcxzl ## @@@@ ¤¤¤¤ ☃☃☃☃ " * 5, "7")),
        (False, "gibberish"),
    ),
    (
        make_gibberish(0.25),
        t(render("xqzrtk bvcxzl mnbvcx " * 10 + "a" * 50, "7")),
        (False, "gibberish"),
    ),
    (
        make_gibberish(0.25),
        t(render("rhythm strength " * 10, "7")),
        True,
    ),  # y is a vowel; real words pass
    (make_mixed_language(0.05), t(), True),
    (make_mixed_language(0.05), t(render("Let α + β = π, so θ = 2π", "\\boxed{7}")), True),
    (
        make_mixed_language(0.05),
        t(render("First, 我们需要计算这个数字的和 then add them.", "\\boxed{7}")),
        (False, "mixed_language"),
    ),
]


@pytest.mark.parametrize("f,traj,expected", TABLE)
def test_filter_table(f, traj, expected):
    assert f(traj) == expected


def test_measures():
    assert repeated_ngram_fraction("a b c d e f", 2) == 0.0
    assert repeated_ngram_fraction("a b a b a b", 2) == pytest.approx(1 - 2 / 5)
    assert gibberish_fraction("") == 0.0
    assert foreign_script_fraction("abc 中文") == pytest.approx(2 / 5)
    assert foreign_script_fraction("Let α = 2, café") == 0.0  # Greek is maths, é is Latin
    assert gibberish_fraction("bcdfgh " + "x" * 41) == 1.0


def test_pipeline_reports_first_reason_in_order():
    filters = default_filters(FilterConfig())
    assert first_failure(t(), filters) is None
    bad = t("<|begin_of_thought|> …", verdict=Verdict(False, None, "thought_unfinished"))
    assert first_failure(bad, filters) == "thought_unfinished"
    assert first_failure(t(verdict=Verdict(False, "6", "wrong")), filters) == "wrong_answer"
    keep_wrong = default_filters(FilterConfig(require_correct=False))
    assert first_failure(t(verdict=Verdict(False, "6", "wrong")), keep_wrong) is None


def test_config_validation_names_the_field():
    with pytest.raises(ConfigError, match="max_ngram_repeat_fraction must be in"):
        FilterConfig(max_ngram_repeat_fraction=0)


def _gibberish_by_regex(text: str) -> float:
    """The ASCII rule as two regexes (how it was first written): the token loop must agree."""
    n = len(text.split())
    no_vowel = re.findall(r"(?<!\S)[b-df-hj-np-tv-xzB-DF-HJ-NP-TV-XZ]{6,40}(?!\S)", text)
    long_token = re.findall(r"(?<!\S)[^\\\s]\S{40,}", text)
    return (len(no_vowel) + len(long_token)) / n if n else 0.0


def test_gibberish_ascii_rule_matches_its_regex_definition():
    rng = random.Random(1)
    pieces = [
        "bcdfgh",
        "xqzkvbrt",
        "rhythm",
        "BCDFGHJ",
        "a",
        "y",
        "\\",
        "7",
        "_",
        " ",
        "\t",
        "\x1c",
    ]
    for _ in range(4000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        assert gibberish_fraction(text) == _gibberish_by_regex(text), repr(text)
    for k in (5, 6, 40, 41, 42):
        for tok in ("b" * k, "\\" + "b" * k, "x1" * k):
            assert gibberish_fraction(f"ok {tok} ok") == _gibberish_by_regex(f"ok {tok} ok"), tok


@pytest.mark.parametrize("n", [1, 2, 5, 9])
def test_repeated_ngram_fraction_counts_distinct_tuples(n):
    rng = random.Random(n)
    for _ in range(300):
        w = [rng.choice("abc") for _ in range(rng.randint(0, 14))]
        grams = [tuple(w[i : i + n]) for i in range(len(w) - n + 1)]
        want = 1.0 - len(set(grams)) / len(grams) if grams else 0.0
        assert repeated_ngram_fraction(" ".join(w), n) == want
