r"""Final-answer extraction: (response, extracted) tables from real output shapes."""

from __future__ import annotations

import pytest

from reasonloop.format import render
from reasonloop.verify.extract import (
    boxed_contents,
    clean_answer,
    extract_answer,
    extract_boxed,
    last_boxed_only,
)

EXTRACT = [
    # \boxed{} and friends: the last one, braces balanced
    (r"So the answer is $\boxed{\frac{1}{2}}$.", r"\frac{1}{2}"),
    (r"\boxed{\frac{\sqrt{3}}{3}}", r"\frac{\sqrt{3}}{3}"),
    (r"First \boxed{3}, then after checking \boxed{4}.", "4"),
    (r"\boxed{\boxed{8}}", "8"),
    (r"\fbox{7}", "7"),
    (r"\boxed 5.", "5"),
    (r"answer \boxed{\text{Evelyn}}", "Evelyn"),
    (r"$\boxed{\textbf{(C)}}$", "(C)"),
    (r"\boxed{\left( 3, \frac{\pi}{2} \right)}", r"\left( 3, \frac{\pi}{2} \right)"),
    (r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"),
    (r"\boxed{\{1,2\}}", r"\{1,2\}"),
    (r"\boxed{x = 5}.", "x = 5"),
    (r"\boxed{5!}", "5!"),
    (r"\boxed{10,\!080}", r"10,\!080"),
    ("**Final Answer**\n\n\\[\n\\boxed{\\dfrac{1}{6}}\n\\]", r"\dfrac{1}{6}"),
    # boxes that form one list answer are joined; a repeated answer is one answer
    (r"The solutions are $\boxed{1}$ and $\boxed{-2}$.", "1, -2"),
    (r"$\boxed{3}$, $\boxed{5}$, and $\boxed{7}$", "3, 5, 7"),
    ("so \\boxed{5}\n\n**Final Answer**\n\\boxed{5}", "5"),
    (r"the answer is \boxed{1}. Yeah so the reason the answer is \boxed{1} is this.", "1"),
    # a truncated or empty last box is no answer (never an earlier draft)
    (r"So we get \boxed{3} but wait, actually \boxed{4", None),
    (r"empty \boxed{}", None),
    # GSM8K
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", "72"),
    ("#### 1,000", "1,000"),
    ("#### $18", "18"),
    # Minerva and chat shapes
    ("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", r"\frac{3}{4}"),
    ("The final answer is $12$. I hope it is correct.", "12"),
    ("**Final Answer**\n\n42", "42"),
    ("✅ Final Answer: **73**", "73"),
    (
        "Final Answer:\n The last three digits of \\(2003^{2002^{2001}}\\) are:\n \\[Answer: 009\\]",
        "009",
    ),
    ("The final answer is:\n\n$$\n\\frac{1}{2}\n$$", r"\frac{1}{2}"),
    ("So the answer is 3.5.", "3.5"),
    ("Therefore, the answer is $x = 5$.\nDone.", "x = 5"),
    ("The answer is: **73**", "73"),
    (r"The answer is $\left(3, \frac{\pi}{2}\right)$.", r"\left(3, \frac{\pi}{2}\right)"),
    ("**Answer:** 4.", "4"),
    ("Answer: $\\$18.90$", r"\$18.90"),
    ("Thus the answer is 1.5 liters.\n", "1.5 liters"),
    # boxes meant together: labels, "for part (a)", alternatives ("or": every one must be right)
    (r"$$\boxed{(3, 3)} \text{ for part (a) and } \boxed{(1, 1)}$$", "(3, 3), (1, 1)"),
    (r"(a) $\boxed{4}$; (b) $\boxed{9}$", "4, 9"),
    (r"\(y_1 = \boxed{2x}\) and \(y_2 = \boxed{x^2}\)", "2x, x^2"),
    (r"It is $\boxed{6}$ or $\boxed{7}$.", "6, 7"),
    (r"It is $\boxed{6}$ $\boxed{7}$.", "6, 7"),  # side by side: offered together
    ("$$ 3 + 4 = 7 $$\n$$ 7 \\times 2 = 14 $$", r"7 \times 2 = 14"),  # steps, not a list
    (r"So $\boxed{6}$ (or 7).", "6, 7"),  # an alternative outside the box is offered too
    (r"\boxed{6}, or possibly $7$.", "6, 7"),
    (r"\boxed{6} or more", "6"),
    (r"\boxed{1} no no no no no \boxed{2}", "2"),  # prose between: the last box stands alone
    (r"First \boxed{3}. Then the answer is \boxed{4}.", "4"),
    # no marker: the last mathematical expression, or a bold value after it
    ("Solving the system, the pair is $(3,2)$", "(3,2)"),
    ("The limit equals\n$$1$$\nas claimed.", "1"),
    ("Answer $ 9 $", "9"),
    ("It holds exactly for $x=-1$ or $x=3$.", "x=-1, x=3"),
    ("We have $a = 2$, so $b = 3$.", "b = 3"),
    (r"We have \[ x^2 = 4 \] so \( x = 2 \).", "x = 2"),
    ("Adding the two groups, the total is **24**.", "24"),
    ("**Step 2:** add them: $3 + 4 = 7$", "3 + 4 = 7"),
    ("The price is **$18.90** in all.", "18.90"),
    # nothing committed to
    ("She has 5 apples left.", None),
    ("It costs $5 and then $6 more.", None),
    ("The open span $ 5", None),
    ("There is nothing here.", None),
    ("Let me double-check the final answer carefully.", None),
    ("", None),
]


@pytest.mark.parametrize(("response", "expected"), EXTRACT)
def test_extract_answer(response: str, expected: str | None) -> None:
    assert extract_answer(response) == expected


FORMAT = [
    (render("I think \\boxed{3}.", "So \\boxed{5}."), "5"),  # the thought's box is not the answer
    (render("Thinking.", "No box here, sorry."), None),
    ("<|begin_of_thought|>\nIt could be \\boxed{3}, let me check", None),  # thought never ended
    ("<think>\nhmm \\boxed{3}\n</think>\n\nThe final answer is \\boxed{4}.", "4"),
    ("<think>\nhmm \\boxed{3}", None),
    ("<think>\n12*17 = 204, so \\boxed{204}\n</think>\n\n", None),  # QwQ-style: no solution yet
    (
        "<|begin_of_thought|>x<|end_of_thought|>\n<|begin_of_solution|>\n\\boxed{9}",
        "9",
    ),  # unclosed solution
]


@pytest.mark.parametrize(("response", "expected"), FORMAT)
def test_answer_comes_from_the_solution_part(response: str, expected: str | None) -> None:
    assert extract_answer(response) == expected


def test_boxed_helpers() -> None:
    text = r"a \boxed{1} b \fbox{2} c \boxed{\frac{3}{4}} d"
    assert [c for _, _, c in boxed_contents(text)] == ["1", "2", r"\frac{3}{4}"]
    assert extract_boxed(text) == r"\frac{3}{4}"
    assert last_boxed_only(text) == r"\boxed{\frac{3}{4}}"
    assert last_boxed_only("no box") is None
    assert last_boxed_only(r"\boxed{1") is None
    assert boxed_contents(r"\boxed{a\}b}") == [(0, 12, r"a\}b")]  # \} does not close


CLEAN = [
    ("$5$", "5"),
    ("$$5$$", "5"),
    (r"\(x+1\)", "x+1"),
    ("**12**", "12"),
    ("7.", "7"),
    ("5!", "5!"),  # a factorial
    ("3.5", "3.5"),
    (r"\text{Evelyn}", "Evelyn"),
    (r"\textbf{(C)}", "(C)"),
    (r"5 \text{ cm}", r"5 \text{ cm}"),  # units stay; the grader ignores them
    ("  ", None),
    (None, None),
]


@pytest.mark.parametrize(("raw", "expected"), CLEAN)
def test_clean_answer(raw: str | None, expected: str | None) -> None:
    assert clean_answer(raw) == expected


@pytest.mark.parametrize(
    "junk", [None, 5, b"\\boxed{1}", ["\\boxed{1}"], "\\boxed{" * 10_000, "}" * 1000]
)
def test_extraction_never_raises(junk: object) -> None:
    assert extract_answer(junk) is None  # type: ignore[arg-type]


def test_long_response_is_fast() -> None:
    import time

    text = ("Some reasoning with $x^2$ and {braces} and \\frac{1}{2}. " * 20_000) + "\\boxed{42}"
    start = time.perf_counter()
    assert extract_answer(text) == "42"
    assert time.perf_counter() - start < 1.0
