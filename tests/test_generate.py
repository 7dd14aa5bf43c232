"""generate() orchestration on a scripted engine and a real SQLite store (the real-engine crash test
with SIGKILL lives in tests/engines)."""

import pytest

from reasonloop.engines.scripted import ScriptedEngine, prompt_text
from reasonloop.format import render
from reasonloop.generate import SamplingSettings, generate
from reasonloop.problems.countdown import make_problems
from reasonloop.store.db import open_store

PROBLEMS = make_problems(5, n_numbers=3, max_number=10, seed=0)


def reply(req, i):
    # deterministic in (prompt, seed): the same request always gets the same text
    target = prompt_text(req).split("Reach ")[1].split()[0]
    return render(
        f"seed {req.seed + i}", f"Answer: \\boxed{{{target}}}"
    )  # wrong: uses the target itself


def rows(store):
    return sorted((t.id, t.problem_id, t.text) for t in store.trajectories())


def test_generate_stores_graded_samples(tmp_path):
    with open_store(tmp_path / "s.db") as st:
        summary = generate(ScriptedEngine(reply), PROBLEMS, st, SamplingSettings(n=3, seed=10))
        assert (summary.problems, summary.samples, summary.new_samples) == (5, 15, 15)
        ts = list(st.trajectories(problem_id=PROBLEMS[0].id))
        assert [t.text.split("seed ")[1].split("\n")[0] for t in ts] == ["10", "11", "12"]
        assert all(t.verdict.reason == "wrong" for t in ts)
        assert ts[0].generator.seed == 10 and ts[0].generator.temperature == 0.7
        again = generate(ScriptedEngine(reply), PROBLEMS, st, SamplingSettings(n=3, seed=10))
        assert (again.samples, again.new_samples, again.new_tokens) == (15, 0, 0)
        more = generate(ScriptedEngine(reply), PROBLEMS, st, SamplingSettings(n=5, seed=10))
        assert (more.samples, more.new_samples) == (25, 10)  # only samples 3 and 4 are drawn


class Crash(Exception):
    pass


def test_crash_then_rerun_gives_the_rows_of_an_unbroken_run(tmp_path):
    with open_store(tmp_path / "whole.db") as st:
        generate(ScriptedEngine(reply), PROBLEMS, st, SamplingSettings(n=2), batch_problems=2)
        whole = rows(st)
    calls = {"n": 0}

    def flaky(req, i):
        calls["n"] += 1
        if calls["n"] == 6:  # dies inside the second batch
            raise Crash
        return reply(req, i)

    with open_store(tmp_path / "broken.db") as st:
        with pytest.raises(Crash):
            generate(ScriptedEngine(flaky), PROBLEMS, st, SamplingSettings(n=2), batch_problems=2)
        assert len(rows(st)) == 4  # the first batch (2 problems x 2 samples) was committed
        generate(ScriptedEngine(reply), PROBLEMS, st, SamplingSettings(n=2), batch_problems=2)
        assert rows(st) == whole
