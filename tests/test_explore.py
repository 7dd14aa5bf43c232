import pytest

from reasonloop.engines.countdown import solve
from reasonloop.engines.scripted import ScriptedEngine, prompt_text
from reasonloop.explore import classify, explore
from reasonloop.format import render
from reasonloop.generate import SamplingSettings
from reasonloop.problems.countdown import make_problems, parse_problem
from reasonloop.store.db import open_store

PROBLEMS = [
    p
    for p in make_problems(30, n_numbers=3, max_number=10, seed=1)
    if solve(parse_problem(p.problem)).expression
][:3]
# problem index -> the attempt numbers (1-based) whose rollout is correct
CORRECT_AT = {0: {1}, 1: {6, 7}, 2: set()}


def engine():
    by_text = {p.problem: (i, solve(parse_problem(p.problem)).text) for i, p in enumerate(PROBLEMS)}

    def reply(req, i):
        text = prompt_text(req)
        idx, good = next(v for k, v in by_text.items() if k in text)
        attempt = req.seed + i + 1
        return good if attempt in CORRECT_AT[idx] else render("hmm", "Answer: \\boxed{1+1}")

    return ScriptedEngine(reply)


@pytest.mark.parametrize(
    "flags,expected",
    [
        ([True], (1, 1, "solved_at_once")),
        ([False, False, True], (3, 3, "solved_at_once")),  # within the first batch of 4
        ([False] * 4 + [True], (5, 5, "solved_with_search")),
        ([False] * 8, (8, None, "unsolved")),
        ([False] * 3, None),  # unfinished
    ],
)
def test_classify(flags, expected):
    rec = classify(flags, batch=4, max_rollouts=8)
    assert (rec and (rec.attempts, rec.first_correct, rec.bucket)) == expected


def test_explore_stops_at_first_correct_batch_and_keeps_every_rollout(tmp_path):
    with open_store(tmp_path / "pool.db") as st:
        s = explore(
            engine(), PROBLEMS, st, SamplingSettings(temperature=1.0), max_rollouts=12, batch=4
        )
        got = [(r.attempts, r.correct, r.first_correct, r.bucket) for r in s.results]
        assert got == [
            (4, 1, 1, "solved_at_once"),
            (8, 2, 6, "solved_with_search"),
            (12, 0, None, "unsolved"),
        ]
        assert st.count(stage="explore") == 24 == s.new_rollouts
        assert st.count(stage="explore", correct=False) == 21
        assert st.done("explore")[PROBLEMS[1].id]["pass_rate"] == 0.25
        again = explore(
            engine(), PROBLEMS, st, SamplingSettings(temperature=1.0), max_rollouts=12, batch=4
        )
        assert again.new_rollouts == 0 and [r.bucket for r in again.results] == [r[3] for r in got]


def test_explore_resumes_after_a_crash(tmp_path):
    calls = {"n": 0}
    base = engine()

    def flaky(req, i):
        calls["n"] += 1
        if calls["n"] > 9:
            raise RuntimeError("killed")
        return base._reply(req, i)

    with open_store(tmp_path / "pool.db") as st:
        with pytest.raises(RuntimeError):
            explore(
                ScriptedEngine(flaky),
                PROBLEMS,
                st,
                SamplingSettings(temperature=1.0),
                max_rollouts=12,
                batch=4,
                batch_problems=1,
            )
        partial = st.count(stage="explore")
        assert 0 < partial < 24
        s = explore(
            engine(), PROBLEMS, st, SamplingSettings(temperature=1.0), max_rollouts=12, batch=4
        )
        assert st.count(stage="explore") == 24 and s.new_rollouts == 24 - partial
        assert [r.bucket for r in s.results] == ["solved_at_once", "solved_with_search", "unsolved"]


class Calls(ScriptedEngine):
    """The scripted engine of :func:`engine`, recording each call's (problem, seed, n) list."""

    def __init__(self):
        super().__init__(engine()._reply)
        self.batches: list[list[tuple[int, int, int]]] = []

    def generate(self, requests):
        index = {p.problem: i for i, p in enumerate(PROBLEMS)}
        self.batches.append(
            [
                (next(i for k, i in index.items() if k in prompt_text(r)), r.seed, r.n)
                for r in requests
            ]
        )
        return super().generate(requests)


def test_one_process_draws_the_queue_chunk_by_chunk(tmp_path):
    # a chunk takes the head of the queue; an unsolved problem goes back to its end: the engine
    # calls of a chunk-by-chunk loop (not waves: [0, 1], [2], [1, 2], [2])
    eng = Calls()
    with open_store(tmp_path / "pool.db") as st:
        explore(eng, PROBLEMS, st, SamplingSettings(), max_rollouts=12, batch=4, batch_problems=2)
    assert eng.batches == [
        [(0, 0, 4), (1, 0, 4)],  # 0 solved at once; 1 back to the queue, after 2
        [(2, 0, 4), (1, 4, 4)],  # 1 solved at attempt 6
        [(2, 4, 4)],
        [(2, 8, 4)],  # 2 unsolved after 12
    ]
