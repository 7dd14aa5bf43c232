"""The reward-model contract: inputs, GenRM's P(Yes) on a scripted engine, loading errors."""

import math

import pytest

from reasonloop.engines.scripted import ScriptedEngine
from reasonloop.errors import ConfigError
from reasonloop.records import Problem
from reasonloop.search import make_scorer
from reasonloop.train.rmcontract import (
    GenRM,
    orm_text,
    question_for,
    verification_prompt,
)

MATH = Problem("m1", "math", "What is 6*7?", "42")
CHOICE = Problem("q1", "science", "Which?", "B", choices=("one", "two"))


def test_texts_the_models_read():
    assert orm_text("Q?", "R.") == "Q?\n\nR."
    assert verification_prompt("Q?", "R.") == (
        "Q?\n\nProposed response:\nR.\n\nIs the answer correct? Answer Yes or No."
    )
    assert question_for(MATH) == "What is 6*7?"
    assert "A) one" in question_for(CHOICE)  # choices are shown as the policy saw them


def test_genrm_is_p_yes_normalised_over_yes_and_no():
    table = {"Yes": -0.5, "No": -1.5}
    engine = ScriptedEngine(["unused"], logprob=lambda w: table[w])
    genrm = GenRM(engine=engine)
    p = genrm.score(MATH, None, "so \\boxed{42}")
    assert p == pytest.approx(1 / (1 + math.exp(-1.0)))
    assert genrm.oracle is False
    # underflow on both words: no opinion
    assert GenRM(engine=ScriptedEngine(["x"], logprob=lambda w: -math.inf)).score(
        MATH, None, "r"
    ) == pytest.approx(0.5)


def test_reward_model_names_need_an_existing_directory_of_the_right_kind(tmp_path):
    with pytest.raises(ConfigError, match="needs the trained model's directory: orm:PATH"):
        make_scorer("orm:")
    with pytest.raises(ConfigError, match="no such model directory"):
        make_scorer(f"prm:{tmp_path / 'missing'}")
    (tmp_path / "reasonloop_train.json").write_text('{"kind": "genrm"}')
    with pytest.raises(ConfigError, match="holds a 'genrm' model, not 'orm'; use genrm:"):
        make_scorer(f"orm:{tmp_path}")
    with pytest.raises(ConfigError, match="aggregate must be one of"):
        make_scorer(f"prm:{tmp_path}", aggregate="max")
    with pytest.raises(ConfigError, match="unknown scorer 'rm:x'.*orm:PATH"):
        make_scorer("rm:x")
