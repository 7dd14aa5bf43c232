"""The recipe schema: a YAML file validated into frozen dataclasses.

Two kinds of recipe:

- ``kind: loop`` — imitate → explore → self-improve with real engines and a trainable student
  (:class:`LoopRecipe`): ``teacher``, ``curate``, ``student``, ``sft``, ``explore``, ``improve``,
  ``eval`` and an optional ``launch`` section for GPU runs;
- ``kind: demo`` — the CPU demo on Countdown; its ``demo`` section holds
  :class:`reasonloop.demo.run.DemoConfig` fields.

Every key is checked: an unknown key, a key given twice, a value of the wrong type, out of range
or not finite (``.nan``, ``.inf``) is a :class:`~reasonloop.errors.ConfigError` naming the file and
the dotted key (``sft.max_steps``). Training sections hold the library's own settings
(``SFTSettings``, ``DPOSettings`` without their paths, which the run fills in; ``improve.grpo``
``GRPOSettings``' options less what the run fills in), so a recipe says exactly what ``reasonloop
train`` would get. The run's ``name`` must be a plain directory name (the
run goes to ``runs/NAME``, never outside it).

:func:`load_recipe` also checks that every problem set names a benchmark, a Countdown set or an
existing file or directory (relative to the working directory, as the stages read them);
:func:`parse_recipe` checks the mapping alone. Neither checks that models or servers exist: that
happens when a stage runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reasonloop.curate.run import CurateConfig, SelectConfig
from reasonloop.demo.run import DemoConfig
from reasonloop.distill import DistillConfig
from reasonloop.engines import SPEC_FORMS, parse_engine_spec
from reasonloop.engines.export import EXPORT_TYPES
from reasonloop.errors import ConfigError
from reasonloop.evaluate.run import EvalConfig as EvalStage
from reasonloop.explore import ExploreConfig as ExploreStage
from reasonloop.generate import Cluster
from reasonloop.options import check_options, cli_fields, include, option
from reasonloop.problems import check_problem_spec
from reasonloop.records import load_union
from reasonloop.rel.loop import RELRunConfig
from reasonloop.train.dpo import DPOSettings
from reasonloop.train.grpo import GRPOSettings
from reasonloop.train.sft import LoraSettings, SFTSettings
from reasonloop.train.vstar import VStarSettings

KINDS = ("loop", "demo")
TEACHER_METHODS = ("distill", "rel")
IMPROVE_METHODS = ("rs-sft", "dpo", "grpo")
DPO_FROM = ("imitate", "previous")  # STILL-2 starts every round's DPO from the imitated model
POOL_ORDERS = ("level", "pass_rate", "none")
VERIFIERS = ("none", "vstar")  # a verifier trained after each explore round
# what the run fills in for the verifier: where it starts and saves, the rollouts it reads
VSTAR_FILLED = ("model", "output_dir", "store", "stages", "data", "system_prompt")
# engine specs a recipe may name; ``countdown`` is the programmatic Countdown teacher
PATHS = ("model", "data", "output_dir")  # filled in by the run, never by the recipe
TINY = "tiny"


def check_engine_spec(spec: str, key: str) -> None:
    """The spec has one of the engine forms (engines' one grammar; nothing is loaded)."""
    try:
        parse_engine_spec(spec)
    except ConfigError:
        forms = ", ".join(SPEC_FORMS)
        raise ConfigError(f"must be an engine spec ({forms}), got {spec!r}", field=key) from None


def _at_least(obj: Any, name: str, low: int) -> None:
    value = getattr(obj, name)
    if value is not None and value < low:
        raise ConfigError(f"must be >= {low}, got {value}", field=name)


# what the run fills in for every stage (never the recipe): where it reads and writes, the engine
# of the model being sampled, the stage tag, the recipe-wide seed / system prompt / data directory
RUN_FILLED = (
    "store",
    "engine",
    "stage",
    "seed",
    "data_dir",
    "gpqa_password",
    "unsafe_code_exec",
    "system_prompt",
)


# the stages' Ray options (``--ray``, ``--ray-actors``, ``--ray-cpus``) are the commands' alone: the
# recipe runner runs its stages in its own process, so a recipe section does not take them
CLUSTER = tuple(f.name for f in dataclasses.fields(Cluster))


def stage_config(cls: type, section: Any, **run: Any) -> Any:
    """The stage config ``cls`` of a recipe section: the section's values of ``cls``'s fields
    plus what the run fills in (``run``)."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}
    return cls(**{**{k: v for k, v in values.items() if k in names}, **run})


@dataclass(frozen=True, slots=True, kw_only=True)
@include(RELRunConfig, exclude=("generator", "critic", *RUN_FILLED))
@include(DistillConfig, exclude=("teacher", *RUN_FILLED, *CLUSTER))
class TeacherConfig:
    """Where imitation data comes from: ``distill`` K responses per problem from a teacher engine
    (the ``distill`` command's options), or ``rel`` (ReasonSet's generate → critique → refine
    loop, ``engine`` writing, ``critic`` scoring: the ``rel`` command's options). The options
    both share (problems, limit, temperature, max_tokens) take distill's defaults."""

    engine: str = option("default", cli=None, help="The teacher's (rel: the writer's) engine.")
    method: str = option("distill", cli=None, choices=TEACHER_METHODS, help="distill | rel")
    critic: str | None = option(None, cli=None, help="rel: the critic engine (default: engine).")

    def __post_init__(self) -> None:
        check_options(self)
        check_engine_spec(self.engine, "engine")
        for name in ("completer", "critic"):
            if getattr(self, name) is not None:
                check_engine_spec(getattr(self, name), name)

    def distill(self, **run: Any) -> DistillConfig:
        return stage_config(DistillConfig, self, teacher=self.engine, **run)

    def rel(self, **run: Any) -> RELRunConfig:
        return stage_config(
            RELRunConfig, self, generator=self.engine, critic=self.critic or self.engine, **run
        )


@dataclass(frozen=True, slots=True)
class CurateSection:
    """The imitation set's curation (``reasonloop.curate`` settings) and the benchmarks whose
    problems are removed from it."""

    config: CurateConfig = CurateConfig()
    decontaminate: tuple[str, ...] = ()


STUDENT_ENGINES = ("hf", "llamacpp", "openai:URL#MODEL")
DEFAULT_STUDENT = "default"  # the packaged GGUF (SmolLM2-135M-Instruct), converted to train


@dataclass(frozen=True, slots=True)
class StudentConfig:
    """The model trained. ``model``: a transformers directory or hub id; ``default`` (the packaged
    GGUF, SmolLM2-135M-Instruct) or a ``.gguf`` file, converted once (into the cache, as
    ``reasonloop convert`` does) and trained from there; or ``tiny`` (a ~50k parameter Llama with a
    character tokenizer, built in the run directory: a smoke test, it learns nothing useful).
    ``engine``: ``hf`` samples each checkpoint in this process through transformers;
    ``llamacpp`` exports each checkpoint it samples to a GGUF of type ``export_type`` (step
    ``export-NAME``, ``gguf/NAME.TYPE.gguf``) and samples it through llama.cpp;
    ``openai:URL#{name}`` reaches the server ``launch.serve`` starts on each checkpoint."""

    model: str
    engine: str = "hf"
    batch_size: int = 16  # hf: sequences decoded together
    export_type: str = "q8_0"  # llamacpp: the exported GGUFs' weight type

    def __post_init__(self) -> None:
        if self.engine not in ("hf", "llamacpp") and not self.engine.startswith("openai:"):
            raise ConfigError(
                f"must be one of {', '.join(STUDENT_ENGINES)}, got {self.engine!r}", field="engine"
            )
        if self.export_type not in EXPORT_TYPES:
            raise ConfigError(
                f"must be one of {list(EXPORT_TYPES)}, got {self.export_type!r}",
                field="export_type",
            )
        if not self.model.strip():
            raise ConfigError(
                "must name a model (a directory, hub id, .gguf, default or tiny)", field="model"
            )
        _at_least(self, "batch_size", 1)

    @property
    def from_gguf(self) -> bool:
        """The backbone is a GGUF converted in the run (``default`` or a ``.gguf`` file)."""
        return self.model == DEFAULT_STUDENT or self.model.lower().endswith(".gguf")


@dataclass(frozen=True, slots=True, kw_only=True)
@include(ExploreStage, exclude=(*RUN_FILLED, *CLUSTER))
class ExploreConfig:
    """Rollouts on hard problems until one is correct or ``max_rollouts`` are spent: the
    ``explore`` command's options, less what the run fills in, plus how the pool is chosen
    (:mod:`reasonloop.recipe.pool`): ``problems`` less every problem the teacher was distilled on,
    hardest first by ``order``, the first ``limit`` of them."""

    limit: int | None = option(
        None,
        min=0,
        cli=None,
        help="The pool's size: the first N unseen problems in `order` (unset: all of them).",
    )
    order: str = option(
        "level",
        cli=None,
        choices=POOL_ORDERS,
        help="How the pool is made hard: `level` (highest level first; problems without one "
        "last), `pass_rate` (lowest pass rate of the imitated model on `probe_rollouts` samples "
        "first) or `none` (the set's order). Ties in an order fixed by the seed.",
    )
    probe_rollouts: int = option(
        4, min=1, cli=None, help="pass_rate: rollouts per problem in the imitated model's probe."
    )
    probe_limit: int | None = option(
        None,
        min=1,
        cli=None,
        help="pass_rate: probe at most N unseen problems (in seed order); unset: all of them.",
    )

    def __post_init__(self) -> None:
        check_options(self)

    def stage(self, **run: Any) -> ExploreStage:
        return stage_config(ExploreStage, self, **run)


# what the run fills in for a GRPO round: its start and end models, the pool, its store stage, and
# resume (a killed round continues from its last checkpoint, its rollouts stored once)
GRPO_RUN_FILLED = ("model", "problems", "output_dir", "limit", "resume", *RUN_FILLED)


@dataclass(frozen=True, slots=True, kw_only=True)
@include(GRPOSettings, exclude=GRPO_RUN_FILLED)
class GRPOSection:
    """A GRPO round (``improve.method: grpo``): the ``train grpo`` command's options, less what the
    run fills in (:data:`GRPO_RUN_FILLED`)."""

    def __post_init__(self) -> None:
        check_options(self)
        self.settings(model="", problems="", output_dir="", store="")  # GRPOSettings' own checks

    def settings(self, **run: Any) -> GRPOSettings:
        return stage_config(GRPOSettings, self, **run)


@dataclass(frozen=True, slots=True)
class ImproveConfig:
    """Self-improvement rounds. ``rs-sft``: train the *backbone* on D_i = D_0 + the correct
    explored rollouts of rounds 1..i chosen by ``select``; ``dpo``: thought-only DPO (plus the SFT
    term of ``dpo.sft_weight``) on pairs from round i's rollouts, starting from the imitated model
    in every round (``dpo_from: imitate``, as STILL-2 does) or from the previous round's model
    (``previous``); ``grpo``: online RL on the explore pool with the graders as reward
    (``grpo``'s options), round 1 from the imitated model, each later round from the previous
    one. ``method`` may be a list, one method per round (the last repeating): ``[rs-sft, grpo]``
    is an RS-SFT round and then a GRPO round from its model (:meth:`method_of`).

    ``verifier: vstar`` also trains a V-STaR verifier after each round ``i``
    (``models/vstar-rI``, :mod:`reasonloop.train.vstar`): DPO from the imitated (SFT) model on the
    labelled rollouts of explore rounds 1..i, with the ``vstar`` settings. With ``rs-sft`` this is
    the V-STaR iteration: each round's generator is the backbone fine-tuned on correct solutions,
    each round's verifier sees every round's solutions so far."""

    method: str | tuple[str, ...] = "rs-sft"
    rounds: int = 1
    select: SelectConfig = SelectConfig(by="longest")
    pairs_per_problem: int = 1
    dpo: DPOSettings = DPOSettings("", "", "", sft_weight=1.0)
    dpo_from: str = "imitate"
    grpo: GRPOSection = GRPOSection()
    verifier: str = "none"
    vstar: VStarSettings = VStarSettings("", "")

    def __post_init__(self) -> None:
        if self.verifier not in VERIFIERS:
            raise ConfigError(
                f"must be one of {list(VERIFIERS)}, got {self.verifier!r}", field="verifier"
            )
        methods = (self.method,) if isinstance(self.method, str) else self.method
        if not methods:
            raise ConfigError(
                f"give a method, or one per round, from {list(IMPROVE_METHODS)}", field="method"
            )
        for m in methods:
            if m not in IMPROVE_METHODS:
                raise ConfigError(
                    f"must be one of {list(IMPROVE_METHODS)} (or a list of them, one per round), "
                    f"got {m!r}",
                    field="method",
                )
        if self.dpo_from not in DPO_FROM:
            raise ConfigError(
                f"must be one of {list(DPO_FROM)}, got {self.dpo_from!r}", field="dpo_from"
            )
        _at_least(self, "rounds", 0)
        _at_least(self, "pairs_per_problem", 1)

    def method_of(self, round_: int) -> str:
        """Round ``round_``'s method (from 1): ``method``, or its entry for that round, the last
        entry repeating for later rounds."""
        if isinstance(self.method, str):
            return self.method
        return self.method[min(round_, len(self.method)) - 1]

    def methods(self) -> tuple[str, ...]:
        """The methods of rounds 1..``rounds``, in order."""
        return tuple(self.method_of(i) for i in range(1, self.rounds + 1))


@dataclass(frozen=True, slots=True, kw_only=True)
@include(EvalStage, exclude=("benchmark", "out", *RUN_FILLED, *CLUSTER))
class EvalConfig:
    """Evaluation after every stage (backbone, imitate, each round) on every benchmark: the
    ``eval`` command's options, less what the run fills in."""

    benchmarks: tuple[str, ...] = option(cli=None, help="Benchmarks or problems files.")

    def __post_init__(self) -> None:
        if not self.benchmarks:
            raise ConfigError(
                "must name at least one benchmark or problems file", field="benchmarks"
            )
        check_options(self)
        self.stage(benchmark="", out="")  # the strategy's own checks

    def stage(self, **run: Any) -> EvalStage:
        return stage_config(EvalStage, self, **run)


@dataclass(frozen=True, slots=True)
class LaunchConfig:
    """How a GPU run starts its processes. ``train``: a launcher that runs
    ``-m reasonloop.cli train sft|dpo ...`` (e.g. ``accelerate launch --config_file zero2.yaml``);
    unset, training runs in this process. ``serve``: the command that serves one student
    checkpoint (``{model}`` its path, ``{name}`` its name: backbone, imitate, round-1, ...), started
    for the stages that sample it and stopped after. ``teacher_serve``: the same for the teacher
    during distillation (unset: the teacher's server is already running, or it needs none).
    ``grpo_train``: the launcher of the GRPO rounds (unset: ``train``; in vLLM server mode it must
    leave the server's GPUs free, e.g. ``env CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6 accelerate launch
    --num_processes 7 ...``). ``vllm_serve``: GRPO in vLLM server mode (``improve.grpo.vllm_mode:
    server``): the program that serves each round's starting policy for TRL, the run adding
    ``--model`` and the host and port of ``improve.grpo`` (e.g. ``env CUDA_VISIBLE_DEVICES=7 trl
    vllm-serve``)."""

    train: str | None = None
    serve: str | None = None
    teacher_serve: str | None = None
    grpo_train: str | None = None  # the launcher of GRPO rounds (unset: train)
    vllm_serve: str = "trl vllm-serve"
    ready_timeout: float = 1800.0  # seconds to wait for a server's /models to answer

    def __post_init__(self) -> None:
        if self.ready_timeout <= 0:
            raise ConfigError(f"must be > 0, got {self.ready_timeout}", field="ready_timeout")


@dataclass(frozen=True, slots=True)
class LoopRecipe:
    name: str
    teacher: TeacherConfig
    student: StudentConfig
    explore: ExploreConfig
    eval: EvalConfig
    kind: str = "loop"
    seed: int = 0
    data_dir: str | None = None  # benchmark data directory (else $REASONLOOP_DATA, else the hub)
    system_prompt: bool = True  # the student's prompts (curated rows, explore, eval) carry it
    curate: CurateSection = CurateSection()
    sft: SFTSettings = SFTSettings("", "", "")
    improve: ImproveConfig = ImproveConfig()
    launch: LaunchConfig = LaunchConfig()
    # the answer-only control: the backbone trained on D_0's problems with answer-only solutions,
    # for as many training tokens as imitation took (see ``Loop._control``), evaluated like the rest
    control: bool = False


@dataclass(frozen=True, slots=True)
class DemoRecipe:
    name: str
    demo: DemoConfig = field(default_factory=DemoConfig)
    kind: str = "demo"


Recipe = LoopRecipe | DemoRecipe

# settings of ``train sft`` / ``train dpo`` that have a CLI flag (a launched run gets only these)
SFT_FLAGS = frozenset(f.name for f, _ in cli_fields(SFTSettings))
DPO_FLAGS = frozenset(f.name for f, _ in cli_fields(DPOSettings))
GRPO_FLAGS = frozenset(f.name for f, _ in cli_fields(GRPOSettings))
VSTAR_FLAGS = frozenset(f.name for f, _ in cli_fields(VStarSettings))


# -- loading -----------------------------------------------------------------------------------


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: recipe not found") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    except _DuplicateKey as exc:
        raise ConfigError(f"{path}:{exc}") from None
    try:
        recipe = parse_recipe(data if data is not None else {}, default_name=path.stem)
        check_problem_sets(recipe)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return recipe


class _DuplicateKey(Exception):
    """A mapping gives a key twice (its message: ``LINE: duplicate key ...``)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error (PyYAML
    keeps the last one silently). Keys brought in by a ``<<`` merge may still be overridden."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.setdefault(key, line)
            except TypeError:  # an unhashable key: PyYAML's own error says so below
                continue
            if first != line:
                raise _DuplicateKey(f"{line}: duplicate key {key!r} (first on line {first})")
        return super().construct_mapping(node, deep=deep)


def check_problem_sets(recipe: Recipe) -> None:
    """Every problem set of a loop recipe names a benchmark, a Countdown set, or an existing file
    or directory (see :func:`reasonloop.problems.check_problem_spec`); nothing is loaded."""
    if not isinstance(recipe, LoopRecipe):
        return
    specs = [
        ("teacher.problems", recipe.teacher.problems),
        ("explore.problems", recipe.explore.problems),
        *((f"eval.benchmarks[{i}]", b) for i, b in enumerate(recipe.eval.benchmarks)),
        *((f"curate.decontaminate[{i}]", b) for i, b in enumerate(recipe.curate.decontaminate)),
    ]
    for key, spec in specs:
        check_problem_spec(spec, key=f"{key}:")


def parse_recipe(data: Any, *, default_name: str = "run") -> Recipe:
    """Validate a recipe mapping (what the YAML file holds)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"a recipe must be a mapping of keys, got {type(data).__name__}")
    kind = data.get("kind", "loop")
    if kind not in KINDS:
        raise ConfigError(f"kind: must be one of {list(KINDS)}, got {kind!r}")
    data = {"name": default_name, **data}
    name = _run_name(data["name"])
    if kind == "demo":
        _reject_unknown(data, {"kind", "name", "demo"}, "")
        demo = build(DemoConfig, data.get("demo"), "demo", skip={"out"})
        return DemoRecipe(name=name, demo=demo)
    valid = {f.name for f in dataclasses.fields(LoopRecipe)}
    _reject_unknown(data, valid, "")
    for key in ("teacher", "student", "explore", "eval"):
        if key not in data:
            raise ConfigError(f"{key}: required section is missing")
    seed = _typed(data.get("seed", 0), int, "seed")
    launch = build(LaunchConfig, data.get("launch"), "launch")
    sft = build(SFTSettings, data.get("sft"), "sft", skip=set(PATHS), defaults={"seed": seed})
    sft = dataclasses.replace(sft, model="", data="", output_dir="")
    recipe = LoopRecipe(
        name=name,
        seed=seed,
        data_dir=_typed(data.get("data_dir"), str | None, "data_dir"),
        system_prompt=_typed(data.get("system_prompt", True), bool, "system_prompt"),
        control=_typed(data.get("control", False), bool, "control"),
        teacher=build(TeacherConfig, data["teacher"], "teacher"),
        curate=_curate_section(data.get("curate")),
        student=build(StudentConfig, data["student"], "student"),
        sft=sft,
        explore=build(ExploreConfig, data["explore"], "explore"),
        improve=_improve_section(data.get("improve"), seed),
        eval=build(EvalConfig, data["eval"], "eval"),
        launch=launch,
    )
    _check_launch(recipe)
    return recipe


def _run_name(value: Any) -> str:
    """The run's name: one plain path component, so that ``runs/NAME`` stays inside ``runs/``."""
    name = _typed(value, str, "name")
    if (
        not name.strip()
        or name in (".", "..")
        or any(c in name for c in "/\\")
        or not name.isprintable()
    ):
        raise ConfigError(
            f"name: {name!r} is not a plain directory name (the run goes to runs/NAME); use "
            "letters, digits, '-', '_' and '.', without '/', or set the directory with --out"
        )
    return name


def _curate_section(data: Any) -> CurateSection:
    data = _mapping(data, "curate")
    if "system_prompt" in data:
        raise ConfigError(
            "curate.system_prompt: set the top-level system_prompt instead (it also applies to "
            "explore and eval, which must match what the student was trained on)"
        )
    decon = _typed(data.get("decontaminate", []), tuple[str, ...], "curate.decontaminate")
    rest = {k: v for k, v in data.items() if k != "decontaminate"}
    cfg = build(CurateConfig, rest, "curate", skip={"system_prompt"}, extra_valid={"decontaminate"})
    return CurateSection(config=cfg, decontaminate=decon)


def _improve_section(data: Any, seed: int) -> ImproveConfig:
    data = _mapping(data, "improve")
    dpo = build(
        DPOSettings,
        data.get("dpo"),
        "improve.dpo",
        skip=set(PATHS),
        defaults={"sft_weight": 1.0, "seed": seed},
    )
    grpo = build(GRPOSection, data.get("grpo"), "improve.grpo")
    vstar = build(
        VStarSettings,
        data.get("vstar"),
        "improve.vstar",
        skip=set(VSTAR_FILLED),
        defaults={"seed": seed},
    )
    sub = {"dpo", "grpo", "vstar"}
    rest = {k: v for k, v in data.items() if k not in sub}
    cfg = build(ImproveConfig, rest, "improve", skip=sub, extra_valid=sub)
    return dataclasses.replace(
        cfg,
        dpo=dataclasses.replace(dpo, model="", data="", output_dir=""),
        grpo=grpo,
        vstar=dataclasses.replace(vstar, model="", output_dir=""),
    )


def _check_launch(r: LoopRecipe) -> None:
    """Settings that only make sense together."""
    if r.student.engine.startswith("openai:") and not r.launch.serve:
        raise ConfigError(
            "student.engine: an openai: student needs launch.serve, the command that serves each "
            "checkpoint (e.g. 'vllm serve {model} --port 8001 --served-model-name {name}')"
        )
    if r.launch.serve and not r.student.engine.startswith("openai:"):
        raise ConfigError(
            "launch.serve: set student.engine to the server's spec, e.g. "
            "'openai:http://127.0.0.1:8001/v1#{name}'"
        )
    if r.launch.teacher_serve and not r.teacher.engine.startswith("openai:"):
        raise ConfigError("launch.teacher_serve: teacher.engine must be the server's openai: spec")
    if r.student.model == TINY and r.student.engine != "hf":
        raise ConfigError("student.model: the tiny student is sampled in-process (engine: hf)")
    # a launched run gets the CLI's flags only: refuse settings that would be silently lost
    launched = []
    if r.launch.train:
        launched += [
            ("sft", r.sft, SFT_FLAGS, SFTSettings("", "", ""), "train"),
            ("improve.dpo", r.improve.dpo, DPO_FLAGS, DPOSettings("", "", ""), "train"),
            ("improve.vstar", r.improve.vstar, VSTAR_FLAGS, VStarSettings("", ""), "train"),
        ]
    if r.launch.grpo_train or r.launch.train:
        key = "grpo_train" if r.launch.grpo_train else "train"
        launched.append(("improve.grpo", r.improve.grpo, GRPO_FLAGS, GRPOSection(), key))
    for section, settings, flags, default, key in launched:
        for f in dataclasses.fields(settings):
            if f.name in PATHS or f.name in flags:
                continue
            if getattr(settings, f.name) != getattr(default, f.name):
                raise ConfigError(
                    f"{section}.{f.name}: `reasonloop train` has no flag for it, so a run "
                    f"under launch.{key} would not get it; remove it or unset launch.{key}"
                )
        lora = settings.lora
        if lora is not None and lora != LoraSettings(r=lora.r, alpha=2 * lora.r):
            raise ConfigError(
                f"{section}.lora: under launch.{key} only lora.r can be set (alpha = 2r)"
            )


# -- a small validating builder ------------------------------------------------------------------


def build(
    cls: type,
    data: Any,
    where: str,
    *,
    skip: set[str] = frozenset(),  # type: ignore[assignment]
    defaults: Mapping[str, Any] | None = None,
    extra_valid: set[str] = frozenset(),  # type: ignore[assignment]
) -> Any:
    """``cls(**data)`` with every key and value checked against ``cls``'s fields and type hints.
    ``skip``: fields the recipe may not set (they keep their defaults, or "" when required);
    ``defaults``: values used when the recipe leaves a field out."""
    data = _mapping(data, where)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    _reject_unknown(data, set(fields) | extra_valid, where)
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = dict(defaults or {})
    for name, value in data.items():
        if name in fields:
            kwargs[name] = _typed(value, hints[name], _key(where, name))
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and f.name not in kwargs:
            if f.name in skip:
                kwargs[f.name] = ""
            else:
                raise ConfigError(f"{_key(where, f.name)}: required key is missing")
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        if exc.field is None:
            raise ConfigError(exc.message, where=where or None) from None
        raise ConfigError(exc.message, field=_key(where, exc.field)) from None
    except TypeError as exc:  # a field the section does not take
        raise ConfigError(f"{where}: {exc}" if where else str(exc)) from None


def _key(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _mapping(data: Any, where: str) -> Mapping[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of keys, got {data!r}")
    for k in data:
        if not isinstance(k, str):
            raise ConfigError(f"{where}: keys must be strings, got {k!r}")
    return data


def _reject_unknown(data: Mapping[str, Any], valid: set[str], where: str) -> None:
    unknown = sorted(set(data) - valid)
    if unknown:
        place = f"under {where}" if where else "at the top level"
        raise ConfigError(
            f"{_key(where, unknown[0])}: unknown key; valid keys {place}: {', '.join(sorted(valid))}"
        )


_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _typed(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked (and converted: lists to tuples, ints to floats) against the hint ``tp``."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{key}: a value is required")
        if value is True and any(dataclasses.is_dataclass(a) for a in args):
            cls = next(a for a in args if dataclasses.is_dataclass(a))
            return cls()  # ``lora: true`` means the default LoRA settings
        if value is False and type(None) in args:
            return None
        return load_union(
            tp,
            lambda arg: _typed(value, arg, key),
            ConfigError,
            lambda errors: (
                errors[0] if len(errors) == 1 else ConfigError(f"{key}: unexpected value {value!r}")
            ),
        )
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key)  # type: ignore[arg-type]
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        item = typing.get_args(tp)[0]
        return tuple(_typed(v, item, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        sub = _mapping(value, key)
        args = typing.get_args(tp)
        if len(args) == 2:
            return {k: _typed(v, args[1], _key(key, k)) for k, v in sub.items()}
        return dict(sub)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-5 (no dot) as a string
            with contextlib.suppress(ValueError):  # left as text: "expected a number" below
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


# -- the resolved form -------------------------------------------------------------------------------


def resolved(recipe: Recipe) -> dict[str, Any]:
    """The recipe with every default filled in, as plain YAML-able data (``resolved.yaml``)."""
    if isinstance(recipe, DemoRecipe):
        demo = {k: v for k, v in _plain(recipe.demo).items() if k != "out"}
        return {"kind": "demo", "name": recipe.name, "demo": demo}
    out: dict[str, Any] = {"kind": recipe.kind, "name": recipe.name}
    for f in dataclasses.fields(recipe):
        if f.name in ("kind", "name"):
            continue
        value = getattr(recipe, f.name)
        if f.name == "curate":
            value = {
                **{k: v for k, v in _plain(value.config).items() if k != "system_prompt"},
                "decontaminate": list(value.decontaminate),
            }
        elif f.name == "sft":
            value = {k: v for k, v in _plain(value).items() if k not in PATHS}
        elif f.name == "improve":
            value = _plain(value)
            value["dpo"] = {k: v for k, v in value["dpo"].items() if k not in PATHS}
            value["vstar"] = {k: v for k, v in value["vstar"].items() if k not in VSTAR_FILLED}
        else:
            value = _plain(value)
        out[f.name] = value
    return out


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved recipes."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            out += changed_keys(old.get(k), new.get(k), _key(prefix, str(k)))
        return out
    return [] if old == new else [prefix or "(recipe)"]


__all__ = [
    "CurateSection",
    "DemoRecipe",
    "EvalConfig",
    "ExploreConfig",
    "ImproveConfig",
    "LaunchConfig",
    "LoopRecipe",
    "Recipe",
    "StudentConfig",
    "TeacherConfig",
    "build",
    "changed_keys",
    "check_problem_sets",
    "load_recipe",
    "parse_recipe",
    "resolved",
]
