"""--dry-run: every stage's command line, exactly, and nothing run."""

import shlex
from pathlib import Path

import typer
from typer.testing import CliRunner

from reasonloop.recipe.cli import run_cmd
from reasonloop.recipe.config import load_recipe
from reasonloop.recipe.runner import dry_run

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
GPU = RECIPES / "gpu-qwen2.5-math-1.5b.yaml"


def app() -> typer.Typer:
    a = typer.Typer()
    a.command("run")(run_cmd)

    @a.callback()
    def _root() -> None:  # keep `run` a subcommand, as in the real CLI
        pass

    return a


def test_gpu_recipe_dry_run_prints_every_stage(tmp_path):
    out = tmp_path / "qwen"
    result = CliRunner().invoke(app(), ["run", str(GPU), "--out", str(out), "--dry-run"])
    assert result.exit_code == 0, result.output
    script = (out / "commands.sh").read_text()
    assert script in result.output
    lines = script.splitlines()

    d = str(out)
    serve = "--max-model-len 4096 --gpu-memory-utilization 0.9"
    train = (
        "accelerate launch --config_file recipes/accelerate/zero2.yaml -m reasonloop.cli train sft"
    )
    sft_flags = (
        "--epochs 2 --max-steps -1 --lr 1e-05 --batch-size 4 --max-length 4096 --seed 0 --bf16"
    )
    expected = [
        # backbone eval, on a vLLM server of the base model
        f"vllm serve Qwen/Qwen2.5-Math-1.5B --port 8001 --served-model-name backbone {serve} &",
        "SERVER_PID=$!",
        "until curl -sf http://127.0.0.1:8001/v1/models > /dev/null; do sleep 5; done",
        f"reasonloop eval --benchmark math500 --out {d}/evals/backbone/math500 --engine "
        "'openai:http://127.0.0.1:8001/v1#backbone' --strategy greedy -k 1 --system-prompt "
        "--aggregate min --genrm-form yes --verifications 4 --temperature 0.7 --top-p 1 --max-tokens 3584 --seed 0",
        f"reasonloop eval --benchmark aime2024 --out {d}/evals/backbone/aime2024 --engine "
        "'openai:http://127.0.0.1:8001/v1#backbone' --strategy greedy -k 1 --system-prompt "
        "--aggregate min --genrm-form yes --verifications 4 --temperature 0.7 --top-p 1 --max-tokens 3584 --seed 0",
        "kill $SERVER_PID; wait $SERVER_PID || true",
        # imitate: the teacher's server, distillation, curation, SFT under accelerate
        "vllm serve Qwen/QwQ-32B-Preview --port 8000 --served-model-name teacher "
        "--tensor-parallel-size 8 --max-model-len 8192 &",
        "until curl -sf http://127.0.0.1:8000/v1/models > /dev/null; do sleep 5; done",
        "reasonloop distill --problems math-train --teacher "
        f"'openai:http://127.0.0.1:8000/v1#teacher' --style auto --store {d}/store.db --limit 4000 "
        "-n 4 --temperature 0.6 --top-p 1 --max-tokens 3584 --seed 0",
        "kill $SERVER_PID; wait $SERVER_PID || true",
        f"reasonloop curate --store {d}/store.db --out {d}/data/imitate --recipe "
        f"{d}/config/curate-imitate.yaml --stage distill --decontaminate math500 "
        "--decontaminate aime2024",
        f"{train} --model Qwen/Qwen2.5-Math-1.5B --data {d}/data/imitate/train.jsonl "
        f"--out {d}/models/imitate {sft_flags}",
        f"vllm serve {d}/models/imitate --port 8001 --served-model-name imitate {serve} &",
        f"reasonloop eval --benchmark math500 --out {d}/evals/imitate/math500 --engine "
        "'openai:http://127.0.0.1:8001/v1#imitate' --strategy greedy -k 1 --system-prompt "
        "--aggregate min --genrm-form yes --verifications 4 --temperature 0.7 --top-p 1 --max-tokens 3584 --seed 0",
        # round 1: the imitated model explores (same server), D_1, SFT from the base model
        "reasonloop explore --problems math-train --max-rollouts 20 --batch 4 --stage explore-r1 "
        f"--store {d}/store.db --engine 'openai:http://127.0.0.1:8001/v1#imitate' --limit 2000 "
        "--temperature 1 --top-p 1 --max-tokens 3584 --seed 0",
        f"reasonloop curate --store {d}/store.db --out {d}/data/explored-r1 --recipe "
        f"{d}/config/curate-explored.yaml --stage explore-r1 --perplexity-engine "
        "'openai:http://127.0.0.1:8001/v1#imitate'",
        f"cat {d}/data/imitate/train.jsonl {d}/data/explored-r1/train.jsonl > {d}/data/rs-r1.jsonl",
        "kill $SERVER_PID; wait $SERVER_PID || true",
        f"{train} --model Qwen/Qwen2.5-Math-1.5B --data {d}/data/rs-r1.jsonl "
        f"--out {d}/models/round-1 {sft_flags}",
        f"vllm serve {d}/models/round-1 --port 8001 --served-model-name round-1 {serve} &",
        f"reasonloop eval --benchmark aime2024 --out {d}/evals/round-1/aime2024 --engine "
        "'openai:http://127.0.0.1:8001/v1#round-1' --strategy greedy -k 1 --system-prompt "
        "--aggregate min --genrm-form yes --verifications 4 --temperature 0.7 --top-p 1 --max-tokens 3584 --seed 0",
        # round 2 explores with round 1's model; D_2 takes the correct rollouts of both rounds
        "reasonloop explore --problems math-train --max-rollouts 20 --batch 4 --stage explore-r2 "
        f"--store {d}/store.db --engine 'openai:http://127.0.0.1:8001/v1#round-1' --limit 2000 "
        "--temperature 1 --top-p 1 --max-tokens 3584 --seed 0",
        f"reasonloop curate --store {d}/store.db --out {d}/data/explored-r2 --recipe "
        f"{d}/config/curate-explored.yaml --stage explore-r1 --stage explore-r2 "
        "--perplexity-engine 'openai:http://127.0.0.1:8001/v1#round-1'",
        f"{train} --model Qwen/Qwen2.5-Math-1.5B --data {d}/data/rs-r2.jsonl "
        f"--out {d}/models/round-2 {sft_flags}",
        f"reasonloop eval --benchmark aime2024 --out {d}/evals/round-2/aime2024 --engine "
        "'openai:http://127.0.0.1:8001/v1#round-2' --strategy greedy -k 1 --system-prompt "
        "--aggregate min --genrm-form yes --verifications 4 --temperature 0.7 --top-p 1 --max-tokens 3584 --seed 0",
        "kill $SERVER_PID; wait $SERVER_PID || true",
    ]
    pos = -1
    for line in expected:  # each line is there, in this order
        assert line in lines[pos + 1 :], line
        pos = lines.index(line, pos + 1)
    assert lines[-1] == "kill $SERVER_PID; wait $SERVER_PID || true"
    # every server started is stopped; one start serves consecutive stages on one checkpoint
    assert (
        sum(x.startswith("vllm serve") for x in lines)
        == sum(x.startswith("kill") for x in lines)
        == 5
    )
    assert sum(x.startswith("reasonloop eval") for x in lines) == 8  # 4 models x 2 benchmarks
    # nothing ran: no store, no model; the resolved config and curate recipes are written
    assert not (out / "store.db").exists() and not (out / "models").exists()
    assert not (out / "steps").exists()
    assert (out / "resolved.yaml").exists() and (out / "config" / "curate-explored.yaml").exists()


def test_dry_run_curate_recipes_load_with_the_curate_command(tmp_path):
    from reasonloop.curate.run import load_recipe as load_curate

    dry_run(load_recipe(GPU), tmp_path)
    explored = load_curate(tmp_path / "config" / "curate-explored.yaml")
    imitate = load_curate(tmp_path / "config" / "curate-imitate.yaml")
    assert explored.select.by == "perplexity_high" and imitate.select.by == "longest"
    assert imitate.filters.min_thought_words == 50 and imitate.system_prompt is True


def test_dpo_and_tiny_recipe_lines(tmp_path):
    from reasonloop.recipe.config import parse_recipe

    r = parse_recipe(
        {
            "teacher": {"problems": "countdown-medium", "engine": "countdown", "limit": 4},
            "student": {"model": "tiny"},
            "sft": {"max_steps": 2},
            "explore": {"problems": "countdown-hard", "limit": 3},
            "improve": {"method": "dpo", "rounds": 2, "dpo": {"max_steps": 1, "beta": 0.2}},
            "eval": {"benchmarks": ["countdown-easy"]},
            "system_prompt": False,
        }
    )
    d = str(tmp_path)
    lines = dry_run(r, tmp_path).splitlines()
    assert (
        "python -c 'from reasonloop.recipe.tiny import build_tiny; build_tiny('\"'\"'"
        f"{d}/models/backbone'\"'\"', seed=0)'"
    ) in lines
    assert (
        f"python -m reasonloop.recipe.pairs --store {d}/store.db --stage explore-r2 --out "
        f"{d}/data/dpo-r2.jsonl --pairs-per-problem 1 --no-system-prompt --perplexity-engine "
        f"hf:{d}/models/round-1"
    ) in lines
    assert (
        f"reasonloop train dpo --model {d}/models/round-1 --data {d}/data/dpo-r2.jsonl --out "
        f"{d}/models/round-2 --align thought --sft-weight 1 --beta 0.2 --epochs 1 --max-steps 1 "
        "--lr 5e-06 --batch-size 4 --max-length 1024 --seed 0"
    ) in lines
    assert any("system_prompt: false" in x for x in lines)  # explore has no flag for it
    assert any(x.startswith("reasonloop eval ") and " --no-system-prompt " in x for x in lines)
    assert not any(x.startswith(("vllm", "kill")) for x in lines)


def test_demo_recipe_is_one_command(tmp_path):
    text = dry_run(load_recipe(RECIPES / "cpu-demo.yaml"), tmp_path / "demo")
    # the recipe asks for three seeds where the demo runs one by default
    assert f"reasonloop demo --out {tmp_path}/demo --seeds 3" in text.splitlines()
    from dataclasses import fields

    from reasonloop.demo.run import DemoConfig
    from reasonloop.recipe.config import parse_recipe

    q, d = DemoConfig.quick(), DemoConfig()
    changed = {
        f.name: list(getattr(q, f.name)) if f.name == "seeds" else getattr(q, f.name)
        for f in fields(q)
        if f.name != "out" and getattr(q, f.name) != getattr(d, f.name)
    }
    quick = parse_recipe({"kind": "demo", "demo": changed})
    assert f"reasonloop demo --out {tmp_path}/q --quick" in dry_run(quick, tmp_path / "q")
    odd = parse_recipe({"kind": "demo", "demo": {"sft_steps": 7}})
    line = dry_run(odd, tmp_path / "odd").splitlines()[-1]
    assert shlex.split(line) == [
        "python",
        "-c",
        "from reasonloop.demo.run import DemoConfig; from reasonloop.recipe.demo import run_demo; "
        f'run_demo(DemoConfig(out="{tmp_path}/odd", sft_steps=7))',
    ]


def test_bad_recipe_exits_with_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(GPU.read_text().replace("max_rollouts: 20", "max_rollout: 20"))
    result = CliRunner().invoke(app(), ["run", str(bad), "--out", str(tmp_path / "o"), "--dry-run"])
    assert result.exit_code != 0
    assert "explore.max_rollout: unknown key" in str(result.exception)


def test_rel_teacher_line(tmp_path):
    from reasonloop.recipe.config import parse_recipe

    r = parse_recipe(
        {
            "teacher": {
                "method": "rel",
                "problems": "data/seed.jsonl",
                "engine": "default",
                "critic": "llamacpp:/m/critic.gguf",
                "rounds": 2,
                "limit": 5,
                "max_tokens": 160,
            },
            "student": {"model": "/m/student"},
            "explore": {"problems": "data/hard.jsonl"},
            "eval": {"benchmarks": ["data/test.jsonl"]},
            "data_dir": "/data",
        }
    )
    lines = dry_run(r, tmp_path).splitlines()
    assert (
        "reasonloop rel --problems data/seed.jsonl --generator default --critic "
        f"llamacpp:/m/critic.gguf --store {tmp_path}/store.db --limit 5 --data-dir /data --rounds 2 "
        "--threshold 0.8 --temperature 0.6 --max-tokens 160 --seed 0"
    ) in lines
    assert (
        f"reasonloop curate --store {tmp_path}/store.db --out {tmp_path}/data/imitate --recipe "
        f"{tmp_path}/config/curate-imitate.yaml --stage rel"
    ) in lines
    assert f"reasonloop eval --benchmark data/test.jsonl --out {tmp_path}/evals/backbone/test " in (
        "\n".join(lines)
    )
