"""explore, distill, eval and annotate-steps on a real local Ray cluster (started by this module
on 127.0.0.1 with 2 worker CPUs, shut down after): each stage run with the Ray executor stores
exactly the rows of its one-process run — the same ids, texts and verdicts, the same explore
records, eval results and step labels — with a deterministic scripted engine in 2 actors. Also
the stage configs' Ray refusals, and the commands' wiring (``ray_executor(config)``)."""

from __future__ import annotations

import dataclasses
import re
import shutil
import sys

import pytest

ray = pytest.importorskip("ray")

from reasonloop.distill import DistillConfig, distill, run_distill  # noqa: E402
from reasonloop.engines.scripted import ScriptedEngine, prompt_text  # noqa: E402
from reasonloop.errors import ConfigError  # noqa: E402
from reasonloop.evaluate.run import EvalConfig, EvalSettings, evaluate  # noqa: E402
from reasonloop.explore import explore  # noqa: E402
from reasonloop.format import render  # noqa: E402
from reasonloop.generate import SamplingSettings, generate  # noqa: E402
from reasonloop.records import Problem  # noqa: E402
from reasonloop.scale.ray import RayExecutor, ray_executor  # noqa: E402
from reasonloop.search.annotate import AnnotateSettings, annotate_steps, labeler_key  # noqa: E402
from reasonloop.store.db import open_store  # noqa: E402

pytestmark = pytest.mark.slow

# the engine factory below is shipped to the workers by value (pytest imports this module by path)
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

PAIRS = [(2, 4), (4, 4), (1, 6), (5, 9), (7, 7), (6, 7), (6, 2)]  # 6 + 7: never solved
PROBLEMS = [
    Problem(f"q{i}", "math", f"What is {a} + {b}?", str(a + b)) for i, (a, b) in enumerate(PAIRS)
]
COMPLETE = "Below is a problem and a long line of thinking"


def gold(text: str) -> int:
    a, b = re.search(r"What is (\d+) \+ (\d+)\?", text).groups()  # type: ignore[union-attr]
    return int(a) + int(b)


def finish(answer: int) -> str:
    return (
        f"\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\\boxed{{{answer}}}\n<|end_of_solution|>"
    )


def reply(req, i):
    """Deterministic in (prompt, seed + i); right for some problems and seeds only; in the
    teacher styles distill converts (unified, R1, QwQ thinking only) by seed."""
    text = prompt_text(req)
    seed = (req.seed or 0) + i
    if req.prompt is not None:  # annotate-steps: a completion of a step prefix
        g = gold(text)
        return finish(g if len(req.prompt) * (seed + 1) % 5 else g + 1)
    if text.startswith(COMPLETE):  # distill's completer, given a QwQ thought
        return f"The sum is \\boxed{{{re.findall(r'so it is (-?[0-9]+)', text)[-1]}}}."
    g = gold(text)
    answer = g if (g + seed) % 3 == 0 and g != 13 else g - 1
    thought = f"Step 1: add the two numbers (seed {seed}).\n\nStep 2: so it is {answer}"
    match seed % 4:
        case 0 | 1:
            return render(thought, f"The sum is \\boxed{{{answer}}}.")
        case 2:
            return f"<think>\n{thought}\n</think>\nThe sum is \\boxed{{{answer}}}."
        case _:
            return thought  # QwQ: thinking only, the completer writes the solution


def scripted():
    return ScriptedEngine(reply)


@pytest.fixture(scope="module")
def executor(cluster):
    """Two engine actors on the cluster, shared by the module's tests (the actors keep no state
    between runs: each call is a pure function of its work unit)."""
    ex = RayExecutor("local", engine=scripted, actors=2)
    try:
        assert len(set(ex.pids())) == 2
        yield ex
    finally:
        ex.close()


def rows(store, stage=None):
    return sorted(
        (t.id, t.problem_id, t.text, t.verdict.correct, t.verdict.reason, t.tokens)
        for t in store.trajectories(stage=stage)
    )


def test_explore_on_ray_stores_the_rollouts_and_records_of_one_process(executor, tmp_path):
    s = SamplingSettings(temperature=1.0, seed=3)
    opts = {"max_rollouts": 6, "batch": 2, "batch_problems": 2}
    with open_store(tmp_path / "one.db") as st:
        one = explore(scripted(), PROBLEMS, st, s, **opts)
        want, want_done = rows(st), st.done("explore")
    with open_store(tmp_path / "ray.db") as st:
        # an earlier run stopped after one batch of the first two problems: resumed on Ray
        explore(scripted(), PROBLEMS[:2], st, s, max_rollouts=2, batch=2)
        on_ray = explore(None, PROBLEMS, st, s, executor=executor, **opts)
        got, got_done = rows(st), st.done("explore")
    assert {r.bucket for r in one.results} == {"solved_at_once", "solved_with_search", "unsolved"}
    assert got == want and len(got) == sum(r.attempts for r in one.results)
    assert got_done == want_done and on_ray.results == one.results
    assert on_ray.new_rollouts == one.new_rollouts - 4


def test_distill_on_ray_converts_and_completes_like_one_process(executor, tmp_path):
    s = SamplingSettings(n=4, temperature=0.6, seed=1)
    with open_store(tmp_path / "one.db") as st:
        one = distill(scripted(), PROBLEMS, st, s, batch_problems=3)
        want = rows(st)
    with open_store(tmp_path / "ray.db") as st:
        on_ray = distill(None, PROBLEMS, st, s, batch_problems=3, executor=executor)
        got = rows(st)
    assert got == want and len(got) == 28
    assert (on_ray.samples, on_ray.correct) == (one.samples, one.correct) and 0 < one.correct < 28
    texts = [r[2] for r in got]
    assert not any("<think>" in t for t in texts)  # R1 converted
    assert sum("The sum is \\boxed" in t and "so it is" in t for t in texts) >= 7  # QwQ completed


@pytest.mark.parametrize(
    "settings",
    [
        EvalSettings(),  # greedy: the seeds' protocol
        EvalSettings(strategy="majority", k=4),
        EvalSettings(strategy="best-of-n", k=4, scorer="logprob"),  # scored in the actors
    ],
    ids=["greedy", "majority", "best-of-n-logprob"],
)
def test_eval_on_ray_gives_the_results_and_rows_of_one_process(executor, tmp_path, settings):
    one = evaluate(scripted(), "sums", PROBLEMS, tmp_path / "one", settings, batch_problems=3)
    on_ray = evaluate(
        None, "sums", PROBLEMS, tmp_path / "ray", settings, batch_problems=3, executor=executor
    )
    assert on_ray == one
    assert 0 < one.metrics["acc"] < 1 or settings.strategy == "majority"  # it votes g - 1
    stored = {}
    for name in ("one", "ray"):
        with open_store(tmp_path / name / "samples.db") as st:
            stored[name] = sorted(
                (x.trajectory.id, x.trajectory.text, x.trajectory.verdict.correct, str(x.meta))
                for x in st.stored(stage="eval")
            )
    assert stored["ray"] == stored["one"] and len(stored["one"]) == len(PROBLEMS)
    for name in ("metrics.json", "spend.json"):
        assert (tmp_path / "ray" / name).read_text() == (tmp_path / "one" / name).read_text()


def test_annotate_steps_on_ray_gives_the_labels_of_one_process(executor, tmp_path):
    with open_store(tmp_path / "one.db") as st:
        generate(scripted(), PROBLEMS[:4], st, SamplingSettings(n=2, seed=4))
    shutil.copy(tmp_path / "one.db", tmp_path / "ray.db")
    s = AnnotateSettings(m=3, seed=2)
    labels = {}
    for name, engine, ex in (("one", scripted(), None), ("ray", None, executor)):
        with open_store(tmp_path / f"{name}.db") as st:
            if name == "ray":  # one trajectory labelled before: resumed, not labelled again
                first = next(t for t in st.trajectories() if "<think>" not in t.text)
                annotate_steps(scripted(), st, dataclasses.replace(s, limit=1))
            summary = annotate_steps(engine, st, s, executor=ex)
            key = labeler_key(ex or engine, s)
            labels[name] = sorted(
                (lab.trajectory_id, lab.step_index, lab.steps, lab.n, lab.n_correct)
                for _, labs in st.step_labels(labeler=key)
                for lab in labs
            )
        if name == "ray":
            assert summary.skipped == sum(x[0] == first.id for x in labels["one"]) > 0
    assert labels["ray"] == labels["one"]
    assert len({x[4] for x in labels["one"] if x[3] == 3}) > 1  # labels that differ


def test_the_commands_route_through_one_executor_built_from_the_config(executor, tmp_path):
    # the wiring the CLI uses: ray_executor(config[, engine]) then run_<stage>(..., executor)
    config = DistillConfig(
        problems="countdown-easy",
        teacher="countdown",
        store=str(tmp_path / "ray.db"),
        limit=3,
        n=2,
        ray="local",
    )
    run_distill(dataclasses.replace(config, store=str(tmp_path / "one.db"), ray=None))
    executor.close()  # its actors hold the cluster's 2 CPUs (a later use starts them again)
    with ray_executor(config, config.teacher) as ex:
        assert isinstance(ex, RayExecutor) and (ex.n_actors, ex.spec) == (2, "countdown")
        summary = run_distill(config, executor=ex)
    with open_store(tmp_path / "ray.db") as a, open_store(tmp_path / "one.db") as b:
        assert rows(a) == rows(b) and len(rows(a)) == 6
    assert summary.new_samples == 6


def test_what_cannot_run_on_ray_is_refused_naming_the_option():
    with pytest.raises(ConfigError) as err:
        EvalConfig(benchmark="b", out="o", strategy="best-of-n", scorer="orm:runs/orm", ray="local")
    assert err.value.field == "scorer"
    assert str(err.value) == (
        "scorer 'orm:runs/orm' is a reward model, loaded in this process and not in the Ray "
        "actors: run this eval without --ray"
    )
    EvalConfig(benchmark="b", out="o", strategy="best-of-n", scorer="orm:runs/orm")  # without: ok
    EvalConfig(benchmark="b", out="o", strategy="best-of-n", scorer="logprob", ray="local")
    with pytest.raises(ConfigError) as err:
        DistillConfig(problems="p", store="s", teacher="default", completer="hf:m", ray="local")
    assert str(err.value) == (
        "completer 'hf:m' with --ray: the Ray actors hold only the teacher and complete QwQ "
        "solutions with it; leave --completer unset, or run without --ray"
    )
    DistillConfig(problems="p", store="s", teacher="default", completer="default", ray="local")
