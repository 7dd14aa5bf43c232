"""Every option of the stage commands is declared once, in its config dataclass: the CLI, the
recipe sections and the --dry-run lines are derived from the same fields."""

import ast
import dataclasses
import shlex
from pathlib import Path

import pytest
import typer

from reasonloop import cli
from reasonloop.distill import DistillConfig
from reasonloop.errors import ConfigError
from reasonloop.evaluate.run import EvalConfig, EvalSettings
from reasonloop.explore import ExploreConfig
from reasonloop.generate import Cluster, GenerateConfig, Sampling, SamplingSettings
from reasonloop.options import cli_fields, cli_names, default_of, flags, include, option, to_args
from reasonloop.recipe import config as recipe_config
from reasonloop.recipe.config import load_recipe
from reasonloop.recipe.runner import dry_run
from reasonloop.rel.loop import RELConfig, RELRunConfig
from reasonloop.search.annotate import AnnotateConfig
from reasonloop.train.dpo import DPOSettings
from reasonloop.train.grpo import GRPOSettings
from reasonloop.train.rm import RMSettings
from reasonloop.train.sft import LoraSettings, SFTSettings, TrainerOptions
from reasonloop.train.vstar import VStarSettings

ROOT = Path(__file__).resolve().parents[1]
RM_OTHERS = {
    kind: {n for k, names in cli.RM_ONLY.items() if k != kind for n in names} - set(own)
    for kind, own in cli.RM_ONLY.items()
}
COMMANDS = {
    ("generate",): (GenerateConfig, set()),
    ("explore",): (ExploreConfig, set()),
    ("eval",): (EvalConfig, set()),
    ("distill",): (DistillConfig, set()),
    ("rel",): (RELRunConfig, set()),
    ("annotate-steps",): (AnnotateConfig, set()),
    ("train", "sft"): (SFTSettings, set()),
    ("train", "dpo"): (DPOSettings, set()),
    ("train", "grpo"): (GRPOSettings, set()),
    ("train", "orm"): (RMSettings, RM_OTHERS["orm"]),
    ("train", "prm"): (RMSettings, RM_OTHERS["prm"]),
    ("train", "genrm"): (RMSettings, RM_OTHERS["genrm"]),
    ("train", "vstar"): (VStarSettings, set()),
}


def click_command(path: tuple[str, ...]) -> typer.core.TyperCommand:
    cmd = typer.main.get_command(cli.app)
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return cmd


def declared(cls: type, exclude: set[str]) -> dict[str, tuple]:
    """flag → (help, default) as the config class declares it."""
    out = {}
    for f, spec in cli_fields(cls):
        if f.name in exclude:
            continue
        default = None if spec.required else default_of(f)
        if spec.lora:
            out[flags(f, spec)[0]] = (spec.help, False)
            out[flags(f, spec)[0] + "-r"] = ("LoRA rank (alpha = 2 x rank).", 16)
            continue
        if isinstance(default, tuple):
            default = list(default)
        for flag in flags(f, spec):
            out[flag] = (spec.help, default)
    return out


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_every_cli_option_is_a_config_field_with_its_help_and_default(path):
    cls, exclude = COMMANDS[path]
    want = declared(cls, exclude)
    got = {}
    for p in click_command(path).params:
        if getattr(p, "param_type_name", "") != "option" or p.name == "help":
            continue
        for flag in p.opts:
            got[flag] = (p.help, None if p.required else p.default)
    assert got == want
    # and each flag once (no two fields answer to one flag)
    names = [n for n in cli_names(cls) if n not in {f for x in exclude for f in (x,)}]
    assert len(names) == len(set(names))


def test_the_sampling_stages_take_the_one_cluster_block():
    """--ray, --ray-actors and --ray-cpus: declared once (generate's Cluster block), with the same
    help and defaults on every command that runs on Ray, and on no other stage command."""
    block = declared(Cluster, set())
    assert set(block) == {"--ray", "--ray-actors", "--ray-cpus"}
    on_ray = {("generate",), ("explore",), ("eval",), ("distill",), ("annotate-steps",)}
    for path, (cls, exclude) in COMMANDS.items():
        flags_here = declared(cls, exclude)
        if path in on_ray:
            assert {k: flags_here[k] for k in block} == block, path
        else:
            assert not set(block) & set(flags_here), path


def test_cli_declares_no_option_of_the_stage_commands():
    """cli.py builds those commands from the configs: none of their flags is spelled there."""
    tree = ast.parse((ROOT / "src/reasonloop/cli.py").read_text())
    spelled = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    stage_only = {"--top-p", "--max-tokens", "--max-rollouts", "--lr", "--eval-fraction", "-k"}
    stage_only |= {"--threshold", "--rounds", "--sft-weight", "--pairs-per-problem", "--style"}
    assert not stage_only & spelled
    assert "typer.Option" not in "".join(
        ast.get_source_segment((ROOT / "src/reasonloop/cli.py").read_text(), n) or ""
        for n in tree.body
        if isinstance(n, ast.FunctionDef)
        and n.name
        in (
            "generate",
            "explore",
            "eval_",
            "distill",
            "rel",
            "train_sft_cmd",
            "train_dpo_cmd",
            "train_grpo_cmd",
            "train_vstar_cmd",
        )
    )


def test_one_default_per_option_across_the_sampling_stages():
    """The sampling block's max_tokens and top_p are the same wherever it is included;
    temperature differs only where a stage says so."""
    for cls in (
        SamplingSettings,
        GenerateConfig,
        ExploreConfig,
        DistillConfig,
        EvalSettings,
        EvalConfig,
        RELConfig,
    ):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        assert default_of(fields["max_tokens"]) == 2048, cls
        if "top_p" in fields:
            assert default_of(fields["top_p"]) == 1.0, cls
        assert (
            fields["max_tokens"].metadata
            == {f.name: f for f in dataclasses.fields(Sampling)}["max_tokens"].metadata
        )
    assert ExploreConfig(problems="p", store="s").temperature == 1.0
    assert DistillConfig(problems="p", store="s", teacher="t").temperature == 0.6
    assert GenerateConfig(problems="p", store="s").temperature == 0.7


def test_the_trainer_block_is_shared_with_each_trainers_own_defaults():
    block = {f.name for f in dataclasses.fields(TrainerOptions)}
    for cls, lr in ((SFTSettings, 1e-4), (DPOSettings, 5e-6), (RMSettings, 1e-5)):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        assert block - {"bf16"} <= set(fields)
        assert fields["learning_rate"].default == lr
        assert fields["epochs"].metadata is not None
    assert "bf16" not in {f.name for f in dataclasses.fields(RMSettings)}


def test_recipe_sections_take_the_stage_fields():
    """A recipe's explore / eval sections are the stage configs less what the run fills in
    (explore's also says how its pool is chosen) and less the commands' Ray options."""
    explore = {f.name for f in dataclasses.fields(recipe_config.ExploreConfig)}
    stage = {f.name for f in dataclasses.fields(ExploreConfig)}
    pool = {"order", "probe_rollouts", "probe_limit"}
    cluster = {"ray", "ray_actors", "ray_cpus"}
    assert set(recipe_config.CLUSTER) == cluster and cluster <= stage
    assert explore == stage - set(recipe_config.RUN_FILLED) - cluster | pool
    ev = {f.name for f in dataclasses.fields(recipe_config.EvalConfig)}
    assert ev == {f.name for f in dataclasses.fields(EvalConfig)} - set(
        recipe_config.RUN_FILLED
    ) - {"benchmark", "out"} - cluster | {"benchmarks"}
    teacher = {f.name for f in dataclasses.fields(recipe_config.TeacherConfig)}
    assert not cluster & teacher and cluster <= {f.name for f in dataclasses.fields(DistillConfig)}
    defaults = recipe_config.ExploreConfig(problems="p")
    assert defaults.max_tokens == ExploreConfig(problems="p", store="s").max_tokens


@pytest.mark.parametrize("section", ["teacher", "explore", "eval"])
def test_a_recipe_section_refuses_the_ray_options_of_the_commands(section):
    data = {
        "teacher": {"problems": "countdown-easy"},
        "student": {"model": "tiny"},
        "explore": {"problems": "countdown-hard"},
        "eval": {"benchmarks": ["countdown-easy"]},
    }
    data[section] = {**data[section], "ray": "local"}
    with pytest.raises(ConfigError, match=rf"^{section}\.ray: unknown key; valid keys"):
        recipe_config.parse_recipe(data)


def test_bad_values_name_the_field():
    with pytest.raises(ConfigError) as err:
        GenerateConfig(problems="p", store="s", max_tokens=0)
    assert (err.value.field, str(err.value)) == ("max_tokens", "max_tokens must be >= 1, got 0")
    with pytest.raises(ConfigError) as err:
        SFTSettings("m", "d", "o", learning_rate=0.0)
    assert (err.value.field, err.value.message) == ("learning_rate", "must be > 0, got 0.0")
    with pytest.raises(ConfigError) as err:
        recipe_config.parse_recipe(
            {
                "teacher": {"problems": "countdown-easy", "top_p": 2.0},
                "student": {"model": "tiny"},
                "explore": {"problems": "countdown-hard"},
                "eval": {"benchmarks": ["countdown-easy"]},
            }
        )
    assert err.value.field == "teacher.top_p"
    assert str(err.value) == "teacher.top_p must be <= 1, got 2.0"


def test_include_adds_the_block_with_the_stages_defaults():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Block:
        a: int = option(1, min=0, help="A.")
        b: str = option("x", cli="--bee", help="B.")

    @dataclasses.dataclass(frozen=True, kw_only=True)
    @include(Block, exclude=("b",), a=5)
    class Stage:
        c: int = option(2, help="C.")

    assert [f.name for f in dataclasses.fields(Stage)] == ["c", "a"]
    assert Stage().a == 5 and to_args(Stage(a=7)) == ["--c", "2", "--a", "7"]
    with pytest.raises(TypeError, match="no field"):
        include(Block, z=1)


def _parse_line(line: str) -> tuple[tuple[str, ...], list[str]] | None:
    """The subcommand path and arguments of a ``reasonloop`` line of a script (None otherwise)."""
    argv = shlex.split(line)
    if argv[:1] == ["reasonloop"]:
        argv = argv[1:]
    elif "reasonloop.cli" in argv:
        argv = argv[argv.index("reasonloop.cli") + 1 :]
    else:
        return None
    path = ("train", argv[1]) if argv[0] == "train" else (argv[0],)
    return path, argv[len(path) :]


@pytest.mark.parametrize("recipe", sorted((ROOT / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_dry_run_line_is_a_valid_command(tmp_path, recipe, monkeypatch):
    """``reasonloop run RECIPE --dry-run`` builds every command, and each parses with the CLI
    into the config the run would use (nothing runs)."""
    monkeypatch.chdir(ROOT)
    for cls, _ in COMMANDS.values():  # the line alone says the config: no option from the env
        for _f, spec in cli_fields(cls):
            if spec.envvar:
                monkeypatch.delenv(spec.envvar, raising=False)
    text = dry_run(load_recipe(recipe), tmp_path / "run")
    checked = 0
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        parsed = _parse_line(line)
        if parsed is None or parsed[0][0] not in ("demo", *(p[0] for p in COMMANDS)):
            continue
        path, args = parsed
        cmd = click_command(path)
        ctx = cmd.make_context(" ".join(path), list(args))  # raises on a bad flag
        if path in COMMANDS:
            cls, _ = COMMANDS[path]
            values = dict(ctx.params)
            for f, spec in cli_fields(cls):
                if spec.lora and f.name in values:
                    rank = values.pop(f"{f.name}_r")
                    values[f.name] = (
                        LoraSettings(r=rank, alpha=2 * rank) if values[f.name] else None
                    )
            for f, spec in cli_fields(cls):
                if spec.path and values.get(f.name) is not None:
                    values[f.name] = str(values[f.name])
                if isinstance(values.get(f.name), list):
                    values[f.name] = tuple(values[f.name])
            fixed = {"kind": path[1]} if cls is RMSettings else {}
            config = cls(**fixed, **values)
            # the line says the whole config; a recipe's stages run in its process, not on Ray
            assert to_args(config, skip=recipe_config.CLUSTER) == args
            assert getattr(config, "ray", None) is None
        checked += 1
    assert checked >= 1
