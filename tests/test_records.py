import dataclasses

import pytest

from reasonloop.errors import DataError
from reasonloop.records import (
    EvalResult,
    Generator,
    PreferencePair,
    Problem,
    StepLabel,
    Trajectory,
    Verdict,
    from_dict,
    from_json,
    to_dict,
    to_json,
)

RECORDS = [
    Problem("p1", "science", "Which?", "B", choices=("x", "y"), level="3", subject="Physics"),
    Problem("h/0", "code", "def f():", "  return 1", tests="def check(c): pass", entry_point="f"),
    Trajectory(
        "p1",
        "<|begin_of_thought|>t<|end_of_thought|>",
        thought="t",
        verdict=Verdict(True, "B", "correct"),
        generator=Generator("llamacpp:m.gguf", "m", round=2, temperature=0.7, seed=3),
        critic_scores={"planning": 0.5},
        tokens=12,
        mean_logprob=-0.25,
    ),
    PreferencePair("p1", "q", "good", "bad", chosen_perplexity=3.5),
    StepLabel("p1", "t1", 2, ("a", "b"), n=4, n_correct=1),
    EvalResult("math500", "m", "greedy", 10, {"pass@1": 0.3}, {"level=1": {"pass@1": 0.5}}),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_json_round_trip(record):
    assert from_json(type(record), to_json(record)) == record
    assert dataclasses.is_dataclass(record)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.__setattr__(dataclasses.fields(record)[0].name, "changed")


def test_step_label_soft_and_hard():
    assert StepLabel("p", "t", 0, (), 4, 1).soft == 0.25
    assert StepLabel("p", "t", 0, (), 4, 0).hard is False


@pytest.mark.parametrize(
    "data,message",
    [
        (
            {"domain": "math", "problem": "x", "answer": "1"},
            "f.jsonl:7: field 'id': missing required field",
        ),
        (
            {"id": "a", "domain": "bio", "problem": "x", "answer": "1"},
            "f.jsonl:7: field 'domain': 'bio' is not one of",
        ),
        (
            {"id": "a", "domain": "math", "problem": "x", "answer": 1},
            "f.jsonl:7: field 'answer': expected a string",
        ),
        (
            {"id": "a", "domain": "math", "problem": "x", "answer": "1", "choices": "AB"},
            "field 'choices': expected a list",
        ),
        ([1, 2], "f.jsonl:7: expected a JSON object for Problem"),
    ],
)
def test_bad_problem_names_where_and_field(data, message):
    with pytest.raises(DataError) as err:
        from_dict(Problem, data, where="f.jsonl:7")
    assert message in str(err.value)


def test_problem_ignores_extra_columns_but_trajectory_rejects_unknown_keys():
    p = from_dict(Problem, {"id": "a", "domain": "math", "problem": "x", "answer": "1", "extra": 5})
    assert p.id == "a"
    with pytest.raises(DataError, match="unknown key"):
        from_dict(Trajectory, {"problem_id": "a", "text": "t", "bogus": 1})


def test_invalid_json_line():
    with pytest.raises(DataError, match=r"^x.jsonl:2: invalid JSON"):
        from_json(Problem, "{oops", where="x.jsonl:2")


def test_to_dict_is_plain_json():
    d = to_dict(RECORDS[2])
    assert d["verdict"] == {
        "correct": True,
        "extracted": "B",
        "reason": "correct",
        "boundary": None,
    }
    assert d["generator"]["round"] == 2
