import pytest

from reasonloop.engines.scripted import ScriptedEngine
from reasonloop.errors import ConfigError
from reasonloop.format import END_THOUGHT
from reasonloop.records import Problem
from reasonloop.search import REFLECTION, Reflection

CHOICE = Problem("q1", "science", "Which?", "B", choices=("one", "two", "three"))
BASE = "P:\n"
FIRST = (
    "<|begin_of_thought|>\nfirst try\n<|end_of_thought|>\n\n"
    "<|begin_of_solution|>\nAnswer: A\n<|end_of_solution|>"
)
SECOND = "second try\n<|end_of_thought|>\n\n<|begin_of_solution|>\nAnswer: B\n<|end_of_solution|>"


def engine():
    def reply(req, i):
        return SECOND if req.prompt.endswith(REFLECTION + "\n") else FIRST

    return ScriptedEngine(reply)


def test_reflection_sentence_is_exact():
    assert REFLECTION == "Wait! Maybe I made some mistakes! I need to rethink from scratch."


def test_reflection_after_the_thought_appends_the_sentence_and_continues():
    eng = engine()
    result = Reflection(max_tokens=100).run(CHOICE, BASE, eng)
    prefix = f"<|begin_of_thought|>\nfirst try\n\n{REFLECTION}\n"
    assert result.response == prefix + SECOND
    assert result.answer == "B"
    first, second = eng.calls
    assert first.stop == (END_THOUGHT,) and first.prompt == BASE
    assert second.prompt == BASE + prefix and second.stop == ()
    assert (first.seed, second.seed) == (0, 1)
    # tokens: the first part up to the marker (3 words) and the continuation (7 words)
    assert result.tokens == 3 + len(SECOND.split()) == 10
    assert second.max_tokens == 100 - 3
    assert result.details == {
        "strategy": "reflect",
        "at": "thought",
        "reflected": True,
        "first_tokens": 3,
    }
    assert result.prompt_tokens == 1 + len((BASE + prefix).split())
    assert [c.answer for c in result.candidates] == [None, "B"]


def test_reflection_after_the_whole_response():
    eng = engine()
    result = Reflection(at="response").run(CHOICE, BASE, eng)
    assert result.response == f"{FIRST}\n\n{REFLECTION}\n{SECOND}"
    assert result.answer == "B"  # from the continuation, not the first solution
    assert [c.answer for c in result.candidates] == ["A", "B"]
    assert eng.calls[0].stop == ()


def test_no_reflection_when_the_first_part_ran_out_of_tokens():
    eng = engine()
    result = Reflection(max_tokens=2).run(CHOICE, BASE, eng)
    assert result.response == "<|begin_of_thought|> first"
    assert result.details["reflected"] is False
    assert result.tokens == 2 and len(eng.calls) == 1


def test_reflection_settings_are_checked():
    with pytest.raises(ConfigError, match="'thought' or 'response'"):
        Reflection(at="solution")  # type: ignore[arg-type]
