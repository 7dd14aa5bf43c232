"""Verdict table for multiple-choice grading: (gold, response, choices, expected letter or None)."""

import pytest

from reasonloop.format import render
from reasonloop.verify.choice import extract_choice, grade_choice

CH = ("12 N", "24 N", "36 N", "48 N")

# (response, choices, extracted letter)
EXTRACT = [
    (r"The force doubles, so \boxed{C}", CH, "C"),
    (r"\boxed{\text{(C)}}", CH, "C"),
    (r"\boxed{(B)}", CH, "B"),
    (r"$\boxed{\textbf{D}}$", CH, "D"),
    ("Answer: C", CH, "C"),
    ("Answer: (C)", CH, "C"),
    ("**Answer:** B", CH, "B"),
    ("**Answer: B**", CH, "B"),
    ("The answer is (A).", CH, "A"),
    ("The correct answer is D", CH, "D"),
    ("Therefore, the correct option is B.", CH, "B"),
    ("Final answer: D", CH, "D"),
    ("the answer is $\\text{A}$", CH, "A"),
    ("So I pick\nD)", CH, "D"),
    ("So I pick\n(B)", CH, "B"),
    ("So I pick\nC.", CH, "C"),
    ("So I pick\nC", CH, "C"),
    ("Options (A) and (B) are ruled out by the units. So the answer must be (D).", CH, "D"),
    ("A careful look shows the tension is 24 N.\nAnswer: 24 N", CH, "B"),
    (r"\boxed{36 N}", CH, "C"),
    ("Answer: E", CH, None),  # only four choices
    ("A good idea is to compute the net force first.", CH, None),
    ("I am not sure.", CH, None),
    ("The answer is a prime number.", CH, None),
    ("", CH, None),
    ("<|begin_of_thought|>\nmaybe (A)... ", CH, None),  # thought never ended
    (render("(A)? no, (B)? Let me check... it's C.", "Answer: C"), CH, "C"),
    (render("Answer: A looked right at first.", "The answer is (B)."), CH, "B"),
    ("<think>Could be A. Actually B.</think>\n\nAnswer: B", CH, "B"),
    ("<think>Could be A. Actually B.", CH, None),
    ("Answer: C\n\nWait, re-checking... Answer: A", CH, "A"),
    ("(A) is wrong because of sign; (B) too small; (C) too big.", CH, None),
    (r"\boxed{B}", None, "B"),
    # \{ is a literal brace: the box closes at its own "}", so the boxed answer wins over the
    # stray line after it (a scanner that counted \{ never closed the box and answered C)
    (r"\boxed{\text{Answer: B (the set } \{B, C)} \quad Answer: C", CH, "B"),
    ("Answer: J", None, "J"),
]


@pytest.mark.parametrize("response,choices,expected", EXTRACT)
def test_extract_choice(response, choices, expected):
    assert extract_choice(response, choices) == expected


# (gold, response, choices, correct, reason)
GRADE = [
    ("C", r"\boxed{C}", CH, True, "correct"),
    ("C", r"\boxed{B}", CH, False, "wrong"),
    ("B", "Answer: 24 N", CH, True, "correct"),
    ("24 N", "Answer: B", CH, True, "correct"),  # gold given as text
    ("(B)", "the answer is (B)", CH, True, "correct"),
    ("B", "no idea", CH, False, "no_answer"),
    ("B", "<|begin_of_thought|>\nhmm B", CH, False, "thought_unfinished"),
    ("Z", "Answer: A", CH, False, "bad_gold"),
    ("A", None, CH, False, "no_answer"),
]


@pytest.mark.parametrize("gold,response,choices,correct,reason", GRADE)
def test_grade_choice(gold, response, choices, correct, reason):
    v = grade_choice(gold, response, choices)
    assert (v.correct, v.reason) == (correct, reason)
