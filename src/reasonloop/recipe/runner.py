"""Run a recipe into one run directory, resumably: imitate → explore → self-improve, evaluated after
every stage.

The steps of a loop recipe, in order (``R`` = ``improve.rounds``, ``B`` = each benchmark; each
round ``I`` has the steps of its method, ``improve.method_of(I)``)::

    backbone            build the tiny student (student.model: tiny), or convert the GGUF
                        (student.model: default or FILE.gguf) once into the cache
    export-backbone     (student.engine: llamacpp; also export-imitate, export-round-I,
                        export-control, each after the model is trained) the checkpoint as
                        gguf/NAME.TYPE.gguf, which every later step samples through llama.cpp
    eval-backbone-B     greedy eval of the untrained student
    distill | rel       teacher responses (or REL chains) into the store
    curate-imitate      filters, dedup, selection → D_0 (data/imitate/train.jsonl)
    sft-imitate         SFT of the backbone on D_0 → models/imitate
    explore-pool        (R > 0) the explore set less the distilled problems, hardest first
                        (by level, or by the imitated model's pass rate) → data/explore-pool.jsonl
    eval-imitate-B
    explore-rI          the previous model samples the pool, up to K rollouts per problem
    rs-data-rI, sft-rI  (rs-sft) D_I = D_0 + the correct rollouts of rounds 1..I's explore steps
                        (GRPO rounds have none) that pass D_0's cleaning (the same curate
                        filters, dedup and decontamination), selected;
                        SFT of the *backbone* on D_I → models/round-I
    dpo-pairs-rI, dpo-rI  (dpo) pairs from round I's rollouts; thought-only DPO + SFT term from the
                        imitated model (or, with ``dpo_from: previous``, the previous round's)
                        → models/round-I
    grpo-rI             (grpo; no explore step: GRPO samples the pool itself) GRPO on the pool
                        from the previous model (round 1: the imitated one), every rollout stored
                        under stage grpo-rI → models/round-I
    eval-round-I-B
    vstar-rI            (improve.verifier: vstar) a V-STaR verifier, DPO from models/imitate on the
                        labelled rollouts of rounds 1..I → models/vstar-rI
    control-data, sft-control, eval-control-B
                        (control: true) the answer-only control: D_0's problems with answer-only
                        responses (:mod:`reasonloop.recipe.control`); SFT of the backbone for as
                        many training tokens as sft-imitate (its steps scaled by the ratio of
                        mean tokens per row, D_0 over control; same batch) → models/control

A finished step leaves ``steps/NAME.json`` (its summary) and is skipped when the run is started
again; a step killed half-way starts over, except the stages that keep their own progress —
distill, rel, explore (the store) and eval (``evals/MODEL/B/samples.db``) — which continue where
they stopped. Training restarts from its initial model (no mid-training checkpoints), except a GRPO
round, which continues from its last checkpoint (``improve.grpo.save_steps``) and stores the
rollouts it redoes once.

With ``launch.serve`` each checkpoint a step samples from is served by a process this run starts
and stops (one start for consecutive steps on the same checkpoint); with ``launch.train`` training
runs as ``LAUNCHER -m reasonloop.cli train ...`` in a subprocess, its output in ``logs/``. A GRPO
round in vLLM server mode has ``launch.vllm_serve`` serve its starting policy while it trains.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import yaml

from reasonloop.curate.run import MixConfig, curate, store_rows
from reasonloop.demo.run import DemoConfig
from reasonloop.distill import run_distill
from reasonloop.engines import load_engine
from reasonloop.engines.convert import default_out_dir, gguf_to_hf
from reasonloop.engines.export import export_gguf
from reasonloop.engines.hf import HFEngine
from reasonloop.engines.llamacpp import default_model_path
from reasonloop.errors import ConfigError, DataError, ReasonloopError
from reasonloop.evaluate.run import evaluate
from reasonloop.explore import run_explore
from reasonloop.generate import code_boundary, perplexity_scorer
from reasonloop.problems import resolve_problems
from reasonloop.progress import LogReporter, Reporter
from reasonloop.recipe import commands as cmd
from reasonloop.recipe.config import (
    DEFAULT_STUDENT,
    TINY,
    DemoRecipe,
    ImproveConfig,
    LaunchConfig,
    LoopRecipe,
    Recipe,
    _plain,
    changed_keys,
    resolved,
)
from reasonloop.recipe.control import answer_only_rows
from reasonloop.recipe.demo import run_demo
from reasonloop.recipe.pairs import preference_rows, write_rows
from reasonloop.recipe.pool import choose_pool, describe, write_pool
from reasonloop.recipe.report import percent, write_report
from reasonloop.recipe.servers import Serve, ServerProcess, ready_url
from reasonloop.recipe.steps import Step, run_steps
from reasonloop.recipe.steps import marker as step_marker
from reasonloop.recipe.tiny import build_tiny
from reasonloop.rel.loop import run_rel_stage
from reasonloop.store import open_store
from reasonloop.train.dpo import train_dpo
from reasonloop.train.grpo import TRL_VLLM_HOST, TRL_VLLM_PORT, GRPOSettings, train_grpo
from reasonloop.train.sft import add_format_tokens, read_conversations, train_sft
from reasonloop.train.vstar import store_solutions, train_vstar, vstar_pairs

log = logging.getLogger(__name__)

# keys a resumed run may change: more (or fewer) rounds, the control (steps at the end), and how
# processes are launched
RESUMABLE_CHANGES = ("improve.rounds", "control", "launch.")
# demo keys a resumed run may change: its steps are per seed, and GRPO's come after the others and
# are named by their budget, so more seeds, GRPO turned on or another budget only add steps (exact
# keys: GRPO's other settings may not change)
RESUMABLE_KEYS = frozenset({"demo.seeds", "demo.grpo", "demo.grpo_budget"})
# keys added since runs were made: absent from an older run's resolved.yaml, that run did what
# their default says
ADDED_KEYS = {
    "student.export_type": "q8_0",
    # off since TRL's default (on) was found to cost compute; the same numbers either way
    **{
        f"{section}.gradient_checkpointing": False
        for section in ("sft", "improve.dpo", "improve.grpo", "improve.vstar")
    },
    **{
        f"demo.{f.name}": f.default
        for f in fields(DemoConfig)
        if f.name.startswith("grpo") and f.name != "grpo"
    },
}


def open_engine(spec: str, *, batch_size: int = 16) -> Any:
    """An engine for a recipe's spec (the CLI's forms; ``hf:`` engines batch ``batch_size``)."""
    if spec.startswith("hf:"):
        return HFEngine(spec[3:], spec=spec, batch_size=batch_size)

    return load_engine(spec)


class Loop:
    """A loop recipe bound to its run directory. :meth:`steps` is the plan; :meth:`run` runs it."""

    def __init__(
        self,
        recipe: LoopRecipe,
        out: str | Path,
        *,
        reporter: Reporter | None = None,
        recipe_path: str = "RECIPE.yaml",
    ):
        self.r = recipe
        self.layout = cmd.Layout(Path(out))
        self.reporter = reporter or LogReporter()
        self.recipe_path = recipe_path
        self._store: Any = None
        self._engines: dict[str, Any] = {}
        self._server: ServerProcess | None = None
        self._problems: dict[tuple[str, int | None], list] = {}

    # -- names and paths ---------------------------------------------------------------------------

    def rounds(self) -> range:
        return range(1, self.r.improve.rounds + 1)

    def policy(self, round_: int) -> str:
        """The model that explores in round ``round_``."""
        return "imitate" if round_ == 1 else f"round-{round_ - 1}"

    def explored(self, round_: int) -> list[str]:
        """The explore stages of rounds 1..``round_`` (a GRPO round has none: it samples as it
        trains, its rollouts stored under ``grpo-rI``)."""
        return [
            f"explore-r{j}" for j in range(1, round_ + 1) if self.r.improve.method_of(j) != "grpo"
        ]

    def dpo_start(self, round_: int) -> str:
        """The model round ``round_``'s DPO starts from (``improve.dpo_from``)."""
        return "imitate" if self.r.improve.dpo_from == "imitate" else self.policy(round_)

    def marker(self, name: str) -> dict[str, Any] | None:
        """The summary a finished step left (None while it has not finished)."""
        return step_marker(self.layout.root, name)

    def model_path(self, name: str) -> str:
        if name == "backbone":
            if self.r.student.from_gguf:
                done = self.marker("backbone")
                return str(done["model"]) if done else str(default_out_dir(self.student_gguf()))
            built = self.r.student.model == TINY
            return str(self.layout.model("backbone")) if built else self.r.student.model
        if name.startswith("round-"):
            i = int(name.removeprefix("round-"))
            method = self.r.improve.method_of(i)
            train = {"rs-sft": "sft"}.get(method, method)
            done = self.marker(f"{train}-r{i}")
            if done and done.get("model"):
                return str(done["model"])  # a DPO round without pairs keeps its initial model
        return str(self.layout.model(name))

    def gguf(self, name: str) -> Path:
        """Where ``export-NAME`` writes the checkpoint ``name`` (student.engine: llamacpp)."""
        return self.layout.gguf(name, self.r.student.export_type)

    def student_spec(self, name: str) -> str:
        if self.r.student.engine == "hf":
            return f"hf:{self.model_path(name)}"
        if self.r.student.engine == "llamacpp":
            return f"llamacpp:{self.gguf(name)}"
        return self.r.student.engine.replace("{name}", name)

    def student_serve(self, name: str) -> Serve | None:
        if not self.r.launch.serve:
            return None
        spec = self.student_spec(name)
        command = self.r.launch.serve.replace("{model}", shlex.quote(self.model_path(name)))
        return Serve(command.replace("{name}", name), spec, ready_url(spec))

    def teacher_serve(self) -> Serve | None:
        t = self.r.launch.teacher_serve
        return Serve(t, self.r.teacher.engine, ready_url(self.r.teacher.engine)) if t else None

    @property
    def store(self) -> Any:
        if self._store is None:
            self._store = open_store(self.layout.store)
        return self._store

    def problems(self, spec: str, limit: int | None) -> list:
        if (spec, limit) not in self._problems:
            self._problems[spec, limit] = resolve_problems(
                spec, data_dir=self.r.data_dir, limit=limit
            )
        return self._problems[spec, limit]

    def engine(self, spec: str) -> Any:
        if spec not in self._engines:
            self._engines[spec] = open_engine(spec, batch_size=self.r.student.batch_size)
        return self._engines[spec]

    # -- the plan ----------------------------------------------------------------------------------

    def steps(self) -> list[Step]:
        r = self.r
        steps: list[Step] = []
        if r.student.model == TINY:
            steps.append(self._build_tiny())
        elif r.student.from_gguf:
            steps.append(self._convert())
        steps += self._exported("backbone")
        steps += self._evals("backbone")
        steps.append(self._rel() if r.teacher.method == "rel" else self._distill())
        steps.append(self._curate_imitate())
        steps.append(self._sft("sft-imitate", "imitate", lambda: self.layout.imitate_data))
        steps += self._exported("imitate")
        if self.rounds():
            # before eval-imitate: a pass-rate probe shares that eval's server
            steps.append(self._explore_pool())
        steps += self._evals("imitate")
        for i in self.rounds():
            if r.improve.method_of(i) == "grpo":
                steps.append(self._grpo(i))
                steps += self._exported(f"round-{i}")
                steps += self._evals(f"round-{i}")
                continue
            steps.append(self._explore(i))
            if r.improve.method_of(i) == "rs-sft":
                steps.append(self._rs_data(i))
                steps.append(
                    self._sft(f"sft-r{i}", f"round-{i}", lambda i=i: self.layout.rs_data(i))
                )
            else:
                steps.append(self._pairs(i))
                steps.append(self._dpo(i))
            steps += self._exported(f"round-{i}")
            steps += self._evals(f"round-{i}")
            if r.improve.verifier == "vstar":
                steps.append(self._vstar(i))
        if r.control:
            steps += [self._control_data(), self._control()]
            steps += self._exported("control")
            steps += self._evals("control")
        return steps

    def student_gguf(self) -> str:
        """The GGUF a ``default`` or ``.gguf`` student starts from."""
        if self.r.student.model == DEFAULT_STUDENT:
            return default_model_path()
        return self.r.student.model

    def _convert(self) -> Step:
        """The backbone: the GGUF (``default``: the packaged one) converted to a transformers
        folder in the cache (``reasonloop convert``'s: converted once, reused by every run; its
        marker links every model trained from it, and every GGUF exported from those, back to
        the source's tokenizer and chat template)."""

        def run() -> dict[str, Any]:
            return {"model": str(gguf_to_hf(self.student_gguf())), "gguf": self.student_gguf()}

        return Step(
            "backbone",
            "convert the student's GGUF to a trainable folder",
            run,
            lambda v: f"converted {v['gguf']} → {v['model']}",
            lambda: [cmd.reasonloop(["convert", self.student_gguf()])],
            trains=True,
        )

    def _exported(self, name: str) -> list[Step]:
        """``[export-NAME]`` when the student is sampled through llama.cpp, else nothing."""
        return [self._export(name)] if self.r.student.engine == "llamacpp" else []

    def _export(self, name: str) -> Step:
        """The checkpoint ``name`` as a GGUF (``student.export_type``). A GGUF already newer than
        every file of its model (a run killed after writing it, before its marker) is kept, not
        written again; an older one is replaced."""
        kind = self.r.student.export_type
        out = self.gguf(name)

        def run() -> dict[str, Any]:
            model = Path(self.model_path(name))
            if _newer_than(out, model):
                return {
                    "gguf": str(out),
                    "model": str(model),
                    "bytes": out.stat().st_size,
                    "reused": True,
                }
            s = export_gguf(model, out, kind=kind)
            return {
                "gguf": str(out),
                "model": str(model),
                "bytes": s.bytes,
                "tokenizer_from": s.tokenizer_from,
                "added_tokens": list(s.added_tokens),
            }

        return Step(
            f"export-{name}",
            f"export {name} for llama.cpp ({kind})",
            run,
            lambda v: (
                f"{v['gguf']} ({v['bytes'] / 2**20:.1f} MiB"
                + (
                    ", already written)"
                    if v.get("reused")
                    else f", tokenizer from {v['tokenizer_from']})"
                )
            ),
            lambda: [
                cmd.reasonloop(
                    ["export-gguf", self.model_path(name), "--out", str(out), "--type", kind]
                )
            ],
            trains=True,  # frees the engines: one of them may hold an older file at this path
        )

    def _control_data(self) -> Step:
        def run() -> dict[str, Any]:
            rows = answer_only_rows(self.layout.imitate_data, self.store)
            return {"rows": write_rows(self.layout.control_data, rows)}

        return Step(
            "control-data",
            "the control's data: D_0's problems, answer-only",
            run,
            lambda v: f"{v['rows']} answer-only rows → {self.layout.control_data}",
            lambda: [
                "# the control's rows: D_0 with each response replaced by its answer alone "
                "(reasonloop.recipe.control.answer_only_rows); no CLI command writes them"
            ],
        )

    def control_steps(self) -> int | None:
        """The control's SFT steps: sft-imitate's steps times the ratio of mean tokens per
        training row (D_0 over the control's, chat template included, with the backbone's
        tokenizer), so that both train on the same number of tokens at the same batch size.
        None until sft-imitate and control-data have run."""
        done = self.marker("sft-imitate")
        if done is None or not self.layout.control_data.is_file():
            return None
        d0 = mean_row_tokens(self.model_path("backbone"), self.layout.imitate_data)
        control = mean_row_tokens(self.model_path("backbone"), self.layout.control_data)
        return max(1, round(done["global_step"] * d0 / control))

    def _control(self) -> Step:
        def settings(steps: int | None):
            return replace(
                self.r.sft,
                model=self.model_path("backbone"),
                data=str(self.layout.control_data),
                output_dir=str(self.layout.model("control")),
                max_steps=steps if steps is not None else self.r.sft.max_steps,
            )

        def run() -> dict[str, Any]:
            steps = self.control_steps()
            return {**self._train("sft-control", "sft", settings(steps)), "matched_steps": steps}

        def commands() -> list[str]:
            steps = self.control_steps()
            note = (
                []
                if steps is not None
                else [
                    "# note: max-steps = sft-imitate's steps x (mean tokens per D_0 row / per control "
                    "row), known once both exist; the line below shows sft.max_steps"
                ]
            )
            return [
                *note,
                cmd.reasonloop(cmd.stage_args("train sft", settings(steps)), self.r.launch.train),
            ]

        return Step(
            "sft-control",
            "SFT → control (answer-only, imitation's training tokens)",
            run,
            lambda v: f"{v['global_step']} steps, train loss {v['train_loss']:.4f} → {v['model']}",
            commands,
            trains=True,
        )

    def _build_tiny(self) -> Step:
        path = self.layout.model("backbone")
        code = f"from reasonloop.recipe.tiny import build_tiny; build_tiny({str(path)!r}, seed={self.r.seed})"

        def run() -> dict[str, Any]:
            return {"model": build_tiny(path, seed=self.r.seed)}

        return Step(
            "backbone",
            "build the tiny student",
            run,
            lambda v: f"built {v['model']}",
            lambda: [f"python -c {shlex.quote(code)}"],
            trains=True,
        )

    def _evals(self, model: str) -> list[Step]:
        return [self._eval(model, b) for b in self.r.eval.benchmarks]

    def run_filled(self) -> dict[str, Any]:
        """What the run fills in for every stage config (never the recipe)."""
        return {"seed": self.r.seed, "data_dir": self.r.data_dir}

    def _eval(self, model: str, benchmark: str) -> Step:
        r = self.r
        out = self.layout.eval_dir(model, benchmark)

        def config():
            return r.eval.stage(
                benchmark=benchmark,
                out=str(out),
                engine=self.student_spec(model),
                system_prompt=r.system_prompt,
                **self.run_filled(),
            )

        def run() -> dict[str, Any]:
            probs = self.problems(benchmark, r.eval.limit)
            eng = self.engine(self.student_spec(model))
            with self.reporter.task(f"eval {model} on {benchmark}", len(probs)) as progress:
                res = evaluate(
                    eng, benchmark, probs, out, config().settings(), on_progress=progress
                )
            return {
                "model": model,
                "benchmark": benchmark,
                "problems": res.n_problems,
                "metrics": res.metrics,
                "mean_tokens": res.mean_tokens,
                "generated_tokens": round(res.mean_tokens * res.n_problems),
            }

        return Step(
            f"eval-{model}-{cmd.slug(benchmark)}",
            f"eval {model} on {benchmark}",
            run,
            lambda v: (
                f"{model} {percent(v['metrics']):.1f}% on {benchmark} ({v['problems']} problems)"
            ),
            lambda: [cmd.reasonloop(cmd.stage_args("eval", config()))],
            serve=lambda: self.student_serve(model),
        )

    def teacher_config(self, method: str) -> Any:
        """The teacher section's config of ``method`` (distill or rel) for this run."""
        return getattr(self.r.teacher, method)(store=str(self.layout.store), **self.run_filled())

    def _distill(self) -> Step:
        r, t = self.r, self.r.teacher
        config = functools.partial(self.teacher_config, "distill")

        def run() -> dict[str, Any]:
            teacher = self.engine(t.engine)
            summ = run_distill(
                config(),
                self.reporter,
                teacher=teacher,
                completer=self.engine(t.completer) if t.completer else teacher,
                store=self.store,
                problems=self.problems(t.problems, t.limit),
            )
            return {
                "problems": summ.problems,
                "samples": summ.samples,
                "new": summ.new_samples,
                "correct": summ.correct,
                "generated_tokens": sum(t.tokens for t in self.store.trajectories(stage="distill")),
            }

        return Step(
            "distill",
            "distil from the teacher",
            run,
            lambda v: (
                f"{v['samples']} teacher responses to {v['problems']} problems ({v['new']} new), "
                f"{100 * v['correct'] / max(1, v['samples']):.1f}% correct"
            ),
            lambda: [*cmd.notes(r, "distill"), cmd.reasonloop(cmd.stage_args("distill", config()))],
            serve=self.teacher_serve,
        )

    def _rel(self) -> Step:
        r, t = self.r, self.r.teacher
        config = functools.partial(self.teacher_config, "rel")

        def run() -> dict[str, Any]:
            gen = self.engine(t.engine)
            s = run_rel_stage(
                config(),
                self.reporter,
                generator=gen,
                critic=self.engine(t.critic) if t.critic and t.critic != t.engine else gen,
                store=self.store,
                problems=self.problems(t.problems, t.limit),
            )
            return dataclasses.asdict(s)

        return Step(
            "rel",
            "REL: rewrite, critique, refine",
            run,
            lambda v: (
                f"{v['accepted']} of {v['problems']} problems accepted; {v['rounds']} rounds, "
                f"{v['correct_rounds']} validated"
            ),
            lambda: [*cmd.notes(r, "rel"), cmd.reasonloop(cmd.stage_args("rel", config()))],
            serve=self.teacher_serve,
        )

    def _perplexity_scorer(self, model: str) -> Callable | None:
        """Perplexity under ``model`` for rows stored without one (in-process students only: a
        served student's rollouts carry their log-probs)."""
        if self.r.student.engine not in ("hf", "llamacpp"):
            return None

        return perplexity_scorer(
            lambda: self.engine(self.student_spec(model)), system_prompt=self.r.system_prompt
        )

    def _benchmark_texts(self) -> list[str]:
        """The problems of ``curate.decontaminate``: no curated row (distilled or explored) may
        overlap them."""
        return [p.problem for b in self.r.curate.decontaminate for p in self.problems(b, None)]

    def _curate_imitate(self) -> Step:
        r = self.r
        stage = "rel" if r.teacher.method == "rel" else "distill"
        needs_ppl = r.curate.config.select.by.startswith("perplexity")

        def run() -> dict[str, Any]:
            rows = store_rows(self.store, [stage])
            rep = curate(
                rows,
                self.layout.imitate_dir,
                replace(r.curate.config, system_prompt=r.system_prompt),
                benchmark_texts=self._benchmark_texts(),
                perplexity=self._perplexity_scorer("backbone") if needs_ppl else None,
            )
            if not rep.kept:
                raise DataError(
                    f"curate kept none of {rep.seen} {stage} trajectories (dropped: "
                    f"{dict(rep.dropped)}); loosen curate.filters or check the teacher",
                    where=str(self.layout.imitate_dir),
                )
            return rep.as_dict()

        return Step(
            "curate-imitate",
            "curate the imitation set D_0",
            run,
            lambda v: f"D_0: kept {v['kept']} of {v['seen']} ({_dropped(v)})",
            lambda: [
                cmd.reasonloop(
                    cmd.curate_args(
                        r,
                        self.layout.store,
                        self.layout.imitate_dir,
                        self.layout.curate_recipe("imitate"),
                        [stage],
                        decontaminate=r.curate.decontaminate,
                        perplexity_engine=self.student_spec("backbone") if needs_ppl else None,
                    )
                )
            ],
            serve=lambda: self.student_serve("backbone") if needs_ppl else None,
        )

    def _sft(self, name: str, model: str, data: Callable[[], Path]) -> Step:
        def settings():
            return replace(
                self.r.sft,
                model=self.model_path("backbone"),
                data=str(data()),
                output_dir=str(self.layout.model(model)),
            )

        def run() -> dict[str, Any]:
            return self._train(name, "sft", settings())

        return Step(
            name,
            f"SFT → {model}",
            run,
            lambda v: f"{v['global_step']} steps, train loss {v['train_loss']:.4f} → {v['model']}",
            lambda: [cmd.reasonloop(cmd.stage_args("train sft", settings()), self.r.launch.train)],
            trains=True,
        )

    def _launch(self, name: str, kind: str, s: Any, launcher: str) -> dict[str, Any]:
        """``LAUNCHER -m reasonloop.cli train KIND ...`` in a subprocess; what it saved in
        ``reasonloop_train.json``."""
        args = cmd.stage_args(f"train {kind}", s)
        argv = [*shlex.split(launcher), "-m", "reasonloop.cli", *args]
        self.layout.logs.mkdir(parents=True, exist_ok=True)
        logfile = self.layout.logs / f"{name}.log"
        with (
            self.reporter.task(f"{name} (launched; log {logfile})", None),
            logfile.open("w") as fh,
        ):
            rc = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT).returncode
        if rc:
            raise ReasonloopError(f"{name}: training exited with status {rc}; see {logfile}")
        return json.loads((Path(s.output_dir) / "reasonloop_train.json").read_text())

    def _train(self, name: str, kind: str, s: Any) -> dict[str, Any]:
        if self.r.launch.train:
            metrics = self._launch(name, kind, s, self.r.launch.train)["metrics"]
        else:
            total = s.max_steps if s.max_steps > 0 else None
            with self.reporter.task(name, total) as progress:
                if kind == "sft":
                    metrics = train_sft(s, on_progress=progress)
                elif kind == "vstar":
                    metrics = train_vstar(s, on_progress=progress)
                else:
                    metrics = train_dpo(s, on_progress=progress)
        return {
            "model": s.output_dir,
            "init": s.model,
            "train_loss": float(metrics["train_loss"]),
            "global_step": int(metrics["global_step"]),
            **({"heldout": metrics["heldout"]} if "heldout" in metrics else {}),
            **(
                {"trained_tokens": metrics["tokens_trained"]} if "tokens_trained" in metrics else {}
            ),
        }

    def _explore_pool(self) -> Step:
        r = self.r
        probes = r.explore.order == "pass_rate"

        def run() -> dict[str, Any]:
            engine = self.engine(self.student_spec("imitate")) if probes else None
            pool, record = choose_pool(
                r, self.store, engine=engine, model="imitate", reporter=self.reporter
            )
            write_pool(self.layout.explore_pool, pool)
            return record

        return Step(
            "explore-pool",
            "the explore pool: unseen problems, hardest first",
            run,
            lambda v: f"pool: {describe(v)}",
            lambda: [
                cmd.pool_line(
                    self.layout.root / "resolved.yaml",
                    self.layout.store,
                    self.layout.explore_pool,
                    self.student_spec("imitate") if probes else None,
                )
            ],
            serve=lambda: self.student_serve("imitate") if probes else None,
        )

    def _explore(self, i: int) -> Step:
        r = self.r
        policy = self.policy(i)
        stage = f"explore-r{i}"
        pool = str(self.layout.explore_pool)

        def config():
            # the pool is already the explore set less the distilled problems, cut to its limit
            return r.explore.stage(
                store=str(self.layout.store),
                engine=self.student_spec(policy),
                stage=stage,
                problems=pool,
                limit=None,
                **self.run_filled(),
            )

        def run() -> dict[str, Any]:
            summ = run_explore(
                config(),
                self.reporter,
                engine=self.engine(self.student_spec(policy)),
                store=self.store,
                problems=self.problems(pool, None),
                system_prompt=r.system_prompt,
                logprobs=True,  # each rollout's perplexity, for selection and pairs
            )
            return {
                "model": policy,
                "problems": len(summ.results),
                "solved": summ.solved,
                "buckets": dict(summ.buckets),
                "rollouts": sum(x.attempts for x in summ.results),
                "new": summ.new_rollouts,
                # every rollout of the stage, those of an interrupted run included (what the
                # summary counts as new is only this run's part)
                "generated_tokens": sum(t.tokens for t in self.store.trajectories(stage=stage)),
            }

        return Step(
            stage,
            f"round {i}: explore with {policy}",
            run,
            lambda v: (
                f"{v['model']} solved {v['solved']}/{v['problems']} pool problems in "
                f"{v['rollouts']} rollouts ({v['new']} new)"
            ),
            lambda: [*cmd.notes(r, "explore"), cmd.reasonloop(cmd.stage_args("explore", config()))],
            serve=lambda: self.student_serve(policy),
        )

    def _rs_data(self, i: int) -> Step:
        r = self.r
        stages = self.explored(i)
        needs_ppl = r.improve.select.by.startswith("perplexity")
        policy = self.policy(i)

        def run() -> dict[str, Any]:
            # the explored rows pass D_0's cleaning: its filters, dedup and decontamination
            rep = curate(
                store_rows(self.store, stages),
                self.layout.explored_dir(i),
                self._explored_curate_config(),
                benchmark_texts=self._benchmark_texts(),
                perplexity=self._perplexity_scorer(policy) if needs_ppl else None,
            )
            d0 = self.layout.imitate_data.read_text(encoding="utf-8")
            extra = (self.layout.explored_dir(i) / "train.jsonl").read_text(encoding="utf-8")
            target = self.layout.rs_data(i)
            tmp = target.with_suffix(".tmp")
            tmp.write_text(d0 + extra, encoding="utf-8")
            tmp.replace(target)
            n0 = len(d0.splitlines())
            return {"distilled": n0, "explored": rep.kept, "rows": n0 + rep.kept, **rep.as_dict()}

        return Step(
            f"rs-data-r{i}",
            f"round {i}: D_{i} = D_0 + selected correct rollouts",
            run,
            lambda v: (
                f"D_{i}: {v['distilled']} distilled + {v['explored']} explored rows ({_dropped(v)})"
            ),
            lambda: [
                cmd.reasonloop(
                    cmd.curate_args(
                        r,
                        self.layout.store,
                        self.layout.explored_dir(i),
                        self.layout.curate_recipe("explored"),
                        stages,
                        decontaminate=r.curate.decontaminate,
                        perplexity_engine=self.student_spec(policy) if needs_ppl else None,
                    )
                ),
                cmd.concat_line(
                    [self.layout.imitate_data, self.layout.explored_dir(i) / "train.jsonl"],
                    self.layout.rs_data(i),
                ),
            ],
            script_serve=lambda: self.student_serve(policy) if needs_ppl else None,
        )

    def _explored_curate_config(self) -> Any:
        """D_0's curate config (its filters, near-duplicate threshold) with the improve section's
        selection and no mixing."""
        return replace(
            self.r.curate.config,
            select=self.r.improve.select,
            mix=MixConfig(),
            system_prompt=self.r.system_prompt,
        )

    def _pairs(self, i: int) -> Step:
        r = self.r
        stage = f"explore-r{i}"
        policy = self.policy(i)

        def run() -> dict[str, Any]:
            rows = preference_rows(
                self.store,
                [stage],
                pairs_per_problem=r.improve.pairs_per_problem,
                system_prompt=r.system_prompt,
                perplexity=self._perplexity_scorer(policy),
            )
            return {"pairs": write_rows(self.layout.dpo_data(i), rows)}

        return Step(
            f"dpo-pairs-r{i}",
            f"round {i}: preference pairs",
            run,
            lambda v: f"{v['pairs']} preference pairs from round {i}'s rollouts",
            lambda: [
                cmd.pairs_line(
                    r, self.layout.store, stage, self.layout.dpo_data(i), self.student_spec(policy)
                )
            ],
            script_serve=lambda: self.student_serve(policy),
        )

    def _dpo(self, i: int) -> Step:
        r = self.r
        start = self.dpo_start(i)

        def settings():
            return replace(
                r.improve.dpo,
                model=self.model_path(start),
                data=str(self.layout.dpo_data(i)),
                output_dir=str(self.layout.model(f"round-{i}")),
            )

        def run() -> dict[str, Any]:
            pairs = self.marker(f"dpo-pairs-r{i}") or {}
            s = settings()
            if not pairs.get("pairs"):
                # nothing to prefer: the round keeps its initial model, and says so
                return {"model": s.model, "init": s.model, "skipped": "no preference pairs"}
            return self._train(f"dpo-r{i}", "dpo", s)

        def summary(v: dict[str, Any]) -> str:
            if v.get("skipped"):
                return f"skipped ({v['skipped']}); round {i} is {v['model']}"
            return f"{v['global_step']} steps, loss {v['train_loss']:.4f} → {v['model']}"

        return Step(
            f"dpo-r{i}",
            f"round {i}: thought-only DPO from {start}",
            run,
            summary,
            lambda: [cmd.reasonloop(cmd.stage_args("train dpo", settings()), r.launch.train)],
            trains=True,
        )

    def grpo_launcher(self) -> str | None:
        return self.r.launch.grpo_train or self.r.launch.train

    def grpo_serve(self, model: str) -> Serve | None:
        """The vLLM server a GRPO round from ``model`` reaches (vLLM server mode only)."""
        g = self.r.improve.grpo
        if not (g.use_vllm and g.vllm_mode == "server"):
            return None
        args = ["--model", self.model_path(model)]
        if g.vllm_server_host is not None:
            args += ["--host", g.vllm_server_host]
        if g.vllm_server_port is not None:
            args += ["--port", str(g.vllm_server_port)]
        host = g.vllm_server_host or TRL_VLLM_HOST
        host = "127.0.0.1" if host == "0.0.0.0" else host  # noqa: S104 - a bind-all address
        port = g.vllm_server_port or TRL_VLLM_PORT
        command = f"{self.r.launch.vllm_serve} {shlex.join(args)}"
        return Serve(command, f"trl-vllm:{model}", f"http://{host}:{port}/health")

    def _grpo(self, i: int) -> Step:
        r = self.r
        start = self.policy(i)
        pool = str(self.layout.explore_pool)

        def settings() -> GRPOSettings:
            return r.improve.grpo.settings(
                model=self.model_path(start),
                problems=pool,
                output_dir=str(self.layout.model(f"round-{i}")),
                store=str(self.layout.store),
                stage=f"grpo-r{i}",
                system_prompt=r.system_prompt,
                resume=True,
                **self.run_filled(),
            )

        def run() -> dict[str, Any]:
            s = settings()
            launcher = self.grpo_launcher()
            if launcher:
                summary = self._launch(f"grpo-r{i}", "grpo", s, launcher)["summary"]
            else:
                probs = self.problems(pool, None)
                code_boundary((p.domain for p in probs), s.unsafe_code_exec)
                with self.reporter.task(f"grpo-r{i}", s.max_steps) as progress:
                    summary = dataclasses.asdict(
                        train_grpo(s, problems=probs, on_progress=progress)
                    )
            keep = (
                "steps",
                "rollouts",
                "new_rows",
                "correct",
                "generated_tokens",
                "trained_tokens",
            )
            keep += ("dropped_groups", "mean_reward_first", "mean_reward_last", "train_loss")
            return {"model": s.output_dir, "init": s.model, **{k: summary[k] for k in keep}}

        return Step(
            f"grpo-r{i}",
            f"round {i}: GRPO from {start} on the explore pool",
            run,
            lambda v: (
                f"{v['steps']} steps, {v['rollouts']} rollouts ({v['correct']} correct), mean "
                f"reward {v['mean_reward_first']:.3f} → {v['mean_reward_last']:.3f} → {v['model']}"
            ),
            lambda: [
                cmd.reasonloop(cmd.stage_args("train grpo", settings()), self.grpo_launcher())
            ],
            serve=lambda: self.grpo_serve(start),
            trains=True,
        )

    def _vstar(self, i: int) -> Step:
        r = self.r
        stages = tuple(self.explored(i))

        def settings():
            return replace(
                r.improve.vstar,
                model=self.model_path("imitate"),
                output_dir=str(self.layout.model(f"vstar-r{i}")),
                store=str(self.layout.store),
                stages=stages,
                system_prompt=r.system_prompt,
            )

        def run() -> dict[str, Any]:
            s = settings()
            trajs, _ = store_solutions(self.store, stages)
            if not vstar_pairs(trajs, s.pairs_per_problem, s.seed):
                return {"model": None, "skipped": "no (correct, incorrect) pair"}
            return self._train(f"vstar-r{i}", "vstar", s)

        def summary(v: dict[str, Any]) -> str:
            if v.get("skipped"):
                return f"skipped ({v['skipped']} in rounds 1..{i}'s rollouts)"
            h = v["heldout"]
            acc = "none held out" if not h["total"] else f"{h['accuracy']:.3f} of {h['total']}"
            return (
                f"{v['global_step']} steps, loss {v['train_loss']:.4f}, held-out pair accuracy "
                f"{acc} → {v['model']}"
            )

        return Step(
            f"vstar-r{i}",
            f"round {i}: V-STaR verifier on rounds 1..{i}'s rollouts",
            run,
            summary,
            lambda: [cmd.reasonloop(cmd.stage_args("train vstar", settings()), r.launch.train)],
            trains=True,
        )

    # -- the run directory ------------------------------------------------------------------------

    def write_configs(self) -> None:
        """The curate recipes the curate command lines read (written by dry runs too)."""
        for which, cfg in (
            ("imitate", replace(self.r.curate.config, system_prompt=self.r.system_prompt)),
            ("explored", self._explored_curate_config()),
        ):
            path = self.layout.curate_recipe(which)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump(_plain(cfg), sort_keys=False), encoding="utf-8")

    def script(self) -> str:
        blocks = []
        for step in self.steps():
            server = (step.script_serve or step.serve)()
            blocks.append((f"{step.name}: {step.title}", server, step.commands()))
        return cmd.script(self.recipe_path, self.layout.root, blocks)

    def run(self) -> dict[str, Any]:
        self.write_configs()
        try:
            run_steps(self.layout.root, self.steps(), self.reporter, before=self._switch)
        finally:
            self.close()

        return write_report(self)

    # -- engines and servers ----------------------------------------------------------------------

    def _switch(self, step: Step) -> None:
        """Before ``step``: free the accelerator for training; have the step's server up."""
        want = step.serve()  # a training step's only server: vLLM for GRPO's rollouts
        have = self._server.serve if self._server else None
        if step.trains or want != have:
            self._close_engines()
        if want != have:
            self._stop_server()
            if want is not None:
                server = ServerProcess(want, self.layout.logs / f"server-{step.name}.log")
                server.start(
                    self.r.launch.ready_timeout, lambda note: self.reporter.task(note, None)
                )
                self._server = server

    def _stop_server(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def _close_engines(self) -> None:
        for eng in self._engines.values():
            try:
                eng.close()
            except Exception as exc:  # closing must not hide the step's own outcome
                log.warning("closing an engine failed: %s", exc)
        self._engines.clear()

    def close(self) -> None:
        self._close_engines()
        self._stop_server()
        if self._store is not None:
            self._store.close()
            self._store = None


def _newer_than(path: Path, model: Path) -> bool:
    """``path`` exists and was written after every file of the folder ``model``."""
    if not path.is_file():
        return False
    files = [f for f in model.rglob("*") if f.is_file()] if model.is_dir() else []
    return bool(files) and path.stat().st_mtime_ns >= max(f.stat().st_mtime_ns for f in files)


def mean_row_tokens(model: str, data: Path) -> float:
    """Mean tokens per conversational row of ``data`` under ``model``'s tokenizer and chat
    template (the format's markers as single tokens, as training makes them)."""
    tok = load_tokenizer(model)
    add_format_tokens(tok)
    rows = read_conversations(data)
    texts = [
        tok.apply_chat_template([*r["prompt"], *r["completion"]], tokenize=False) for r in rows
    ]
    counts = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
    return sum(counts) / max(1, len(counts))


def load_tokenizer(model: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model)


def _dropped(v: dict[str, Any]) -> str:
    dropped = v.get("dropped") or {}
    return ", ".join(f"{k}={n}" for k, n in dropped.items()) or "nothing dropped"


# -- recipes of either kind ------------------------------------------------------------------------


def demo_command(recipe: DemoRecipe, out: Path) -> str:
    """The demo as one command: ``reasonloop demo`` when its flags can say it, else Python."""
    cfg = replace(recipe.demo, out=str(out))
    base = ["demo", "--out", str(out)]
    if cfg == DemoConfig(out=str(out)):
        return cmd.reasonloop(base)
    if cfg == DemoConfig.quick(str(out)):
        return cmd.reasonloop([*base, "--quick"])
    n = len(cfg.seeds)
    flags = replace(
        DemoConfig(out=str(out)), seeds=cfg.seeds, grpo=cfg.grpo, grpo_budget=cfg.grpo_budget
    )
    if cfg.seeds == tuple(range(n)) and cfg == flags:
        seeds = ["--seeds", str(n)] if cfg.seeds != DemoConfig().seeds else []
        grpo = ["--grpo"] if cfg.grpo else []
        if cfg.grpo and cfg.grpo_budgets != DemoConfig().grpo_budgets:
            grpo += ["--grpo-budget", ",".join(cfg.grpo_budgets)]
        return cmd.reasonloop([*base, *seeds, *grpo])
    default = DemoConfig()
    changed = [
        (f.name, getattr(cfg, f.name))
        for f in fields(cfg)
        if f.name != "out" and getattr(cfg, f.name) != getattr(default, f.name)
    ]
    args = [f"out={json.dumps(str(out))}"] + [
        f"{name}={json.dumps(v) if isinstance(v, str) else repr(v)}" for name, v in changed
    ]
    code = (
        "from reasonloop.demo.run import DemoConfig; from reasonloop.recipe.demo import run_demo; "
        f"run_demo(DemoConfig({', '.join(args)}))"
    )
    return f"python -c {shlex.quote(code)}"


def prepare_run_dir(recipe: Recipe, out: Path) -> None:
    """Create the run directory and save ``resolved.yaml``; a directory that already holds steps
    of a different recipe is refused (naming the changed keys)."""
    out.mkdir(parents=True, exist_ok=True)
    new = resolved(recipe)
    path = out / "resolved.yaml"
    started = (out / "steps").is_dir() and any((out / "steps").glob("*.json"))
    if path.exists() and started:
        old = yaml.safe_load(path.read_text(encoding="utf-8"))
        changed = [
            k
            for k in changed_keys(old, new)
            if not k.startswith(RESUMABLE_CHANGES)
            and k not in RESUMABLE_KEYS
            and not _added_default(k, old, new)
            and not _added_method(k, old, new)
        ]
        if changed:
            raise ConfigError(
                f"{out} holds a run of a different recipe (changed: {', '.join(changed)}); "
                "resume it with the same recipe, or choose another --out"
            )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(new, sort_keys=False), encoding="utf-8")
    tmp.replace(path)


def _added_method(key: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
    """A change that adds rounds of another method: ``improve.method`` where every round the old
    run planned keeps its method, or the section of a method (``improve.dpo``, ``improve.grpo``)
    that none of the old run's rounds had."""

    def improve(resolved: dict[str, Any]) -> ImproveConfig:
        section = resolved.get("improve", {})
        method = section.get("method", "rs-sft")
        return ImproveConfig(
            method if isinstance(method, str) else tuple(method), section.get("rounds", 1)
        )

    before = improve(old)
    if key == "improve.method":
        after = improve(new)
        return all(before.method_of(i) == after.method_of(i) for i in range(1, before.rounds + 1))
    section = key.split(".")[1] if key.count(".") >= 2 and key.startswith("improve.") else None
    return section in ("dpo", "grpo") and section not in before.methods()


def _added_default(key: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
    """``key`` is one of :data:`ADDED_KEYS`, absent from ``old`` and at its default in ``new``."""
    if key not in ADDED_KEYS:
        return False
    *path, name = key.split(".")
    before, after = old, new
    for part in path:
        before, after = before.get(part, {}), after.get(part, {})
    return name not in before and after.get(name) == ADDED_KEYS[key]


def dry_run(recipe: Recipe, out: str | Path, *, recipe_path: str = "RECIPE.yaml") -> str:
    """Every stage's command line, as a shell script; written to ``OUT/commands.sh`` (with
    ``resolved.yaml`` and the curate recipes the lines read). Runs nothing."""
    out = Path(out)
    prepare_run_dir(recipe, out)
    if isinstance(recipe, DemoRecipe):
        text = cmd.script(
            recipe_path, out, [("demo: the CPU demo", None, [demo_command(recipe, out)])]
        )
    else:
        if recipe.launch.train or recipe.launch.grpo_train:
            check_accelerate_configs(recipe.launch)
        loop = Loop(recipe, out, recipe_path=recipe_path)
        loop.write_configs()
        text = loop.script()
    (out / "commands.sh").write_text(text, encoding="utf-8")
    return text


def check_accelerate_configs(launch: LaunchConfig) -> None:
    """Every ``accelerate launch --config_file FILE`` among the training launchers is read by
    accelerate's own config loader (unknown keys, a distributed type or environment it does not
    know, a missing file); what it rejects is a ConfigError naming the launcher's key. Only what
    accelerate checks when it loads the file is checked here: not that the machine has the GPUs."""
    # local: accelerate imports torch; a CPU user's dry run of a recipe without it never pays
    from accelerate.commands.config.config_args import load_config_from_file

    for key in ("train", "grpo_train"):
        words = shlex.split(getattr(launch, key) or "")
        if "accelerate" not in words or "launch" not in words:
            continue
        for i, word in enumerate(words):
            name, eq, value = word.partition("=")
            if name not in ("--config_file", "--config-file"):
                continue
            path = value if eq else (words[i + 1] if i + 1 < len(words) else "")
            try:
                load_config_from_file(path)
            except Exception as exc:  # noqa: BLE001 - accelerate raises ValueError, TypeError, OSError
                raise ConfigError(
                    f"names a config file accelerate rejects ({path!r}): {exc}",
                    field=f"launch.{key}",
                ) from None


def run_recipe(
    recipe: Recipe,
    out: str | Path,
    *,
    reporter: Reporter | None = None,
    recipe_path: str = "RECIPE.yaml",
) -> dict[str, Any]:
    """Run (or resume) a recipe in ``out``; returns the report's summary."""
    out = Path(out)
    prepare_run_dir(recipe, out)
    reporter = reporter or LogReporter()
    if isinstance(recipe, DemoRecipe):
        summary = run_demo(replace(recipe.demo, out=str(out)), reporter)
        return {**summary, "report": str(out / "report.md")}
    return Loop(recipe, out, reporter=reporter, recipe_path=recipe_path).run()
