"""Explored rollouts pass D_0's cleaning before they join D_i: in the loop and in the demo."""

import json
import random
from dataclasses import replace

from reasonloop.curate.run import curate
from reasonloop.demo.run import DemoConfig, sft_rows, write_jsonl
from reasonloop.engines.countdown import solve
from reasonloop.format import render
from reasonloop.problems.countdown import parse_problem
from reasonloop.recipe import demo as demo_recipe
from reasonloop.recipe.config import parse_recipe
from reasonloop.recipe.demo import CURATE, DemoRun
from reasonloop.recipe.pool import write_pool
from reasonloop.recipe.report import cleaning_rows
from reasonloop.recipe.runner import Loop
from reasonloop.records import Problem, Trajectory, Verdict
from reasonloop.verify import grade

THOUGHT = (
    "First I list what is known: the sum of two numbers is 10 and their difference is 4. "
    "Let me try adding the equations: 2x = 14, so x = 7 and y = 3. "
    "Wait, let me check: 7 + 3 = 10 and 7 - 3 = 4. Both hold, so the larger number is 7."
)
OTHER = (
    "Call the numbers a and b. Then a + b = 10 and a - b = 4; subtracting gives 2b = 6, so "
    "b = 3, and a = 10 - 3 = 7. Checking once more: 7 - 3 = 4 as required, and 7 + 3 = 10. "
    "The larger one is therefore 7, the smaller 3."
)
THIRD = (
    "Suppose the larger is L and the smaller S. Doubling L gives the sum plus the difference, "
    "14, hence L is 7; S follows as 3. A quick substitution confirms both equations hold true."
)
RIGHT, WRONG = Verdict(True, "7", "correct"), Verdict(False, "6", "wrong")
rng = random.Random(0)
NOISE = " ".join("".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(8)) for _ in range(40))
BEGIN, END = "<|begin_of_thought|>\n", "\n<|end_of_thought|>\n\n<|begin_of_solution|>"
BENCH = (
    "A farmer has 17 sheep and all but 9 run away; how many sheep does the farmer have left now?"
)


def sol(thought, answer="7"):
    return render(thought, f"The larger number is \\boxed{{{answer}}}.")


# (id, problem, text, verdict, finish reason, why it is dropped — None: it joins D_1)
ROLLOUTS = [
    ("good-1", "p1", sol(THOUGHT), RIGHT, "stop", None),
    ("wrong", "p1", sol(THOUGHT, "6"), WRONG, "stop", "wrong_answer"),
    ("good-2", "p2", sol(OTHER), RIGHT, "stop", None),
    ("cut", "p2", sol(OTHER + " And"), RIGHT, "length", "truncated"),
    ("loop", "p3", sol("so the answer is 7 " * 40), RIGHT, "stop", "repetition"),
    ("noise", "p3", sol(THOUGHT + " " + NOISE), RIGHT, "stop", "gibberish"),
    ("mixed", "p4", sol(THOUGHT + " 我们需要计算这两个数字的和与差然后再检查一遍答案是否正确无误"), RIGHT, "stop",
     "mixed_language"),
    ("short", "p4", sol("It is 7."), RIGHT, "stop", "short_thought"),
    ("same", "p5", sol(OTHER), RIGHT, "stop", "exact_duplicate"),
    ("near", "p5", sol(THOUGHT.replace("Both hold", "Both are true")), RIGHT, "stop",
     "near_duplicate"),
    ("leak", "p6", sol(THIRD), RIGHT, "stop", "contaminated"),
]  # fmt: skip
PROBLEMS = [
    Problem(f"p{i}", "math", f"Question {i}: find the larger number.", "7") for i in range(1, 6)
]
PROBLEMS.append(Problem("p6", "math", BENCH, "7"))


def test_explored_rows_that_fail_a_filter_never_reach_d_i(tmp_path):
    bench = tmp_path / "bench.jsonl"
    write_pool(bench, [Problem("b1", "math", BENCH, "8")])
    r = parse_recipe(
        {
            "teacher": {"problems": "countdown-medium", "engine": "countdown"},
            "student": {"model": "tiny"},
            "explore": {"problems": "countdown-hard"},
            "curate": {"decontaminate": [str(bench)]},  # the default filters, as D_0 gets them
            "improve": {"select": {"by": "first", "per_problem": 5}},
            "eval": {"benchmarks": ["countdown-easy"]},
            "system_prompt": False,
        }
    )
    loop = Loop(r, tmp_path / "run")
    loop.store.add_problems(PROBLEMS)
    loop.store.add_trajectories(
        [Trajectory(p, text, verdict=v, finish_reason=f, id=i) for i, p, text, v, f, _ in ROLLOUTS],
        stage="explore-r1",
    )
    d0 = ['{"messages": [], "problem_id": "d0-a"}\n', '{"messages": [], "problem_id": "d0-b"}\n']
    loop.layout.imitate_data.parent.mkdir(parents=True)
    loop.layout.imitate_data.write_text("".join(d0))
    value = next(s for s in loop.steps() if s.name == "rs-data-r1").run()
    d1 = loop.layout.rs_data(1).read_text().splitlines(keepends=True)
    joined = [x for x in ROLLOUTS if x[5] is None]
    assert d1 == d0 + [
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": f"Question {p[1:]}: find the larger number."},
                    {"role": "assistant", "content": text},
                ],
                "problem_id": p,
                "trajectory_id": i,
            },
            ensure_ascii=False,
        )
        + "\n"
        for i, p, text, *_ in joined
    ]
    assert value["dropped"] == {why: 1 for *_, why in ROLLOUTS if why is not None}
    assert (value["seen"], value["kept"], value["explored"], value["rows"]) == (11, 2, 2, 4)
    rejects = (tmp_path / "run" / "data" / "explored-r1" / "rejects.jsonl").read_text()
    assert [json.loads(x)["id"] for x in rejects.splitlines()] == [
        i for i, *_, why in ROLLOUTS if why is not None
    ]
    loop.close()
    # the report counts them per reason
    (tmp_path / "run" / "steps").mkdir()
    (tmp_path / "run" / "steps" / "rs-data-r1.json").write_text(json.dumps({"value": value}))
    dropped = ", ".join(f"{k} 1" for k in value["dropped"])
    assert cleaning_rows(loop) == [["round 1 explored", "11", "2", dropped]]


def test_the_demo_cleans_its_explored_rollouts_with_d0s_config(tmp_path, monkeypatch):
    cfg = DemoConfig(
        out=str(tmp_path), train_problems=3, explore_problems=3, test_problems=1, rs_repeat=2
    )
    run = DemoRun(cfg)
    p1, p2 = run.sets["explore"][:2]

    def trace(p, quality="good", seed=0):
        return solve(parse_problem(p.problem), quality=quality, rng=random.Random(seed)).text

    good = trace(p1)
    assert grade(p1, good).correct and grade(p2, trace(p2)).correct
    solution = trace(p2).split("<|begin_of_solution|>")[1]
    texts = [
        ("a", p1, good, "stop"),  # joins
        ("b", p1, good.removesuffix("<|end_of_solution|>"), "length"),  # cut at the token limit
        ("c", p2, trace(p2), "stop"),  # joins
        ("d", p2, f"{BEGIN}Try.{END}{solution}", "stop"),  # a one-word thought
        ("e", p1, good, "stop"),  # the same text again
    ]
    # every one graded correct (the cut one lost only its closing tag)
    trajs = [Trajectory(p.id, t, verdict=grade(p, good if i == "b" else t), finish_reason=f, id=i)
             for i, p, t, f in texts]  # fmt: skip
    assert all(t.verdict.correct for t in trajs)
    run.store.add_problems(run.sets["explore"])
    run.store.add_trajectories(trajs, stage="explore-s0")
    write_jsonl(run.imitate_data, [{"messages": [{"role": "user", "content": "d0"}]}])
    configs = []

    def recorded(rows, out, config, **kw):
        configs.append(config)
        return curate(rows, out, config, **kw)

    monkeypatch.setattr(demo_recipe, "curate", recorded)
    value = run._rs_data(0).run()
    rows = [json.loads(x) for x in (tmp_path / "data" / "rs-sft-s0.jsonl").read_text().splitlines()]
    assert (
        rows
        == [{"messages": [{"role": "user", "content": "d0"}]}]
        + sft_rows(run.problems, [trajs[0], trajs[2]]) * 2
    )
    assert value == {
        "picked": 2,
        "seen": 5,
        "kept": 2,
        "dropped": {"truncated": 1, "short_thought": 1, "exact_duplicate": 1},
        "by_domain": {"puzzle": 2},
        "by_level": {"5": 2},
    }
    # one cleaning for both sets: D_0's curate step and this one get the same filters and dedup
    run.store.add_trajectories([replace(trajs[0], id="t0")], stage="distill")
    run._curate().run()
    explored, distilled = configs
    assert distilled is CURATE
    assert replace(explored, select=CURATE.select) == CURATE  # only the selection differs
    run.store.close()
