"""The one brace / \\boxed scanner: escaped braces never open or close a group."""

import pytest

from reasonloop.verify.textspan import boxed_contents, brace_end, brace_pairs

# (text, start of a group, index just past its end or -1)
ENDS = [
    ("{a}", 0, 3),
    ("{a{b}c}d", 0, 7),
    (r"{\{1, 2\}}", 0, 10),  # the escaped pair is text
    (r"{a\}", 0, -1),  # \} does not close
    (r"{\\}", 0, 4),  # an escaped backslash, then a real }
    (r"{\\\}}", 0, 6),
    ("{a", 0, -1),
    ("x{a}}", 1, 4),
]


@pytest.mark.parametrize(("text", "start", "end"), ENDS)
def test_brace_end(text, start, end):
    assert brace_end(text, start) == end


def test_brace_pairs_match_brace_end_and_skip_escapes():
    text = r"\frac{1}{\{2\}} } {x"
    pairs = brace_pairs(text)
    assert pairs == {5: 8, 8: 15}
    assert all(brace_end(text, i) == j for i, j in pairs.items())


@pytest.mark.parametrize(
    ("text", "contents"),
    [
        (r"so \boxed{42}.", ["42"]),
        (r"\boxed{\{1, 2\}} and \fbox{3}", [r"\{1, 2\}", "3"]),
        (r"\boxed{\left\{ 1 \right.}", [r"\left\{ 1 \right."]),  # closes at its own }
        (r"\boxed{5", [None]),  # never closes: no answer
        (r"\boxed 7 apples", ["7"]),
        (r"\boxedx{1}", []),  # not the command
    ],
)
def test_boxed_contents(text, contents):
    assert [c for _, _, c in boxed_contents(text)] == contents
