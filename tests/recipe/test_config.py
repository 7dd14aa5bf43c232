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
        (
            with_(teacher={"method": "magic"}),
            "teacher.method must be one of distill, rel, got 'magic'",
        ),
        (
            with_(teacher={"engine": "gpt4"}),
            "teacher.engine must be an engine spec (default, llamacpp:PATH.gguf, hf:PATH, "
            "openai:URL#MODEL[,URL#MODEL...], countdown), got 'gpt4'",
        ),
        (with_(teacher={"n": 0}), "teacher.n must be >= 1, got 0"),
        (
            with_(student={"engine": "vllm"}),
            "student.engine must be one of hf, llamacpp, openai:URL#MODEL, got 'vllm'",
        ),
        (
            with_(student={"engine": "llamacpp", "model": "default", "export_type": "q4_k"}),
            "student.export_type must be one of ['q8_0', 'f16'], got 'q4_k'",
        ),
        (with_(student={"export_type": 8}), "student.export_type: expected a string, got 8"),
        (with_(student={"model": " "}), "student.model must name a model"),
        (
            with_(student={"engine": "llamacpp"}),
            "student.model: the tiny student is sampled in-process (engine: hf)",
        ),
        (with_(control="yes"), "control: expected true or false, got 'yes'"),
        (
            with_(student={"model": "m", "engine": "openai:http://h/v1#{name}"}),
            "student.engine: an openai: student needs launch.serve",
        ),
        (with_(launch={"serve": "vllm serve {model}"}), "launch.serve: set student.engine"),
        (with_(explore={"max_rollouts": 0}), "explore.max_rollouts must be >= 1, got 0"),
        (
            with_(improve={"method": "ppo"}),
            "improve.method must be one of ['rs-sft', 'dpo', 'grpo']",
        ),
        (
            with_(improve={"method": ["rs-sft", "ppo"]}),
            "improve.method must be one of ['rs-sft', 'dpo', 'grpo'] (or a list of them, one per "
            "round), got 'ppo'",
        ),
        (with_(improve={"method": []}), "improve.method give a method, or one per round"),
        (with_(improve={"method": 3}), "improve.method: unexpected value 3"),
        (
            with_(improve={"select": {"by": "random"}}),
            "improve.select.by must be one of ['longest', 'shortest', 'perplexity_high', "
            "'perplexity_low', 'first'], got 'random'",
        ),
        (
            with_(improve={"dpo": {"align": "both"}}),
            "improve.dpo.align must be one of thought, full, got 'both'",
        ),
        (with_(improve={"dpo_from": "base"}), "improve.dpo_from must be one of"),
        (with_(improve={"grpo": {"model": "m"}}), "improve.grpo.model: unknown key"),  # the run's
        (with_(improve={"grpo": {"stage": "g"}}), "improve.grpo.stage: unknown key"),
        (with_(improve={"grpo": {"group_size": 1}}), "improve.grpo.group_size must be >= 2, got 1"),
        (
            with_(improve={"grpo": {"max_completion_length": 8, "overlong_buffer": 8}}),
            "improve.grpo.overlong_buffer must be < max_completion_length (8), got 8",
        ),
        (
            with_(improve={"grpo": {"vllm_mode": "server"}}),
            "improve.grpo.vllm_mode is a vLLM option: set use_vllm too, or leave it out",
        ),
        (
            with_(improve={"grpo": {"use_vllm": True, "vllm_server_port": 8002}}),
            "improve.grpo.vllm_server_port does not apply in vllm_mode colocate",
        ),
        (
            with_(
                launch={"grpo_train": "accelerate launch"}, improve={"grpo": {"logging_steps": 5}}
            ),
            "improve.grpo.logging_steps: `reasonloop train` has no flag for it, so a run under "
            "launch.grpo_train would not get it; remove it or unset launch.grpo_train",
        ),
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
            with_(launch={"train": "accelerate launch"}, sft={"logging_steps": 5}),
            "sft.logging_steps: `reasonloop train` has no flag for it",
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


def test_the_grpo_section_is_train_grpos_options_less_what_the_run_fills():
    """Declared once: each key of improve.grpo is GRPOSettings' field (default, help, range)."""
    import dataclasses

    from reasonloop.recipe.config import GRPO_RUN_FILLED, GRPOSection
    from reasonloop.train.grpo import GRPOSettings

    section = {f.name: f for f in dataclasses.fields(GRPOSection)}
    settings = {f.name: f for f in dataclasses.fields(GRPOSettings)}
    assert set(section) == set(settings) - set(GRPO_RUN_FILLED)
    assert {"model", "problems", "output_dir", "store", "stage", "seed", "resume"} <= set(
        GRPO_RUN_FILLED
    )
    for name, f in section.items():
        assert f.metadata == settings[name].metadata, name
        assert (f.default, f.default_factory) == (
            settings[name].default,
            settings[name].default_factory,
        ), name
    r = parse_recipe(with_(improve={"method": "grpo", "grpo": {"max_steps": 3}}))
    s = r.improve.grpo.settings(model="m", problems="p", output_dir="o", store="s")
    assert (s.max_steps, s.learning_rate, s.group_size) == (3, 1e-6, 8)
    assert resolved(r)["improve"]["grpo"]["max_steps"] == 3


def test_resolved_form_round_trips_and_diffs():
    r = parse_recipe(with_(sft={"max_steps": 2}))
    a = resolved(r)
    assert a["sft"]["max_steps"] == 2 and "model" not in a["sft"]
    assert "system_prompt" not in a["curate"] and a["curate"]["decontaminate"] == []
    b = resolved(parse_recipe(with_(sft={"max_steps": 3}, improve={"rounds": 2})))
    assert changed_keys(a, b) == ["improve.rounds", "sft.max_steps"]


@pytest.mark.parametrize(
    "name",
    [
        "cpu-smoke",
        "cpu-smoke-grpo",
        "cpu-demo",
        "gpu-qwen2.5-math-1.5b",
        "gpu-qwen2.5-math-1.5b-grpo",
        "cpu-smollm2-countdown",
        "cpu-smollm2-countdown-quick",
    ],
)
def test_the_resolved_form_is_itself_a_recipe(name):
    r = load_recipe(RECIPES / f"{name}.yaml")
    assert parse_recipe(resolved(r)) == r


# --- inputs that cannot hurt ----------------------------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        (with_(sft={"learning_rate": float("nan")}), "sft.learning_rate: expected a finite number"),
        (
            with_(sft={"learning_rate": "inf"}),
            "sft.learning_rate: expected a finite number, got inf",
        ),
        (with_(teacher={"threshold": float("-inf")}), "teacher.threshold: expected a finite"),
        (with_(curate={"mix": {"domains": {"math": float("nan")}}}), "curate.mix.domains.math"),
        (with_(teacher={"limit": -1}), "teacher.limit must be >= 0, got -1"),
        (with_(explore={"limit": -2}), "explore.limit must be >= 0, got -2"),
        (with_(eval={"limit": -3}), "eval.limit must be >= 0, got -3"),
        (with_(name="../escape"), "name: '../escape' is not a plain directory name"),
        (with_(name="/tmp/run"), "name: '/tmp/run' is not a plain directory name"),
        (with_(name=".."), "name: '..' is not a plain directory name"),
        (with_(name=""), "name: '' is not a plain directory name"),
        (with_(name="a\nb"), "name: 'a\\nb' is not a plain directory name"),
        ({"kind": "demo", "name": "x/../../y"}, "name: 'x/../../y' is not a plain directory"),
    ],
)
def test_values_that_cannot_be_run_are_refused(data, message):
    with pytest.raises(ConfigError) as err:
        parse_recipe(data)
    assert message in str(err.value)


def test_yaml_nan_and_a_key_given_twice_name_the_file_and_line(tmp_path):
    import yaml

    good = yaml.safe_dump(BASE, sort_keys=False)
    path = tmp_path / "r.yaml"
    path.write_text(good + "sft:\n  learning_rate: .nan\n")
    with pytest.raises(ConfigError) as err:
        load_recipe(path)
    assert str(err.value) == f"{path}: sft.learning_rate: expected a finite number, got nan"
    path.write_text(good + "seed: 1\nseed: 2\n")
    with pytest.raises(ConfigError) as err:
        load_recipe(path)
    lines = path.read_text().splitlines()
    assert str(err.value) == (
        f"{path}:{lines.index('seed: 2') + 1}: duplicate key 'seed' "
        f"(first on line {lines.index('seed: 1') + 1})"
    )
    nested = "teacher:\n  problems: countdown-easy\n  n: 2\n  n: 3\n"
    path.write_text(nested)
    with pytest.raises(ConfigError, match=r"r\.yaml:4: duplicate key 'n' \(first on line 3\)$"):
        load_recipe(path)
    # A key brought in by a << merge may still be overridden, as YAML allows.
    path.write_text(good.replace("eval:\n", "eval:\n  <<: {limit: 5}\n  limit: 2\n"))
    assert load_recipe(path).eval.limit == 2


def test_problem_sets_must_exist_when_a_recipe_is_loaded(tmp_path, monkeypatch):
    import yaml

    monkeypatch.chdir(tmp_path)
    (tmp_path / "seed.jsonl").write_text("")
    path = tmp_path / "r.yaml"
    for section, value, key in [
        ("teacher", {"problems": "countdown-harder"}, "teacher.problems"),
        ("explore", {"problems": "data/hard.jsonl"}, "explore.problems"),
        ("eval", {"benchmarks": ["countdown-easy", "math501"]}, "eval.benchmarks[1]"),
        ("curate", {"decontaminate": ["gsm8k", "gsm9k"]}, "curate.decontaminate[1]"),
    ]:
        path.write_text(yaml.safe_dump(with_(**{section: value})))
        with pytest.raises(ConfigError) as err:
            load_recipe(path)
        bad = value.get("problems") or (value.get("benchmarks") or value["decontaminate"])[-1]
        assert str(err.value) == (
            f"{path}: {key}: {bad!r} is neither a benchmark (math500, aime24, aime25, amc23, "
            "gsm8k, gpqa, humaneval, math-train, countdown-easy|medium|hard) nor an existing "
            "file or directory"
        )
    # Names, aliases, Countdown sets and files relative to the working directory are fine.
    path.write_text(
        yaml.safe_dump(
            with_(
                teacher={"problems": "seed.jsonl"},
                eval={"benchmarks": ["MATH-500", "aime2024", "countdown-hard"]},
            )
        )
    )
    assert load_recipe(path).teacher.problems == "seed.jsonl"


def test_dry_run_refuses_an_unknown_problem_set_and_writes_nothing(tmp_path):
    import subprocess
    import sys

    import yaml

    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(with_(explore={"problems": "countdown-hardest"})))
    out = tmp_path / "run"
    r = subprocess.run(
        [sys.executable, "-c", "from reasonloop.cli import main; main()", "run", str(path),
         "--out", str(out), "--dry-run"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr == (
        f"error: {path}: explore.problems: 'countdown-hardest' is neither a benchmark (math500, "
        "aime24, aime25, amc23, gsm8k, gpqa, humaneval, math-train, countdown-easy|medium|hard) "
        "nor an existing file or directory\n"
    )
    assert not out.exists()
