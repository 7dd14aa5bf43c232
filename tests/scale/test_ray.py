"""The Ray executor on a real local Ray cluster: started by these tests on 127.0.0.1 with 2 worker
CPUs (2 engine actors), shut down after. Rows equal to the single-process run's, an actor killed
by PID mid-run, ``grade --ray`` verdicts equal to the local ones, and the one-line message when Ray
is not installed."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from reasonloop.engines.scripted import ScriptedEngine, prompt_text  # noqa: E402
from reasonloop.format import render  # noqa: E402
from reasonloop.generate import GenerateConfig, SamplingSettings, generate, run_generate  # noqa: E402
from reasonloop.problems.countdown import make_problems  # noqa: E402
from reasonloop.records import Problem  # noqa: E402
from reasonloop.scale.ray import RayExecutor, grade_on_ray, ray_executor  # noqa: E402
from reasonloop.store.db import open_store  # noqa: E402
from reasonloop.verify.batch import GradeItem, grade_file, grade_many  # noqa: E402
from reasonloop.verify.sandbox import bwrap_problem  # noqa: E402

pytestmark = pytest.mark.slow

# the engine factories below are shipped to the workers by value (this module is not importable
# there: pytest imports it by path)
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

PROBLEMS = make_problems(7, n_numbers=3, max_number=10, seed=3)
SRC = str(Path(__file__).resolve().parents[2] / "src")


def reply(req, i):
    # deterministic in (prompt, seed), and right for some problems only
    target = prompt_text(req).split("Reach ")[1].split()[0]
    seed = req.seed + i
    answer = target if seed % 3 else "0"
    return render(f"seed {seed} for {target}", f"Answer: \\boxed{{{answer}}}")


def scripted():
    return ScriptedEngine(reply)


class Marked(ScriptedEngine):
    """A slow scripted engine that leaves a file ``drawing.PID`` in ``mark`` while it draws, so
    that the test knows which worker is mid-batch."""

    def __init__(self, mark: str):
        super().__init__(reply)
        self.mark = Path(mark)

    def generate(self, requests):
        flag = self.mark / f"drawing.{os.getpid()}"
        flag.touch()
        time.sleep(0.4)
        out = super().generate(requests)
        flag.unlink()
        return out


def rows(store):
    return sorted(
        (t.id, t.problem_id, t.text, t.verdict.correct, t.verdict.reason)
        for t in store.trajectories()
    )


def local_rows(tmp_path, n=3, batch=2):
    with open_store(tmp_path / "one.db") as st:
        generate(scripted(), PROBLEMS, st, SamplingSettings(n=n, seed=5), batch_problems=batch)
        return rows(st)


def test_generate_on_ray_gives_the_rows_of_one_process(cluster, tmp_path):
    want = local_rows(tmp_path)
    ex = RayExecutor("local", engine=scripted, actors=2)
    try:
        with open_store(tmp_path / "ray.db") as st:
            seen = []
            summary = generate(
                None,
                PROBLEMS,
                st,
                SamplingSettings(n=3, seed=5),
                batch_problems=2,
                executor=ex,
                on_progress=lambda done, tokens: seen.append(done),
            )
            got = rows(st)
        assert len(set(ex.pids())) == 2  # two worker processes drew
    finally:
        ex.close()
    assert got == want and len(got) == 21
    assert (summary.samples, summary.new_samples) == (21, 21)
    assert seen[0] == 0 and seen[-1] == 7 and seen == sorted(seen)


def test_generate_on_ray_resumes_a_partial_store_without_doubling(cluster, tmp_path):
    want = local_rows(tmp_path)
    ex = RayExecutor("local", engine=scripted, actors=2)
    try:
        with open_store(tmp_path / "ray.db") as st:
            # an earlier run that stopped after 3 problems (and 1 sample of a 4th)
            generate(scripted(), PROBLEMS[:3], st, SamplingSettings(n=3, seed=5))
            generate(scripted(), PROBLEMS[3:4], st, SamplingSettings(n=1, seed=5))
            summary = generate(
                None, PROBLEMS, st, SamplingSettings(n=3, seed=5), batch_problems=2, executor=ex
            )
            assert rows(st) == want
    finally:
        ex.close()
    assert (summary.samples, summary.new_samples) == (21, 21 - 10)


def test_an_actor_killed_mid_batch_is_restarted_and_every_row_stored_once(cluster, tmp_path):
    want = local_rows(tmp_path, batch=1)
    mark = tmp_path / "mark"
    mark.mkdir()
    ex = RayExecutor("local", engine=lambda: Marked(str(mark)), actors=2)
    ex.start()
    before = ex.pids()
    killed: list[int] = []

    def kill_one_mid_batch():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for f in mark.glob("drawing.*"):
                pid = int(f.suffix[1:])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.02)

    killer = threading.Thread(target=kill_one_mid_batch)
    killer.start()
    try:
        with open_store(tmp_path / "ray.db") as st:
            summary = generate(
                None, PROBLEMS, st, SamplingSettings(n=3, seed=5), batch_problems=1, executor=ex
            )
            got = rows(st)
        killer.join()
        after = ex.pids()
    finally:
        ex.close()
    assert len(killed) == 1 and killed[0] in before
    assert killed[0] not in after and len(set(after)) == 2  # Ray restarted that actor
    assert got == want  # every row, once (ids are unique in the store)
    assert (summary.samples, summary.new_samples) == (21, 21)


GRADE_LINES = [
    {"id": "m1", "domain": "math", "answer": "\\frac{1}{2}", "response": "So \\boxed{0.5}."},
    {"id": "m2", "domain": "math", "answer": "18", "response": "The answer is $18."},
    {"id": "m4", "domain": "math", "answer": "7", "response": "\\boxed{8}"},
    {
        "id": "c1",
        "domain": "science",
        "answer": "B",
        "choices": ["1", "2", "3", "4"],
        "response": "Answer: (B)",
    },
    {"id": "p1", "domain": "puzzle", "answer": "10", "response": "\\boxed{3}"},
    {"id": "m3", "domain": "math", "answer": "3", "response": "<|begin_of_thought|>\nthinking"},
]
GRADE_TABLE = [
    ("m1", True, "correct"),
    ("m2", True, "correct"),
    ("m4", False, "wrong"),
    ("c1", True, "correct"),
    ("p1", False, "wrong"),
    ("m3", False, "thought_unfinished"),
]


def test_grade_on_ray_gives_the_local_verdicts(cluster, tmp_path):
    src = tmp_path / "in.jsonl"
    # 40 copies with unique ids, graded in 5 shards of 50 spread over the 2 actors
    lines = [dict(x, id=f"{x['id']}-{k}") for k in range(40) for x in GRADE_LINES]
    src.write_text("".join(json.dumps(x) + "\n" for x in lines))
    local = grade_file(src, tmp_path / "local.jsonl", workers=1)
    on_ray = grade_file(
        src, tmp_path / "ray.jsonl", grader=lambda items: grade_on_ray(items, "local", shard=50)
    )
    assert (tmp_path / "ray.jsonl").read_text() == (tmp_path / "local.jsonl").read_text()
    assert (on_ray.graded, on_ray.correct) == (local.graded, local.correct) == (240, 120)
    first = [json.loads(x) for x in (tmp_path / "ray.jsonl").read_text().splitlines()][:6]
    assert [(o["id"].split("-")[0], o["correct"], o["reason"]) for o in first] == GRADE_TABLE


def test_run_generate_with_a_ray_executor_from_the_config(cluster, tmp_path):
    config = GenerateConfig(
        problems="countdown-easy",
        store=str(tmp_path / "s.db"),
        engine="countdown",
        limit=4,
        n=2,
        batch=2,
        ray="local",
    )
    run_generate(dataclasses.replace(config, store=str(tmp_path / "one.db"), ray=None))
    with ray_executor(config) as ex:
        assert isinstance(ex, RayExecutor) and ex.n_actors == 2
        summary = run_generate(config, executor=ex)
    with open_store(tmp_path / "s.db") as a, open_store(tmp_path / "one.db") as b:
        assert rows(a) == rows(b) and len(rows(a)) == 8
    assert summary.new_samples == 8


def test_ray_flag_without_ray_installed_says_how_to_install_it(tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None; from reasonloop.cli import main; "
        "sys.argv = ['reasonloop', 'generate', '--problems', 'countdown-easy', '--limit', '1', "
        f"'--engine', 'countdown', '--store', {str(tmp_path / 's.db')!r}, '--ray']; main()"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert r.returncode != 0
    lines = [x for x in (r.stdout + r.stderr).splitlines() if x.strip()]
    assert len(lines) == 1, lines
    assert "pip install 'reasonloop[ray]'" in lines[0]
    assert not (tmp_path / "s.db").exists()


@pytest.mark.skipif(bwrap_problem() is not None, reason=f"no code sandbox: {bwrap_problem()}")
def test_code_is_graded_in_the_sandbox_inside_the_ray_worker(cluster):
    solution = "```python\ndef add(a, b):\n    return a + b\n```"
    items = [
        GradeItem(
            problem=Problem(
                id=f"k{i}",
                domain="code",
                problem="def add(a, b):",
                answer="",
                tests="assert add(1, 2) == 3",
                entry_point="add",
            ),
            response=render("ok", solution if i % 2 else solution.replace("a + b", "a - b")),
        )
        for i in range(4)
    ]
    verdicts = grade_on_ray(items, "local", shard=2)
    assert [(v.correct, v.reason, v.boundary) for v in verdicts] == [
        (False, "error", "bwrap"),  # a failed assert
        (True, "correct", "bwrap"),
        (False, "error", "bwrap"),  # a failed assert
        (True, "correct", "bwrap"),
    ]
    assert verdicts == grade_many(items, workers=1)


def test_the_cli_starts_a_local_cluster_whose_workers_run_this_checkout(tmp_path):
    # no PYTHONPATH: the driver finds this checkout by sys.path alone, and the workers must get
    # the same code from the executor (the venv may hold another copy of reasonloop)
    args = ["generate", "--problems", "countdown-easy", "--limit", "3", "--engine", "countdown"]
    args += ["-n", "2", "--batch", "1"]
    code = (
        f"import sys; sys.path.insert(0, {SRC!r}); from reasonloop.cli import main; "
        "sys.argv = ['reasonloop', *sys.argv[1:]]; main()"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS")}
    for name, extra in (("ray", ["--ray"]), ("one", [])):  # --ray alone: a local cluster
        store = ["--store", str(tmp_path / f"{name}.db")]
        r = subprocess.run(
            [sys.executable, "-c", code, *args, *store, *extra],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr[-3000:]
    with open_store(tmp_path / "ray.db") as a, open_store(tmp_path / "one.db") as b:
        assert rows(a) == rows(b) and len(rows(a)) == 6


class Poisoned(ScriptedEngine):
    """Kills its own process on one problem's prompt (a crashing engine), every time."""

    def __init__(self, poison: str):
        super().__init__(reply)
        self.poison = poison

    def generate(self, requests):
        if any(self.poison in prompt_text(r) for r in requests):
            os._exit(1)
        return super().generate(requests)


def test_a_batch_that_kills_every_worker_fails_the_run_and_keeps_what_was_stored(cluster, tmp_path):
    from reasonloop.errors import EngineError

    want = dict((r[0], r) for r in local_rows(tmp_path, batch=1))
    poison = PROBLEMS[5].problem
    ex = RayExecutor("local", engine=lambda: Poisoned(poison), actors=2)
    try:
        with open_store(tmp_path / "ray.db") as st, pytest.raises(EngineError, match="batch 5"):
            generate(
                None, PROBLEMS, st, SamplingSettings(n=3, seed=5), executor=ex, batch_problems=1
            )
        with open_store(tmp_path / "ray.db") as st:
            got = rows(st)
    finally:
        ex.close()
    # whole problems only (3 rows each), never the poisoned one, each row the one-process row
    assert got and len(got) % 3 == 0 and len(got) < 21
    assert all(want[r[0]] == r for r in got)
    assert PROBLEMS[5].id not in {r[1] for r in got}


def broken():
    raise OSError("no model file at /nowhere.gguf")


def test_an_engine_that_cannot_load_fails_at_start_with_its_reason(cluster, tmp_path):
    from reasonloop.errors import ConfigError, EngineError

    ex = RayExecutor("local", engine=broken, actors=2)
    with pytest.raises(
        EngineError, match="did not start: OSError: no model file at /nowhere.gguf$"
    ):
        ex.start()
    assert ex.actors == []
    config = GenerateConfig(problems="countdown-easy", store=str(tmp_path / "s.db"), ray="local")
    bad = dataclasses.replace(config, engine="llama:x.gguf")
    with pytest.raises(ConfigError, match="unknown engine spec 'llama:x.gguf'"):  # noqa: SIM117
        with ray_executor(bad):
            pass
    assert not (tmp_path / "s.db").exists()
