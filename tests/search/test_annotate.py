"""Math-Shepherd step labels on a scripted policy whose completions are known per prefix."""

import pytest

from reasonloop.engines.scripted import ScriptedEngine
from reasonloop.errors import ConfigError
from reasonloop.format import render
from reasonloop.records import Problem, StepLabel, Trajectory, Verdict
from reasonloop.search.annotate import (
    AnnotateSettings,
    annotate_steps,
    labeler_key,
    step_prefixes,
)
from reasonloop.store import open_store

MATH = Problem("m1", "math", "What is 6*7?", "42")
WRONG = render("step A\n\nstep B\n\nstep C", "\\boxed{41}")
RIGHT = render("Step 1: six sevens\nStep 2: is 42", "\\boxed{42}")
CUT = "<|begin_of_thought|>\nstep A\n\nstep B and then"  # ran out of tokens mid-step


def finish(answer):
    return f"<|end_of_thought|>\n\n<|begin_of_solution|>\n\\boxed{{{answer}}}\n<|end_of_solution|>"


# How many of the 4 completions of a prefix reach 42, by the prefix's last words.
CORRECT_OF_4 = {"step A": 3, "step B": 1, "step C": 0, "six sevens": 4, "is 42": 2, "and then": 1}


def policy(req, i):
    prefix = req.prompt.rstrip()
    for tail, n in CORRECT_OF_4.items():
        if prefix.endswith(tail):
            return finish(42 if i < n else 40)
    raise AssertionError(f"unexpected prefix {req.prompt!r}")


def traj(text, correct, tid, finish_reason="stop"):
    v = Verdict(correct, None, "correct" if correct else "wrong")
    return Trajectory("m1", text, verdict=v, finish_reason=finish_reason, id=tid)


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "pool.db") as st:
        st.add_problems([MATH])
        st.add_trajectories([traj(WRONG, False, "t-wrong")], stage="explore")
        st.add_trajectories([traj(RIGHT, True, "t-right")], stage="explore")
        st.add_trajectories([traj(CUT, False, "t-cut", "length")], stage="other")
        yield st


def test_step_prefixes_end_after_each_step_and_its_whitespace():
    steps, prefixes = step_prefixes(WRONG)
    assert steps == ("step A", "step B", "step C", "\\boxed{41}")
    assert (
        prefixes
        == (
            "<|begin_of_thought|>\nstep A\n\n",
            "<|begin_of_thought|>\nstep A\n\nstep B\n\n",
            "<|begin_of_thought|>\nstep A\n\nstep B\n\nstep C\n",  # not the end-of-thought marker
            WRONG[: WRONG.index("\\boxed{41}") + len("\\boxed{41}\n")],
        )
    )
    assert step_prefixes("") == ((), ())


def test_labels_are_the_fraction_of_correct_completions_per_prefix(store):
    engine = Counting(policy)
    s = AnnotateSettings(m=4, max_tokens=50, seed=3)
    seen = []
    summary = annotate_steps(engine, store, s, on_progress=lambda *a: seen.append(a))
    key = labeler_key(engine, s)
    got = {labels[0].trajectory_id: labels for _, labels in store.step_labels(labeler=key)}
    assert [(x.step_index, x.n, x.n_correct) for x in got["t-wrong"]] == [
        (0, 4, 3),
        (1, 4, 1),
        (2, 4, 0),
        (3, 1, 0),  # the last step of a finished response: its own verdict, not sampled
    ]
    assert [x.soft for x in got["t-wrong"]] == [0.75, 0.25, 0.0, 0.0]
    assert [x.hard for x in got["t-wrong"]] == [True, True, False, False]
    assert got["t-wrong"][2] == StepLabel("m1", "t-wrong", 2, ("step A", "step B", "step C"), 4, 0)
    assert [(x.n, x.n_correct) for x in got["t-right"]] == [(4, 4), (4, 2), (1, 1)]
    assert got["t-right"][-1].steps == ("Step 1: six sevens", "Step 2: is 42", "\\boxed{42}")
    # a response cut by the token limit: its last step is sampled too
    assert [(x.n, x.n_correct) for x in got["t-cut"]] == [(4, 3), (4, 1)]
    # one generate call per trajectory, all its prefixes at once, m samples each, the seed given
    assert engine.batches == [3, 2, 2]
    assert {(r.n, r.seed, r.max_tokens, r.temperature) for r in engine.calls} == {(4, 3, 50, 0.7)}
    assert engine.calls[0].prompt.endswith(
        "<|im_start|>assistant\n<|begin_of_thought|>\nstep A\n\n"
    )
    assert "Your role as an assistant" in engine.calls[0].prompt  # the system prompt
    assert (summary.trajectories, summary.labelled, summary.skipped) == (3, 9, 0)
    assert summary.positive == 2 + 3 + 2
    assert summary.new_tokens == sum(
        len(policy(r, i).split()) for r in engine.calls for i in range(4)
    )
    assert seen == [(1, 3, seen[0][2]), (2, 3, seen[1][2]), (3, 3, summary.new_tokens)]


class Counting(ScriptedEngine):
    """A scripted engine that also records how many requests each generate call had."""

    def __init__(self, reply):
        super().__init__(reply)
        self.batches: list[int] = []

    def generate(self, requests):
        self.batches.append(len(requests))
        return super().generate(requests)


def test_stage_limit_and_resume_label_each_step_once(store):
    s = AnnotateSettings(m=4, stage="explore", limit=1, system_prompt=False)
    engine = ScriptedEngine(policy)
    first = annotate_steps(engine, store, s)
    assert (first.trajectories, first.labelled) == (1, 4)
    assert "Your role" not in engine.calls[0].prompt
    # a crash in the middle of the next trajectory loses nothing already stored
    boom = ScriptedEngine(lambda req, i: (_ for _ in ()).throw(RuntimeError("killed")))
    with pytest.raises(RuntimeError):
        annotate_steps(boom, store, AnnotateSettings(m=4, stage="explore", system_prompt=False))
    engine2 = ScriptedEngine(policy)
    again = annotate_steps(
        engine2, store, AnnotateSettings(m=4, stage="explore", system_prompt=False)
    )
    assert (again.trajectories, again.labelled, again.skipped) == (2, 3, 4)
    assert len(engine2.calls) == 2  # only t-right's two sampled prefixes
    key = labeler_key(engine2, s)
    assert store.step_labelers() == {key: 7}
    nothing = annotate_steps(
        ScriptedEngine(policy), store, AnnotateSettings(m=4, stage="explore", system_prompt=False)
    )
    assert (nothing.labelled, nothing.skipped, nothing.new_tokens) == (0, 7, 0)
    # other settings are another labeller: labelled afresh, under another key
    assert labeler_key(engine2, AnnotateSettings(m=2)) != key


def test_solved_only_labels_only_problems_with_a_correct_trajectory_in_the_stage(store):
    other = Problem("m2", "math", "What is 5*5?", "25")
    store.add_problems([other])
    store.add_trajectories(
        [Trajectory("m2", WRONG, verdict=Verdict(False, None, "wrong"), id="t-m2")],
        stage="explore",
    )
    engine = ScriptedEngine(policy)
    s = AnnotateSettings(m=4, stage="explore", solved_only=True)
    summary = annotate_steps(engine, store, s)
    assert summary.trajectories == 2  # t-wrong and t-right of m1; m2 was never solved
    labelled = {labels[0].trajectory_id for _, labels in store.step_labels()}
    assert labelled == {"t-wrong", "t-right"}
    # solved is judged inside the stage: stage "other" holds only m1's wrong, cut-off trajectory
    none = annotate_steps(engine, store, AnnotateSettings(m=4, stage="other", solved_only=True))
    assert (none.trajectories, none.labelled) == (0, 0)
    # without the filter m2's trajectory is labelled as well (every completion misses 25)
    rest = annotate_steps(engine, store, AnnotateSettings(m=4, stage="explore"))
    assert (rest.trajectories, rest.skipped, rest.labelled, rest.positive) == (3, 7, 4, 0)


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="m must be >= 1"):
        AnnotateSettings(m=0)
    with pytest.raises(ConfigError, match="limit must be >= 0"):
        AnnotateSettings(limit=-1)
