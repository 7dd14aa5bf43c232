"""The loop on CPU end to end (tiny student, Countdown teacher), interrupted and resumed."""

import json
import sqlite3
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

from reasonloop.engines.countdown import CountdownTeacher  # noqa: E402
from reasonloop.errors import ConfigError, EngineError  # noqa: E402
from reasonloop.recipe import runner  # noqa: E402
from reasonloop.recipe.runner import Loop, Step, run_recipe  # noqa: E402
from reasonloop.recipe.servers import Serve, answers  # noqa: E402

pytestmark = pytest.mark.slow
RECIPES = Path(__file__).resolve().parents[2] / "recipes"


class Killed(RuntimeError):
    """Stands in for a kill in the middle of a stage."""


def rows(db) -> int:
    with sqlite3.connect(db) as c:
        return c.execute("SELECT COUNT(*) FROM trajectories").fetchone()[0]


def markers(root) -> dict[str, int]:
    return {p.stem: p.stat().st_mtime_ns for p in (root / "steps").glob("*.json")}


def test_cpu_loop_runs_end_to_end_and_resumes_between_and_inside_stages(
    tmp_path, smoke, monkeypatch
):
    from reasonloop.recipe.config import load_recipe

    # 6 eval problems: two batches of requests
    recipe_file = smoke.write(tmp_path / "smoke.yaml", eval={"limit": 6})
    recipe = load_recipe(recipe_file)
    root = tmp_path / "run"

    # first run: killed in the middle of the imitated model's eval (after its first batch)
    opened = runner.open_engine
    imitate_eval_requests: list[int] = []
    kill = {"on": True}

    def open_engine(spec, **kw):
        eng = opened(spec, **kw)
        if spec.endswith("/models/imitate"):
            generate = eng.generate

            def counted(requests):
                evals = [r for r in requests if r.temperature == 0.0]
                if evals and kill["on"] and imitate_eval_requests:
                    raise Killed("killed during eval-imitate")
                imitate_eval_requests.extend(len(r.messages) for r in evals)
                return generate(requests)

            eng.generate = counted
        return eng

    monkeypatch.setattr(runner, "open_engine", open_engine)
    lines: list[str] = []
    reporter = runner.LogReporter()
    reporter.line = lines.append
    with pytest.raises(Killed):
        run_recipe(recipe, root, reporter=reporter)
    done = markers(root)
    assert set(done) == {
        "backbone",
        "eval-backbone-countdown-easy",
        "distill",
        "curate-imitate",
        "sft-imitate",
        "explore-pool",
    }
    assert (
        lines[-1]
        == "eval-imitate-countdown-easy: failed; run the same command again to resume here"
    )
    evals = root / "evals" / "imitate" / "countdown-easy" / "samples.db"
    assert rows(evals) == 4 and len(imitate_eval_requests) == 4  # the first batch is kept

    # the rerun: nothing finished is redone; the eval draws only its 2 missing problems
    # the runner's own name for it (it imports train_sft at module level)
    trained, real_train = [], runner.train_sft
    monkeypatch.setattr(
        runner, "train_sft", lambda s, **kw: trained.append(s.output_dir) or real_train(s, **kw)
    )
    teacher_calls = []
    monkeypatch.setattr(CountdownTeacher, "generate", lambda self, reqs: teacher_calls.append(reqs))
    kill["on"] = False
    imitate_eval_requests.clear()
    lines.clear()
    summary = run_recipe(recipe, root, reporter=reporter)
    assert imitate_eval_requests and len(imitate_eval_requests) == 2 and rows(evals) == 6
    assert trained == [str(root / "models" / "round-1")] and teacher_calls == []
    assert {k: v for k, v in markers(root).items() if k in done} == done  # untouched
    assert lines[0] == "backbone: done before; built " + str(root / "models" / "backbone")
    assert any(x.startswith("eval-imitate-countdown-easy: imitate ") for x in lines)
    assert any(x.startswith("rs-data-r1: D_1: ") for x in lines)

    # the run directory holds everything
    for path in (
        "resolved.yaml",
        "store.db",
        "models/backbone/config.json",
        "models/imitate/model.safetensors",
        "models/round-1/model.safetensors",
        "data/imitate/train.jsonl",
        "data/rs-r1.jsonl",
        "evals/round-1/countdown-easy/metrics.json",
        "report.md",
        "summary.json",
    ):
        assert (root / path).exists(), path
    report = (root / "report.md").read_text()
    d0 = json.loads((root / "steps" / "curate-imitate.json").read_text())["value"]["kept"]
    assert "| model | distilled | explored | countdown-easy (%) | gain (avg) |" in report
    assert f"| imitate (SFT on D_0) | {d0} | - |" in report
    assert "| round 1: RS-SFT from backbone |" in report
    assert [r["model"] for r in summary["rows"]] == ["backbone", "imitate", "round-1"]
    assert all(r["accuracy"]["countdown-easy"] is not None for r in summary["rows"])
    assert (root / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    explore = json.loads((root / "steps" / "explore-r1.json").read_text())["value"]
    with sqlite3.connect(root / "store.db") as c:
        stored = c.execute("SELECT COUNT(*) FROM trajectories WHERE stage='explore-r1'").fetchone()
    assert explore["rollouts"] == stored[0] and explore["problems"] == 3
    # the pool: 3 hard puzzles the teacher never saw, recorded in the report
    pool = json.loads((root / "steps" / "explore-pool.json").read_text())["value"]
    assert (pool["pool"], pool["removed_by_id"] + pool["removed_by_text"]) == (3, 0)
    assert "## Explore pool" in report and "## Cleaning" in report

    # a third run (the command) redoes nothing and prints the table; a changed recipe is refused
    import typer
    from typer.testing import CliRunner

    from reasonloop.recipe.cli import run_cmd

    app = typer.Typer()
    app.command()(run_cmd)
    before = markers(root)
    result = CliRunner().invoke(app, [str(recipe_file), "--out", str(root)])
    assert result.exit_code == 0, result.output
    assert markers(root) == before
    assert "sft-r1: done before; 2 steps, train loss" in result.output
    assert (
        "round 1: RS-SFT from backbone" in result.output
        and f"report: {root}/report.md" in result.output
    )
    with pytest.raises(ConfigError, match=r"changed: sft\.max_steps"):
        run_recipe(smoke(eval={"limit": 6}, sft={"max_steps": 3}), root)


def test_dpo_round_with_launched_training(tmp_path, smoke, half_right_student):
    """improve: dpo — pairs from the round's rollouts, DPO from the imitated model; training runs
    as `PYTHON -m reasonloop.cli train ...` (launch.train), the very lines a dry run prints."""
    recipe = smoke(
        improve={
            "method": "dpo",
            "rounds": 1,
            "dpo": {"max_steps": 1, "batch_size": 2, "max_length": 512},
        },
        sft={"max_steps": 1, "batch_size": 2, "learning_rate": 1e-3, "max_length": 512},
        launch={"train": sys.executable},
    )
    root = tmp_path / "dpo"
    summary = run_recipe(recipe, root)
    pairs = [json.loads(x) for x in (root / "data" / "dpo-r1.jsonl").read_text().splitlines()]
    assert len(pairs) == 3  # one per explored problem: a correct and a wrong rollout each
    assert pairs[0]["chosen"][0]["content"].startswith("<|begin_of_thought|>\nGoal:")
    assert pairs[0]["rejected"][0]["content"] == half_right_student
    assert [m["role"] for m in pairs[0]["prompt"]] == ["user"]  # system_prompt: false
    trained = json.loads((root / "models" / "round-1" / "reasonloop_train.json").read_text())
    assert trained["kind"] == "dpo" and trained["settings"]["model"] == str(
        root / "models" / "imitate"
    )
    assert trained["settings"]["align"] == "thought" and trained["settings"]["sft_weight"] == 1.0
    assert "dpo (thought, sft weight 1.0): 1 steps" in (root / "logs" / "dpo-r1.log").read_text()
    report = (root / "report.md").read_text()
    assert "| round 1: DPO from imitate | " in report and "| 3 pairs |" in report
    acc = [r["accuracy"]["countdown-easy"] for r in summary["rows"]]
    assert acc[0] is not None and acc[0] == acc[1] == acc[2] > 0  # the stand-in samples them all


def test_a_dpo_round_without_pairs_keeps_its_model(tmp_path, smoke, monkeypatch):
    recipe = smoke(improve={"method": "dpo", "rounds": 1})
    loop = Loop(recipe, tmp_path)
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "dpo-pairs-r1.json").write_text(json.dumps({"value": {"pairs": 0}}))
    step = next(s for s in loop.steps() if s.name == "dpo-r1")
    value = step.run()
    assert value["skipped"] == "no preference pairs" and value["model"] == str(
        tmp_path / "models" / "imitate"
    )
    (tmp_path / "steps" / "dpo-r1.json").write_text(json.dumps({"value": value}))
    assert loop.model_path("round-1") == str(tmp_path / "models" / "imitate")
    assert loop.student_spec("round-1") == f"hf:{tmp_path}/models/imitate"


def test_servers_start_once_per_checkpoint_and_stop(tmp_path, smoke):
    """A step's server is started, waited for, kept for the next step on the same checkpoint and
    stopped before training; one that dies is reported with its log."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    www = tmp_path / "www"
    (www / "v1").mkdir(parents=True)
    (www / "v1" / "models").write_text("{}")
    serve = Serve(
        f"{sys.executable} -m http.server {port} --bind 127.0.0.1 --directory {www}",
        f"openai:http://127.0.0.1:{port}/v1#x",
        f"http://127.0.0.1:{port}/v1/models",
    )
    loop = Loop(smoke(launch={"ready_timeout": 60}), tmp_path / "run")

    def step(name, server=None, trains=False):
        return Step(name, name, dict, str, list, serve=lambda: server, trains=trains)

    loop._switch(step("a", serve))
    server = loop._server
    assert server is not None and server.running and answers(serve.ready_url)
    proc = server.proc
    loop._switch(step("b", serve))
    assert loop._server is server and server.proc is proc  # the same checkpoint, the same server
    loop._switch(step("train", trains=True))
    assert loop._server is None and proc.poll() is not None and not answers(serve.ready_url)
    dead = Serve(
        f"{sys.executable} -c 'import sys; print(1); sys.exit(3)'",
        serve.engine,
        serve.ready_url + "x",
    )
    with pytest.raises(EngineError, match=r"exited with status 3 before answering.*server-c\.log"):
        loop._switch(step("c", dead))
    loop.close()


def test_grpo_round_on_the_tiny_student_end_to_end(tmp_path):
    """recipes/cpu-smoke-grpo.yaml — GRPO from the imitated model on the explore pool (real TRL
    steps on the tiny student), every rollout in the run's store under grpo-r1 with its step, round
    1 evaluated and in the report; a second start runs nothing again."""
    from reasonloop.recipe.config import load_recipe
    from reasonloop.store import open_store

    recipe = load_recipe(RECIPES / "cpu-smoke-grpo.yaml")
    root = tmp_path / "grpo"
    summary = run_recipe(recipe, root)
    done = json.loads((root / "steps" / "grpo-r1.json").read_text())["value"]
    assert (done["model"], done["init"]) == (
        str(root / "models" / "round-1"),
        str(root / "models" / "imitate"),
    )
    assert (done["steps"], done["rollouts"], done["new_rows"]) == (2, 8, 8)  # 2 x 2 prompts x 2
    trained = json.loads((root / "models" / "round-1" / "reasonloop_train.json").read_text())
    assert trained["kind"] == "grpo"
    assert trained["settings"]["problems"] == str(root / "data" / "explore-pool.jsonl")
    pool = {
        json.loads(x)["id"] for x in (root / "data" / "explore-pool.jsonl").read_text().splitlines()
    }
    with open_store(root / "store.db") as store:
        assert store.count(stage="grpo-r1") == 8
        assert store.count(stage="explore-r1") == 0  # GRPO samples the pool itself
        got = list(store.trajectories(stage="grpo-r1"))
    assert sorted(t.generator.round for t in got) == [1, 1, 1, 1, 2, 2, 2, 2]
    assert {t.problem_id for t in got} <= pool
    row = summary["rows"][-1]
    assert row["label"] == "round 1: GRPO from imitate" and row["explored"] == "8 rollouts"
    assert row["accuracy"]["countdown-easy"] is not None  # evaluated like the other rounds
    report = (root / "report.md").read_text()
    assert "| round 1: GRPO from imitate | " in report and "| 8 rollouts |" in report
    assert "## GRPO" in report and "| 1 | imitate | 2 | 8 |" in report
    before = markers(root)
    run_recipe(recipe, root)
    assert markers(root) == before
    with open_store(root / "store.db") as store:
        assert store.count(stage="grpo-r1") == 8


FAKE_VLLM = """
import http.server, sys
args = sys.argv[1:]
port = int(args[args.index("--port") + 1])
model = args[args.index("--model") + 1]

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = model.encode()
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(body)

http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def test_grpo_in_vllm_server_mode_keeps_its_server_up_while_it_trains(tmp_path, smoke):
    """The GRPO step is a training step with a server: launch.vllm_serve + --model (the round's
    start) + --port is started and answered /health before the step, and stopped after it (a
    stand-in for `trl vllm-serve`, which needs a GPU)."""
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fake = tmp_path / "fake_vllm.py"
    fake.write_text(FAKE_VLLM)
    grpo = {"use_vllm": True, "vllm_mode": "server", "vllm_server_port": port}
    recipe = smoke(
        improve={"method": "grpo", "rounds": 2, "grpo": grpo},
        launch={"vllm_serve": f"{sys.executable} {fake}", "ready_timeout": 60},
    )
    root = tmp_path / "run"
    loop = Loop(recipe, root)
    steps = {s.name: s for s in loop.steps()}
    g1 = steps["grpo-r1"]
    assert g1.trains and g1.serve() == Serve(
        f"{sys.executable} {fake} --model {root}/models/imitate --port {port}",
        "trl-vllm:imitate",
        f"http://127.0.0.1:{port}/health",
    )
    loop._switch(g1)
    server = loop._server
    assert server is not None and server.running
    proc = server.proc
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
        assert resp.read().decode() == f"{root}/models/imitate"
    assert steps["grpo-r2"].serve().command.endswith(f"--model {root}/models/round-1 --port {port}")
    loop._switch(steps["eval-round-1-countdown-easy"])  # in-process eval: no server
    assert loop._server is None and proc.poll() is not None
    loop.close()


def test_rounds_of_different_methods_chain_and_a_run_of_the_first_resumes_with_them(
    tmp_path, smoke
):
    """improve.method as a list, one method per round, the last repeating: GRPO after RS-SFT
    starts from the RS-SFT model; a later RS-SFT round's D_I takes only the explore rounds'
    rollouts. A finished RS-SFT run resumes with a GRPO round added (and its section set); a
    change to a method of a round it already planned is refused."""
    import re

    from reasonloop.recipe.runner import prepare_run_dir

    root = tmp_path / "run"
    loop = Loop(smoke(improve={"method": ["rs-sft", "grpo", "rs-sft"], "rounds": 3}), root)
    names = [s.name for s in loop.steps()]
    rounds = [n for n in names if re.fullmatch(r"(explore|rs-data|sft|grpo|dpo)-r\d", n)]
    assert rounds == ["explore-r1", "rs-data-r1", "sft-r1", "grpo-r2", "explore-r3"] + [
        "rs-data-r3",
        "sft-r3",
    ]
    assert names.index("eval-round-1-countdown-easy") < names.index("grpo-r2")
    steps = {s.name: s for s in loop.steps()}
    assert steps["grpo-r2"].title == "round 2: GRPO from round-1 on the explore pool"
    assert loop.explored(3) == ["explore-r1", "explore-r3"]
    assert "--stage explore-r1 --stage explore-r3 " in " ".join(steps["rs-data-r3"].commands())
    (root / "steps").mkdir(parents=True)
    (root / "steps" / "grpo-r2.json").write_text(json.dumps({"value": {"model": "/m/g2"}}))
    (root / "steps" / "sft-r1.json").write_text(json.dumps({"value": {"model": "/m/s1"}}))
    assert (loop.model_path("round-1"), loop.model_path("round-2")) == ("/m/s1", "/m/g2")
    repeat = smoke(improve={"method": ["rs-sft", "grpo"], "rounds": 3}).improve
    assert repeat.methods() == ("rs-sft", "grpo", "grpo")
    assert smoke(improve={"method": "dpo", "rounds": 2}).improve.methods() == ("dpo", "dpo")

    # resume: a finished one-round RS-SFT run gains a GRPO round with its own settings
    prepare_run_dir(smoke(), root)
    (root / "steps" / "backbone.json").write_text('{"value": {}, "seconds": 0}')
    grpo = {"max_steps": 3, "group_size": 4}
    prepare_run_dir(smoke(improve={"method": ["rs-sft", "grpo"], "rounds": 2, "grpo": grpo}), root)
    with pytest.raises(ConfigError, match=r"changed: improve\.grpo\.group_size, "):
        prepare_run_dir(smoke(improve={"method": ["rs-sft", "grpo"], "rounds": 2}), root)
    swapped = {"method": ["grpo", "rs-sft"], "rounds": 2, "grpo": grpo}
    with pytest.raises(ConfigError, match=r"\(changed: improve\.method\);"):
        prepare_run_dir(smoke(improve=swapped), root)


def test_a_launched_grpo_round_runs_its_dry_run_line(tmp_path, monkeypatch):
    """launch.grpo_train: the round runs as `LAUNCHER -m reasonloop.cli train grpo ...` (the line
    the dry run prints) and its summary is read back from what the command saved."""
    from dataclasses import replace

    from reasonloop.problems import resolve_problems
    from reasonloop.recipe.config import load_recipe
    from reasonloop.recipe.pool import write_pool
    from reasonloop.recipe.tiny import build_tiny
    from reasonloop.store import open_store

    recipe = load_recipe(RECIPES / "cpu-smoke-grpo.yaml")
    recipe = replace(recipe, launch=replace(recipe.launch, grpo_train=sys.executable))
    root = tmp_path / "run"
    loop = Loop(recipe, root)
    build_tiny(root / "models" / "imitate", seed=0)  # stands in for the imitated model
    write_pool(loop.layout.explore_pool, resolve_problems("countdown-hard", limit=3))
    step = next(s for s in loop.steps() if s.name == "grpo-r1")
    line = step.commands()[0]
    assert line.startswith(f"{sys.executable} -m reasonloop.cli train grpo --model {root}/models/")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2] / "src"))
    value = step.run()
    assert (value["steps"], value["rollouts"], value["new_rows"]) == (2, 8, 8)
    assert value["init"] == str(root / "models" / "imitate")
    assert "grpo (dapo): 2 steps, 8 rollouts" in (root / "logs" / "grpo-r1.log").read_text()
    with open_store(root / "store.db") as store:
        assert store.count(stage="grpo-r1") == 8
    loop.close()
