"""The explore pool: the explore set less the distilled problems, hardest first, recorded."""

import hashlib
import json
from dataclasses import replace

import pytest

from reasonloop.engines.base import Result, Sample
from reasonloop.errors import DataError
from reasonloop.format import render
from reasonloop.problems import load_problems, resolve_problems
from reasonloop.recipe.config import parse_recipe
from reasonloop.recipe.pool import (
    PROBE_STAGE,
    by_level,
    by_pass_rate,
    choose_pool,
    describe,
    level_of,
    main,
    unseen,
    write_pool,
)
from reasonloop.recipe.report import pool_lines
from reasonloop.recipe.runner import Loop, dry_run
from reasonloop.records import Problem, Trajectory
from reasonloop.store import open_store


def prob(pid, text, level=None, answer="7"):
    return Problem(pid, "math", text, answer, level=level)


def sha(seed, pid):  # the documented tie order, computed here independently
    return hashlib.sha256(f"{seed}\0{pid}".encode()).digest()


# the explore set: a1 was distilled (same id); a5 is the teacher's t1 under another id and spacing
EXPLORE = [
    prob("a1", "What is 2+2?", "5"),
    prob("a2", "What is 3+3?", "Level 5"),
    prob("a3", "What is 4+4?", "3"),
    prob("a4", "What is 5+5?"),
    prob("a5", "What is  1+1?\n", "4"),
    prob("a6", "What is 6+6?", "5"),
    prob("a7", "What is 7+7?", "1"),
]
TEACHER = [prob("a1", "What is 2+2?", "5"), prob("t1", "What is 1+1?", "4")]


def recipe(tmp_path, **explore):
    path = tmp_path / "explore.jsonl"
    write_pool(path, EXPLORE)
    return parse_recipe(
        {
            "teacher": {"problems": str(path), "engine": "countdown"},
            "student": {"model": "tiny"},
            "explore": {"problems": str(path), **explore},
            "eval": {"benchmarks": ["countdown-easy"]},
            "system_prompt": False,
        }
    )


def teacher_store(path):
    st = open_store(path)
    st.add_problems(TEACHER + [prob("a3", "What is 4+4?", "3")])
    st.add_trajectories(
        [Trajectory(p.id, f"trace of {p.id}", id=f"d-{p.id}") for p in TEACHER], stage="distill"
    )
    # a rollout of another stage is not training data: a3 stays in the pool
    st.add_trajectories([Trajectory("a3", "an eval sample", id="g-a3")], stage="generate")
    return st


def test_unseen_removes_the_distilled_problems_by_id_and_by_text():
    kept, by_id, by_text = unseen(EXPLORE, {"a1", "t1"}, {"What is 2+2?", "What is 1+1?"})
    assert [p.id for p in kept] == ["a2", "a3", "a4", "a6", "a7"]
    assert (by_id, by_text) == (1, 1)


def test_level_order_is_highest_first_with_seeded_ties_and_no_level_last():
    assert [level_of(p) for p in EXPLORE] == [5, 5, 3, None, 4, 5, 1]
    fives = sorted(["a1", "a2", "a6"], key=lambda i: sha(0, i))
    assert [p.id for p in by_level(EXPLORE, 0)] == [*fives, "a5", "a3", "a7", "a4"]
    # the tie order depends on the seed, never on which other problems are there
    other = sorted(["a1", "a2", "a6"], key=lambda i: sha(1, i))
    assert [p.id for p in by_level(EXPLORE, 1)][:3] == other
    assert [p.id for p in by_level(EXPLORE[1:], 1)][:2] == [i for i in other if i != "a1"]


def test_pass_rate_order_is_lowest_first_and_unprobed_last():
    ps = [prob(x, x) for x in "abcde"]
    rates = {"a": 0.5, "b": 0.0, "c": 1.0, "e": 0.5}
    ae = sorted("ae", key=lambda i: sha(3, i))
    assert [p.id for p in by_pass_rate(ps, rates, 3)] == ["b", *ae, "c", "d"]


def test_the_pool_by_level_leaves_out_what_the_teacher_saw(tmp_path):
    r = recipe(tmp_path, limit=3)
    with teacher_store(tmp_path / "store.db") as st:
        pool, record = choose_pool(r, st)
    fives = sorted(["a2", "a6"], key=lambda i: sha(0, i))
    assert [p.id for p in pool] == [*fives, "a3"]
    assert record == {
        "problems": str(tmp_path / "explore.jsonl"),
        "candidates": 7,
        "trained_on": 2,
        "removed_by_id": 1,
        "removed_by_text": 1,
        "unseen": 5,
        "order": "level",
        "pool": 3,
        "levels": {"5": 2, "3": 1},
    }
    assert describe(record) == (
        f"3 of 5 unseen {tmp_path}/explore.jsonl problems, highest level first (2 of 7 removed "
        "as distilled: 1 by id, 1 by text)"
    )
    # `none` keeps the set's order; no limit keeps every unseen problem
    with open_store(tmp_path / "store.db") as st:
        pool, record = choose_pool(recipe(tmp_path, order="none"), st)
    assert [p.id for p in pool] == ["a2", "a3", "a4", "a6", "a7"] and record["pool"] == 5


def test_an_empty_pool_says_why(tmp_path):
    r = recipe(tmp_path)
    with open_store(tmp_path / "store.db") as st:
        st.add_problems(EXPLORE)
        st.add_trajectories(
            [Trajectory(p.id, "t", id=f"d-{p.id}") for p in EXPLORE], stage="distill"
        )
        with pytest.raises(DataError, match=r"pool is empty: 7 problems .* 7 of them distilled"):
            choose_pool(r, st)


class ScriptedStudent:
    """Stands in for the imitated model: problem X's samples are right ``RIGHT[X]`` times of k."""

    RIGHT = {"What is 3+3?": 1, "What is 4+4?": 2, "What is 5+5?": 0, "What is 6+6?": 0}

    def __init__(self):
        self.spec, self.model, self.requests = "scripted", "scripted", []

    def generate(self, requests):
        self.requests += requests
        out = []
        for req in requests:
            right = self.RIGHT.get(req.messages[-1].content, 0)
            texts = [
                render(
                    "Adding the two numbers gives the answer.",
                    f"\\boxed{{{7 if i < right else 1}}}",
                )
                for i in range(req.n)
            ]
            out.append(Result(tuple(Sample(t, 9, "stop") for t in texts)))
        return out

    def close(self):
        pass


def test_the_pool_by_pass_rate_probes_the_imitated_model(tmp_path):
    r = recipe(tmp_path, order="pass_rate", probe_rollouts=2, max_rollouts=6, limit=4)
    # every answer is 7: a sample is right when it boxes 7
    eng = ScriptedStudent()
    with teacher_store(tmp_path / "store.db") as st:
        pool, record = choose_pool(r, st, engine=eng)
        probes = list(st.trajectories(stage=PROBE_STAGE))
    # pass rates: a2 1/2, a3 2/2, a4 0/2, a6 0/2, a7 0/2 → the three at 0 first, then a2, a3
    zeros = sorted(["a4", "a6", "a7"], key=lambda i: sha(0, i))
    assert [p.id for p in pool] == [*zeros, "a2"]
    assert record["pass_rates"] == {"0/2": 3, "1/2": 1}
    assert record["probe"] == {
        "model": "imitate",
        "rollouts": 2,
        "problems": 5,
        "stage": PROBE_STAGE,
    }
    # one request of 2 samples per unseen problem, seeded after round 1's seeds 0..5
    assert sorted((q.n, q.seed) for q in eng.requests) == [(2, 6)] * 5
    assert len(probes) == 10 and {t.problem_id for t in probes} == {"a2", "a3", "a4", "a6", "a7"}
    # probe_limit: only that many are probed (in seed order), the rest come after them
    r2 = replace(r, explore=replace(r.explore, probe_limit=2, limit=None))
    with teacher_store(tmp_path / "store2.db") as st:
        pool, record = choose_pool(r2, st, engine=ScriptedStudent())
    probed = sorted(["a2", "a3", "a4", "a6", "a7"], key=lambda i: sha(0, i))[:2]
    assert record["probe"]["problems"] == 2
    assert {p.id for p in pool[:2]} == set(probed)
    assert record["pass_rates"]["not probed"] == 3


def test_the_pool_step_writes_the_file_every_round_explores(tmp_path):
    r = recipe(tmp_path, limit=2)
    run = tmp_path / "run"
    run.mkdir()
    teacher_store(run / "store.db").close()
    loop = Loop(r, run)
    names = [s.name for s in loop.steps()]
    assert names.index("sft-imitate") + 1 == names.index("explore-pool")
    assert names.index("explore-pool") < names.index("eval-imitate-countdown-easy")
    step = next(s for s in loop.steps() if s.name == "explore-pool")
    record = step.run()
    loop.close()
    (run / "steps").mkdir()
    (run / "steps" / "explore-pool.json").write_text(json.dumps({"value": record}))
    written = load_problems(run / "data" / "explore-pool.jsonl")
    fives = sorted(["a2", "a6"], key=lambda i: sha(0, i))
    assert [p.id for p in written] == fives
    assert written[0] == next(p for p in EXPLORE if p.id == fives[0])  # the record round-trips
    assert pool_lines(loop) == [
        "## Explore pool",
        "",
        f"2 of 5 unseen {tmp_path}/explore.jsonl problems, highest level first (2 of 7 removed "
        "as distilled: 1 by id, 1 by text).",
        "",
        "- levels in the pool: 5: 2",
        "",
    ]
    # with no rounds there is nothing to explore and no pool
    none = replace(r, improve=replace(r.improve, rounds=0))
    assert "explore-pool" not in [s.name for s in Loop(none, run).steps()]


def test_pool_dry_run_lines_and_the_command(tmp_path, capsys):
    r = recipe(tmp_path, order="pass_rate", limit=2)
    d = tmp_path / "run"
    lines = dry_run(r, d).splitlines()
    pool_line = (
        f"python -m reasonloop.recipe.pool --recipe {d}/resolved.yaml --store {d}/store.db "
        f"--out {d}/data/explore-pool.jsonl --engine hf:{d}/models/imitate"
    )
    assert pool_line in lines
    explore = next(x for x in lines if x.startswith("reasonloop explore "))
    assert explore.startswith(f"reasonloop explore --problems {d}/data/explore-pool.jsonl ")
    assert " --limit " not in explore  # the pool is already cut to its size
    assert lines.index(pool_line) < lines.index(explore)
    # the command runs the same choice from the resolved recipe (level order: no engine)
    level = recipe(tmp_path, limit=2)
    dry_run(level, tmp_path / "lv")
    teacher_store(tmp_path / "lv" / "store.db").close()
    out = tmp_path / "lv" / "pool.jsonl"
    args = ["--recipe", f"{tmp_path}/lv/resolved.yaml", "--store", f"{tmp_path}/lv/store.db"]
    assert main([*args, "--out", str(out)]) == 0
    fives = sorted(["a2", "a6"], key=lambda i: sha(0, i))
    assert [p.id for p in load_problems(out)] == fives
    assert capsys.readouterr().out.startswith("wrote 2 of 5 unseen ")


def test_a_generated_set_is_drawn_long_enough(tmp_path):
    r = parse_recipe(
        {
            "teacher": {"problems": "countdown-hard", "engine": "countdown", "limit": 4},
            "student": {"model": "tiny"},
            "explore": {"problems": "countdown-hard", "limit": 3},
            "eval": {"benchmarks": ["countdown-easy"]},
        }
    )
    hard = resolve_problems("countdown-hard", limit=7)
    with open_store(tmp_path / "s.db") as st:
        st.add_problems(hard[:4])
        st.add_trajectories([Trajectory(p.id, "t", id=p.id) for p in hard[:4]], stage="distill")
        pool, record = choose_pool(r, st)
    # 3 + 4 drawn, the 4 distilled removed: the 3 left, in seed order (one level)
    assert record["candidates"] == 7 and record["removed_by_id"] == 4
    assert [p.id for p in pool] == sorted((p.id for p in hard[4:]), key=lambda i: sha(0, i))
