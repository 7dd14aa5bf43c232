"""Recipe validation: every wrong key or value is a ConfigError naming the dotted key."""

import copy
from pathlib import Path

import pytest

from reasonloop.errors import ConfigError
from reasonloop.recipe.config import (
    DemoRecipe,
    LoopRecipe,
    changed_keys,
    load_recipe,
    parse_recipe,
    resolved,
)

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
BASE = {
    "teacher": {"problems": "countdown-medium", "engine": "countdown"},
    "student": {"model": "tiny"},
    "explore": {"problems": "countdown-hard"},
    "eval": {"benchmarks": ["countdown-easy"]},
}


def with_(**sections):
    data = copy.deepcopy(BASE)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return data


@pytest.mark.parametrize(
    "data, message",
    [
        (with_(sft={"max_stpes": 3}), "sft.max_stpes: unknown key; valid keys under sft: "),
        (with_(sft={"max_steps": "ten"}), "sft.max_steps: expected an integer, got 'ten'"),
        (with_(sft={"learning_rate": -1}), "sft.learning_rate must be > 0, got -1.0"),
        (with_(sft={"model": "x"}), "sft.model: unknown key"),  # paths are the run's
        (with_(sft={"lora": {"r": 8, "alpah": 3}}), "sft.lora.alpah: unknown key"),
        (with_(teacher={"method": "magic"}), "teacher.method must be one of ['distill', 'rel']"),
        (with_(teacher={"engine": "gpt4"}), "teacher.engine: unknown engine spec 'gpt4'"),
        (with_(teacher={"n": 0}), "teacher.n must be >= 1, got 0"),
        (with_(student={"engine": "vllm"}), "student.engine must be 'hf' or 'openai:URL#MODEL'"),
        (
            with_(student={"model": "m", "engine": "openai:http://h/v1#{name}"}),
            "student.engine: an openai: student needs launch.serve",
        ),
        (with_(launch={"serve": "vllm serve {model}"}), "launch.serve: set student.engine"),
        (with_(explore={"max_rollouts": 0}), "explore.max_rollouts must be >= 1, got 0"),
        (with_(improve={"method": "ppo"}), "improve.method must be one of ['rs-sft', 'dpo']"),
        (with_(improve={"select": {"by": "random"}}), "improve.select.by: 'random' is not one of"),
        (
            with_(improve={"dpo": {"align": "both"}}),
            "improve.dpo.align must be 'thought' or 'full'",
        ),
        (with_(improve={"dpo_from": "base"}), "improve.dpo_from must be one of"),
        (with_(eval={"benchmarks": []}), "eval.benchmarks must name at least one"),
        (with_(eval={"strategy": "telepathy"}), "eval.strategy must be one of greedy, sample"),
        (with_(eval={"benchmarks": "math500"}), "eval.benchmarks: expected a list, got 'math500'"),
        (with_(curate={"filters": {"min_thought_words": -1}}), "curate.filters.min_thought_words"),
        (with_(curate={"system_prompt": False}), "curate.system_prompt: set the top-level"),
        (
            with_(curate={"mix": {"domains": {"math": "lots"}}}),
            "curate.mix.domains.math: expected a number",
        ),
        (
            with_(launch={"train": "accelerate launch"}, sft={"grad_accum": 4}),
            "sft.grad_accum: `reasonloop train` has no flag for it",
        ),
        (with_(kind="other"), "kind: must be one of ['loop', 'demo'], got 'other'"),
        (with_(extras=1), "extras: unknown key; valid keys at the top level: "),
        (with_(seed=True), "seed: expected an integer, got True"),
        (with_(sft=[1, 2]), "sft: expected a mapping of keys"),
        ({k: v for k, v in BASE.items() if k != "explore"}, "explore: required section is missing"),
        (
            with_(teacher={"engine": "default", "problems": None}),
            "teacher.problems: expected a string, got None",
        ),
        ({**BASE, "teacher": {"engine": "default"}}, "teacher.problems: required key is missing"),
        ({"kind": "demo", "demo": {"sft_steps": "a"}}, "demo.sft_steps: expected an integer"),
        ({"kind": "demo", "demo": {"out": "x"}}, "demo.out: unknown key"),
        (
            {"kind": "demo", "teacher": {}},
            "teacher: unknown key; valid keys at the top level: demo, kind, name",
        ),
    ],
)
def test_bad_recipes_name_the_key(data, message):
    with pytest.raises(ConfigError) as err:
        parse_recipe(data)
    assert message in str(err.value)


def test_values_are_converted_and_defaults_filled():
    r = parse_recipe(
        with_(
            seed=3,
            sft={"learning_rate": "1e-5", "lora": True, "epochs": 2},
            improve={"method": "dpo", "dpo": {"beta": 0.2}},
        )
    )
    assert isinstance(r, LoopRecipe)
    assert r.sft.learning_rate == 1e-5 and r.sft.lora.r == 16 and r.sft.epochs == 2.0
    assert r.sft.seed == 3 and r.improve.dpo.seed == 3  # the recipe's seed is the default
    assert r.improve.dpo.sft_weight == 1.0 and r.improve.dpo.align == "thought"
    assert r.sft.model == r.sft.data == r.sft.output_dir == ""
    assert r.eval.benchmarks == ("countdown-easy",)


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("teacher: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid YAML"):
        load_recipe(bad)
    bad.write_text("kind: loop\nsft: {max_steps: x}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: teacher: required section is missing"):
        load_recipe(bad)
    with pytest.raises(ConfigError, match="recipe not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_shipped_recipes_load():
    smoke = load_recipe(RECIPES / "cpu-smoke.yaml")
    gpu = load_recipe(RECIPES / "gpu-qwen2.5-math-1.5b.yaml")
    demo = load_recipe(RECIPES / "cpu-demo.yaml")
    assert isinstance(smoke, LoopRecipe) and smoke.student.model == "tiny"
    assert gpu.launch.train.startswith("accelerate launch") and gpu.eval.benchmarks == (
        "math500",
        "aime2024",
    )
    assert isinstance(demo, DemoRecipe) and demo.demo.seeds == (0, 1, 2)


def test_resolved_form_round_trips_and_diffs():
    r = parse_recipe(with_(sft={"max_steps": 2}))
    a = resolved(r)
    assert a["sft"]["max_steps"] == 2 and "model" not in a["sft"]
    assert "system_prompt" not in a["curate"] and a["curate"]["decontaminate"] == []
    b = resolved(parse_recipe(with_(sft={"max_steps": 3}, improve={"rounds": 2})))
    assert changed_keys(a, b) == ["improve.rounds", "sft.max_steps"]


@pytest.mark.parametrize("name", ["cpu-smoke", "cpu-demo", "gpu-qwen2.5-math-1.5b"])
def test_the_resolved_form_is_itself_a_recipe(name):
    r = load_recipe(RECIPES / f"{name}.yaml")
    assert parse_recipe(resolved(r)) == r
