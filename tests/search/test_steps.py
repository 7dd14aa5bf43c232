import pytest

from reasonloop.errors import ConfigError
from reasonloop.format import render
from reasonloop.search.steps import StepSpec, mini_steps, response_steps, split_steps


@pytest.mark.parametrize(
    "text,steps",
    [
        ("a\n\nb\n \nc", ("a", "b", "c")),
        ("one line\nstill one\n\n\n\ntwo", ("one line\nstill one", "two")),
        ("", ()),
        ("  \n\n ", ()),
        (None, ()),
        # explicit markers win over blank lines; the preamble is a step
        (
            "Plan first.\nStep 1: add 2\n\nand 3\nStep 2. multiply\n**Step 3:** done",
            ("Plan first.", "Step 1: add 2\n\nand 3", "Step 2. multiply", "**Step 3:** done"),
        ),
        ("step 1) x\nstep 2) y", ("step 1) x", "step 2) y")),
        # "step" inside a sentence is no marker
        ("Each step 1 at a time.\n\nNext", ("Each step 1 at a time.", "Next")),
    ],
)
def test_split_steps(text, steps):
    assert split_steps(text) == steps


def test_response_steps_drop_markers_and_split_thought_from_solution():
    response = render("think a\n\nthink b", "so \\boxed{3}")
    assert response_steps(response) == ("think a", "think b", "so \\boxed{3}")
    # no blank line between the thought's last line and the marker: still two steps
    assert response_steps("<|begin_of_thought|>x\n<|end_of_thought|>\n<|begin_of_solution|>y") == (
        "x",
        "y",
    )


@pytest.mark.parametrize(
    "spec,prefix,text,finish,expected",
    [
        (StepSpec(), "", "a", "stop", ("a\n\n", False)),  # stopped at the blank line
        (StepSpec(), "a\n\n", "", "stop", ("a\n\n", True)),  # nothing more: the model ended
        (StepSpec(), "a\n\n", "b c", "length", ("a\n\nb c", False)),  # step cap: goes on
        (
            StepSpec(),
            "a\n\n",
            "x <|end_of_solution|>",
            "stop",
            ("a\n\nx <|end_of_solution|>", True),
        ),
        (mini_steps(32), "ab", "cd", "length", ("abcd", False)),
        (mini_steps(32), "ab", "c", "stop", ("abc", True)),  # EOS inside the mini-step
    ],
)
def test_step_spec_extend(spec, prefix, text, finish, expected):
    assert spec.extend(prefix, text, finish) == expected


def test_step_spec_requests():
    assert StepSpec().stop == ("\n\n",)
    assert mini_steps(64) == StepSpec("tokens", 64)
    assert mini_steps(64).stop == ()
    with pytest.raises(ConfigError, match="kind"):
        StepSpec("lines")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_tokens"):
        StepSpec("tokens", 0)
