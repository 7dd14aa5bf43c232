"""--dry-run: every stage's command line, exactly, and nothing run."""

import shlex
from dataclasses import replace
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from reasonloop.recipe.cli import run_cmd
from reasonloop.recipe.config import load_recipe, parse_recipe
from reasonloop.recipe.runner import Loop, dry_run

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
        "--epochs 2 --max-steps -1 --lr 1e-05 --batch-size 4 --grad-accum 1 --max-length 4096 "
        "--warmup 0 --seed 0 --bf16 --gradient-checkpointing"
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
        # the pool: math-train less the distilled problems, highest level first (no model needed)
        f"python -m reasonloop.recipe.pool --recipe {d}/resolved.yaml --store {d}/store.db "
        f"--out {d}/data/explore-pool.jsonl",
        f"vllm serve {d}/models/imitate --port 8001 --served-model-name imitate {serve} &",
        f"reasonloop eval --benchmark math500 --out {d}/evals/imitate/math500 --engine "
        "'openai:http://127.0.0.1:8001/v1#imitate' --strategy greedy -k 1 --system-prompt "
        "--aggregate min --genrm-form yes --verifications 4 --temperature 0.7 --top-p 1 "
        "--max-tokens 3584 --seed 0",
        # round 1: the imitated model explores the pool (same server); D_1 (the explored rows
        # cleaned and decontaminated as D_0 was), SFT from the base model
        f"reasonloop explore --problems {d}/data/explore-pool.jsonl --max-rollouts 20 --batch 4 "
        f"--stage explore-r1 --store {d}/store.db --engine "
        "'openai:http://127.0.0.1:8001/v1#imitate' --temperature 1 --top-p 1 --max-tokens 3584 "
        "--seed 0",
        f"reasonloop curate --store {d}/store.db --out {d}/data/explored-r1 --recipe "
        f"{d}/config/curate-explored.yaml --stage explore-r1 --decontaminate math500 "
        "--decontaminate aime2024 --perplexity-engine 'openai:http://127.0.0.1:8001/v1#imitate'",
        f"cat {d}/data/imitate/train.jsonl {d}/data/explored-r1/train.jsonl > {d}/data/rs-r1.jsonl",
        "kill $SERVER_PID; wait $SERVER_PID || true",
        f"{train} --model Qwen/Qwen2.5-Math-1.5B --data {d}/data/rs-r1.jsonl "
        f"--out {d}/models/round-1 {sft_flags}",
        f"vllm serve {d}/models/round-1 --port 8001 --served-model-name round-1 {serve} &",
        f"reasonloop eval --benchmark aime2024 --out {d}/evals/round-1/aime2024 --engine "
        "'openai:http://127.0.0.1:8001/v1#round-1' --strategy greedy -k 1 --system-prompt "
        "--aggregate min --genrm-form yes --verifications 4 --temperature 0.7 --top-p 1 --max-tokens 3584 --seed 0",
        # round 2 explores with round 1's model; D_2 takes the correct rollouts of both rounds
        f"reasonloop explore --problems {d}/data/explore-pool.jsonl --max-rollouts 20 --batch 4 "
        f"--stage explore-r2 --store {d}/store.db --engine "
        "'openai:http://127.0.0.1:8001/v1#round-1' --temperature 1 --top-p 1 --max-tokens 3584 "
        "--seed 0",
        f"reasonloop curate --store {d}/store.db --out {d}/data/explored-r2 --recipe "
        f"{d}/config/curate-explored.yaml --stage explore-r1 --stage explore-r2 --decontaminate "
        "math500 --decontaminate aime2024 --perplexity-engine "
        "'openai:http://127.0.0.1:8001/v1#round-1'",
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
    # round 2 explores with round 1's model, and its DPO starts again from the imitated model
    assert any(" --engine hf:" + d + "/models/round-1 " in x for x in lines if "explore-r2" in x)
    dpo2 = (
        f"reasonloop train dpo --model {d}/models/imitate --data {d}/data/dpo-r2.jsonl --out "
        f"{d}/models/round-2 --align thought --sft-weight 1 --beta 0.2 --epochs 1 --max-steps 1 "
        "--lr 5e-06 --batch-size 4 --grad-accum 1 --max-length 1024 --warmup 0 --seed 0"
    )
    assert dpo2 in lines
    assert "# -- dpo-r2: round 2: thought-only DPO from imitate" in lines
    assert Loop(r, tmp_path).dpo_start(2) == "imitate" and r.improve.dpo_from == "imitate"
    # dpo_from: previous chains the rounds: round 2 starts from round 1's model
    chained = replace(r, improve=replace(r.improve, dpo_from="previous"))
    lines = dry_run(chained, tmp_path / "chained").splitlines()
    c = f"{tmp_path}/chained"
    assert any(
        x.startswith(f"reasonloop train dpo --model {c}/models/round-1 --data {c}/data/dpo-r2")
        for x in lines
    )
    assert "# -- dpo-r2: round 2: thought-only DPO from round-1" in lines
    assert any("system_prompt: false" in x for x in lines)  # explore has no flag for it
    assert any(x.startswith("reasonloop eval ") and " --no-system-prompt " in x for x in lines)
    assert not any(x.startswith(("vllm", "kill")) for x in lines)


def test_demo_recipe_is_one_command(tmp_path):
    text = dry_run(load_recipe(RECIPES / "cpu-demo.yaml"), tmp_path / "demo")
    # the recipe asks for three seeds and GRPO where the demo runs one seed without it by default
    assert f"reasonloop demo --out {tmp_path}/demo --seeds 3 --grpo" in text.splitlines()
    grpo_only = parse_recipe({"kind": "demo", "demo": {"grpo": True}})
    assert dry_run(grpo_only, tmp_path / "g").splitlines()[-1] == (
        f"reasonloop demo --out {tmp_path}/g --grpo"
    )
    both = parse_recipe({"kind": "demo", "demo": {"grpo": True, "grpo_budget": ["dpo", "rs-sft"]}})
    assert dry_run(both, tmp_path / "b").splitlines()[-1] == (
        f"reasonloop demo --out {tmp_path}/b --grpo --grpo-budget dpo,rs-sft"
    )
    from dataclasses import fields

    from reasonloop.demo.run import DemoConfig

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


GPU_GRPO = RECIPES / "gpu-qwen2.5-math-1.5b-grpo.yaml"
ZERO2 = "accelerate launch --config_file recipes/accelerate/zero2.yaml"
GRPO_FLAGS = (
    "--stage grpo-r1 --system-prompt --group-size 8 --prompts-per-step 4 --temperature 1 "
    "--top-p 1 --max-tokens 3072 --loss dapo --beta 0 --scale-rewards group --format-weight 0 "
    "--overlong-buffer 0 --overlong-penalty 1 --save-steps 50 --token-budget 0 --resume"
)
GRPO_TRAINER = "--max-steps 500 --lr 1e-06 --warmup 0 --seed 0 --bf16"


def block(lines: list[str], header: str) -> list[str]:
    """The lines of one step of a script: from its header to the next one."""
    start = lines.index(header) + 1
    end = next((k for k in range(start, len(lines)) if lines[k].startswith("# -- ")), len(lines))
    return [x for x in lines[start:end] if x]


def test_gpu_grpo_recipe_serves_the_policy_with_trl_vllm_serve(tmp_path):
    """vLLM server mode: the round's starting policy served on GPU 7, training on GPUs 0-6 with
    --use-vllm --vllm-mode server, the server stopped after the round."""
    out = tmp_path / "q"
    result = CliRunner().invoke(app(), ["run", str(GPU_GRPO), "--out", str(out), "--dry-run"])
    assert result.exit_code == 0, result.output
    d = str(out)
    lines = (out / "commands.sh").read_text().splitlines()
    assert block(lines, "# -- grpo-r1: round 1: GRPO from imitate on the explore pool") == [
        "env CUDA_VISIBLE_DEVICES=7 trl vllm-serve --max_model_len 4096 --model "
        f"{d}/models/imitate --port 8002 &",
        "SERVER_PID=$!",
        "until curl -sf http://127.0.0.1:8002/health > /dev/null; do sleep 5; done",
        f"env CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6 {ZERO2} --num_processes 7 -m reasonloop.cli "
        f"train grpo --model {d}/models/imitate --problems {d}/data/explore-pool.jsonl --out "
        f"{d}/models/round-1 {GRPO_FLAGS} --use-vllm --vllm-mode server --vllm-server-port 8002 "
        f"{GRPO_TRAINER} --store {d}/store.db",
        "kill $SERVER_PID; wait $SERVER_PID || true",
    ]
    # no explore step: GRPO samples the pool itself; round 1 is evaluated like the others
    assert not any(x.startswith("reasonloop explore") for x in lines)
    assert "# -- eval-round-1-math500: eval round-1 on math500" in lines


def test_gpu_grpo_recipe_in_colocate_mode(tmp_path):
    """vLLM colocate mode: no server; vLLM's share of each training GPU on the training line."""
    import yaml

    from reasonloop.recipe.config import parse_recipe

    data = yaml.safe_load(GPU_GRPO.read_text())
    grpo = data["improve"]["grpo"]
    del grpo["vllm_server_port"]
    grpo.update(vllm_mode="colocate", vllm_gpu_memory_utilization=0.3)
    del data["launch"]["grpo_train"], data["launch"]["vllm_serve"]
    d = str(tmp_path)
    lines = dry_run(parse_recipe(data), tmp_path).splitlines()
    assert block(lines, "# -- grpo-r1: round 1: GRPO from imitate on the explore pool") == [
        f"{ZERO2} -m reasonloop.cli train grpo --model {d}/models/imitate --problems "
        f"{d}/data/explore-pool.jsonl --out {d}/models/round-1 {GRPO_FLAGS} --use-vllm "
        f"--vllm-mode colocate --vllm-gpu-memory-utilization 0.3 {GRPO_TRAINER} --store "
        f"{d}/store.db",
    ]
    assert not any("vllm-serve" in x for x in lines)


def test_tiny_grpo_recipe_lines(tmp_path, smoke):
    """On a CPU: rounds chain (round 2 from round 1's model), no vLLM, no server."""
    r = smoke(improve={"method": "grpo", "rounds": 2, "grpo": {"max_steps": 2, "group_size": 2}})
    d = str(tmp_path)
    lines = dry_run(r, tmp_path).splitlines()
    assert block(lines, "# -- grpo-r2: round 2: GRPO from round-1 on the explore pool") == [
        f"reasonloop train grpo --model {d}/models/round-1 --problems {d}/data/explore-pool.jsonl "
        f"--out {d}/models/round-2 --stage grpo-r2 --no-system-prompt --group-size 2 "
        "--prompts-per-step 4 --temperature 1 --top-p 1 --max-tokens 256 --loss dapo --beta 0 "
        "--scale-rewards group --format-weight 0 --overlong-buffer 0 --overlong-penalty 1 "
        f"--save-steps 0 --token-budget 0 --resume --max-steps 2 --lr 1e-06 --warmup 0 --seed 0 --store {d}/store.db",
    ]
    assert any(x.startswith(f"reasonloop train grpo --model {d}/models/imitate ") for x in lines)
    assert not any(x.startswith(("reasonloop explore", "vllm", "trl", "kill")) for x in lines)


def test_a_demo_run_resumes_with_more_seeds_grpo_or_budgets_but_not_other_grpo_settings(tmp_path):
    import yaml

    from reasonloop.errors import ConfigError
    from reasonloop.recipe.runner import prepare_run_dir

    out = tmp_path / "demo"
    prepare_run_dir(parse_recipe({"kind": "demo", "demo": {"seeds": [0]}}), out)
    old = yaml.safe_load((out / "resolved.yaml").read_text())
    # a run made before GRPO was in the demo: its resolved recipe has no grpo keys
    old["demo"] = {k: v for k, v in old["demo"].items() if not k.startswith("grpo")}
    (out / "resolved.yaml").write_text(yaml.safe_dump(old))
    (out / "steps").mkdir()
    (out / "steps" / "distill.json").write_text("{}")
    more = {"kind": "demo", "demo": {"seeds": [0, 1, 2], "grpo": True}}
    prepare_run_dir(parse_recipe(more), out)  # only adds steps: accepted
    # another budget is another GRPO run with steps of its own: accepted, as a list or alone
    for budget in (["dpo", "rs-sft"], "rs-sft"):
        both = {"kind": "demo", "demo": {"seeds": [0, 1, 2], "grpo": True, "grpo_budget": budget}}
        prepare_run_dir(parse_recipe(both), out)
    assert yaml.safe_load((out / "resolved.yaml").read_text())["demo"]["grpo_budget"] == "rs-sft"
    changed = {"kind": "demo", "demo": {"seeds": [0, 1, 2], "grpo": True, "grpo_loss": "dapo"}}
    with pytest.raises(ConfigError, match=r"changed: demo\.grpo_loss\)"):
        prepare_run_dir(parse_recipe(changed), out)


def test_the_dry_run_has_accelerate_read_its_config_file(tmp_path):
    """The GPU recipe's zero2.yaml passes accelerate's own loader; a file accelerate rejects (an
    unknown distributed type, a misspelt key, no file) stops the dry run naming the launcher."""
    import yaml

    from reasonloop.errors import ConfigError

    good = dry_run(load_recipe(RECIPES / "gpu-qwen2.5-math-1.5b.yaml"), tmp_path / "ok")
    assert "accelerate launch --config_file recipes/accelerate/zero2.yaml" in good
    base = yaml.safe_load((RECIPES / "accelerate" / "zero2.yaml").read_text())
    cases = [
        ({**base, "distributed_type": "DEEPSPED"}, "'DEEPSPED' is not a valid DistributedType"),
        ({**base, "num_processess": 8}, "unknown keys (['num_processess'])"),
        (None, "does not exist"),
    ]
    recipe = yaml.safe_load((RECIPES / "gpu-qwen2.5-math-1.5b.yaml").read_text())
    for i, (config, message) in enumerate(cases):
        path = tmp_path / f"accel{i}.yaml"
        if config is not None:
            path.write_text(yaml.safe_dump(config))
        recipe["launch"]["train"] = f"accelerate launch --config_file={path}"
        with pytest.raises(ConfigError) as err:
            dry_run(parse_recipe(recipe), tmp_path / f"bad{i}")
        assert str(err.value).startswith(
            f"launch.train names a config file accelerate rejects ('{path}'): "
        ), str(err.value)
        assert message in str(err.value)
