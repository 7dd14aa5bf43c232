"""The CPU demo as a recipe (``kind: demo``): its phases are steps of the recipe runner.

The plan (:meth:`DemoRun.steps`), each step resumable like a loop recipe's (a finished step leaves
``OUT/steps/NAME.json`` and is only summarised on a rerun; :func:`reasonloop.recipe.runner.run_steps`
runs them)::

    distill, curate            the Countdown teacher's traces → D_0
    control-data               (control) the same problems, answer-only
    backbone, eval-backbone-k1 the untrained student, measured
    per seed S:
      sft-imitate-sS, eval-imitate-sS-k1
      explore-sS               the imitated student samples the hard pool (+ perplexities)
      rs-data-sS               its correct rollouts pass D_0's cleaning (:data:`CURATE`), then
                               join D_0 → D_1
      sft-rs-sft-sS, eval-rs-sft-sS-k1
      dpo-data-sS, dpo-sS, eval-dpo-sS-k1  (dpo only when there are pairs)
      grpo-sS, eval-grpo-sS-k1  (grpo) GRPO from the imitated student on the hard pool, until it
                               has spent what explore + DPO of seed S spent (tokens generated
                               plus tokens trained on); at RS-SFT's cost (``grpo_budget``) its
                               steps are grpo-rs-sft-sS, eval-grpo-rs-sft-sS-k1
    first seed only:
      sft-control-sS, eval-control-k1  (control)
      eval-imitate-sS-kK, eval-rs-sft-sS-kK   maj@K on the first test puzzles of the hard set

then ``report.md``, ``phases.png`` and ``summary.json`` (:func:`reasonloop.demo.run.write_demo_report`).
The sizes and switches are :class:`reasonloop.demo.run.DemoConfig` fields: the recipe's ``demo:``
section (``recipes/cpu-demo.yaml``); ``reasonloop demo`` runs the same recipe with the defaults.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from reasonloop.curate.filters import FilterConfig
from reasonloop.curate.run import CurateConfig, SelectConfig, curate, store_rows
from reasonloop.demo.run import (
    SETS,
    DemoConfig,
    build_backbone,
    distill,
    grpo_name,
    methods,
    sft_rows,
    task_sets,
    write_demo_report,
    write_jsonl,
)
from reasonloop.engines.hf import HFEngine
from reasonloop.errors import ConfigError
from reasonloop.evaluate.report import markdown_table
from reasonloop.evaluate.run import EvalSettings, evaluate
from reasonloop.explore import explore
from reasonloop.generate import SamplingSettings, perplexity_scorer
from reasonloop.progress import LogReporter, Reporter, Update
from reasonloop.recipe.control import answer_only_rows
from reasonloop.recipe.report import percent
from reasonloop.recipe.steps import Step, marker, run_steps
from reasonloop.store import open_store
from reasonloop.store.export import preference_rows
from reasonloop.train.dpo import DPOSettings, train_dpo
from reasonloop.train.grpo import GRPOSettings, train_grpo
from reasonloop.train.pairs import select_pairs
from reasonloop.train.rmcontract import NO, YES, verification_prompt
from reasonloop.train.sft import SFTSettings, train_sft

EVAL_BATCH = 64  # sequences the in-process student decodes together

# The cleaning of every trace that trains the student — the teacher's (D_0) and the student's own
# explored ones (D_1) — declared once. Loose where Countdown's search narration is repetitive by
# nature ("Try 3+4=7. ... Try 3*4=12."): a thought of 4 words is a real one, repeated 5-grams and
# lines are how it reads, and near-duplicates are only those at 0.95 (two searches of one puzzle
# share most lines). The other filters apply as written: an unfinished thought or solution, a
# rollout cut at the token limit, a wrong answer, noise tokens and a second script.
CURATE = CurateConfig(
    filters=FilterConfig(min_thought_words=4, max_ngram_repeat_fraction=0.9, max_line_repeat=50),
    near_dup_threshold=0.95,
    select=SelectConfig(by="first"),
    system_prompt=False,
)


class DemoRun:
    """A demo config bound to its run directory: :meth:`steps` is the plan, :meth:`run` runs it."""

    def __init__(self, cfg: DemoConfig, reporter: Reporter | None = None):
        self.cfg = cfg
        self.root = Path(cfg.out)
        self.reporter = reporter or LogReporter()
        self.sets = task_sets(cfg)
        self.problems = {p.id: p for ps in self.sets.values() for p in ps}
        self.evals = {f"test-{b}": self.sets[f"test-{b}"] for b in SETS}
        self._store: Any = None

    # -- helpers -------------------------------------------------------------------------------

    @property
    def store(self) -> Any:
        if self._store is None:
            self._store = open_store(self.root / "store.db")
        return self._store

    def close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    @property
    def imitate_data(self) -> Path:
        return self.root / "data" / "curate" / "train.jsonl"

    @property
    def control_data(self) -> Path:
        return self.root / "data" / "control.jsonl"

    @property
    def backbone(self) -> Path:
        return self.root / "models" / "backbone"

    def model(self, name: str, seed: int) -> Path:
        return self.root / "models" / f"{name}-s{seed}"

    def step(
        self,
        name: str,
        fn: Callable[[Update], Any],
        summary: Callable[[Any], str],
        total: int | None = None,
        *,
        trains: bool = False,
    ) -> Step:
        """A phase: ``fn(update)`` under one progress task named after it."""

        def run() -> Any:
            with self.reporter.task(name, total) as update:
                return fn(update)

        return Step(name, name, run, summary, lambda: [], trains=trains)

    # -- the plan --------------------------------------------------------------------------------

    def steps(self) -> Iterator[Step]:
        """The steps in run order; a step that depends on an earlier one's outcome (DPO needs
        pairs) is planned once that one has finished."""
        cfg = self.cfg
        yield self._distill()
        yield self._curate()
        if cfg.control:
            yield self._control_data()
        yield self._backbone()
        yield self._eval("backbone", self.backbone)
        for seed in cfg.seeds:
            imitate = self.model("imitate", seed)
            yield self._sft("imitate", self.imitate_data, seed)
            yield self._eval(f"imitate-s{seed}", imitate)
            yield self._explore(seed)
            yield self._rs_data(seed)
            rs_data = self.root / "data" / f"rs-sft-s{seed}.jsonl"
            yield self._sft("rs-sft", rs_data, seed)
            yield self._eval(f"rs-sft-s{seed}", self.model("rs-sft", seed))
            yield self._pairs(seed)
            if marker(self.root, f"dpo-data-s{seed}"):
                yield self._dpo(seed)
                yield self._eval(f"dpo-s{seed}", self.model("dpo", seed))
            for budget in cfg.grpo_budgets if cfg.grpo else ():
                name = grpo_name(budget)
                yield self._grpo(seed, budget)
                yield self._eval(f"{name}-s{seed}", self.model(name, seed))
            if seed != cfg.seeds[0]:
                continue
            if cfg.control:
                yield self._sft("control", self.control_data, seed)
                yield self._eval("control", self.model("control", seed))
            # maj@k on the first test_problems hard puzzles only (k times the cost of greedy)
            for name in ("imitate", "rs-sft"):
                yield self._eval(
                    f"{name}-s{seed}",
                    self.model(name, seed),
                    k=cfg.maj_k,
                    only=("test-hard",),
                    limit=cfg.test_problems,
                )

    def _distill(self) -> Step:
        train = self.sets["train"]

        def run(update: Update) -> dict[str, int]:
            trajs = distill(self.cfg, train, on_progress=update)
            self.store.add_problems(train)  # so that `reasonloop curate --store` sees them too
            self.store.add_trajectories(trajs, stage="distill")
            update(len(trajs))
            return {"traces": len(trajs), "correct": sum(t.verdict.correct for t in trajs)}

        return self.step(
            "distill",
            run,
            lambda d: f"{d['traces']} teacher traces, {d['correct']} correct",
            len(train),
        )

    def _curate(self) -> Step:
        def run(update: Update) -> dict[str, Any]:

            rows = store_rows(self.store, ["distill"])
            rep = curate(rows, self.imitate_data.parent, CURATE, progress=update)
            return rep.as_dict()

        def summary(c: dict[str, Any]) -> str:
            return f"kept {c['kept']} of {c['seen']} ({_dropped(c)})"

        return self.step("curate", run, summary, len(self.sets["train"]))

    def _control_data(self) -> Step:
        """The control's set: the same problems, answer-only (no worked thought)."""

        def run(update: Update) -> int:
            rows = answer_only_rows(self.imitate_data, self.store)
            write_jsonl(self.control_data, rows)
            return len(rows)

        return self.step(
            "control-data", run, lambda n: f"{n} answer-only rows (the control's data)"
        )

    def _backbone(self) -> Step:
        """One backbone, as in the papers (one base model; the seeds vary the fine-tuning)."""
        cfg = self.cfg

        def run(update: Update) -> str:
            data = [self.imitate_data, self.control_data] if cfg.control else [self.imitate_data]
            texts = [
                m["content"]
                for path in data
                for line in path.read_text().splitlines()
                for m in json.loads(line)["messages"]
            ] + [p.problem for p in self.problems.values()]
            # the words a generative verifier reads and answers with (`train genrm` on the student)
            texts += [verification_prompt("", ""), f"{YES} {NO}"]
            return build_backbone(cfg, texts, self.backbone, 0)

        return self.step(
            "backbone",
            run,
            lambda path: (
                f"an untrained {cfg.layers}-layer student, hidden {cfg.hidden_size} → {path}"
            ),
            trains=True,
        )

    def _eval(
        self,
        name: str,
        path: Path,
        *,
        k: int = 1,
        only: tuple[str, ...] = (),
        limit: int | None = None,
    ) -> Step:
        chosen = {n: ps[:limit] for n, ps in self.evals.items() if not only or n in only}
        cfg = self.cfg

        def run(update: Update) -> dict[str, dict[str, float]]:

            eng = HFEngine(str(path), spec=f"hf:{path}", batch_size=EVAL_BATCH)
            out = {}
            before = [0, 0]  # problems and tokens of the sets already evaluated
            tokens = [0]  # the current set's tokens so far

            def on_progress(n: int, t: int) -> None:
                tokens[0] = t
                update(before[0] + n, before[1] + t)

            settings = EvalSettings(
                strategy="greedy" if k == 1 else "sample",
                k=k,
                temperature=0.8,
                top_p=0.95,  # the maj@k rows were measured so (eval's default is 1.0)
                max_tokens=cfg.max_new_tokens,
                system_prompt=False,
            )
            for set_name, ps in chosen.items():
                tokens[0] = 0
                r = evaluate(
                    eng,
                    set_name,
                    ps,
                    self.root / "evals" / f"{name}-k{k}" / set_name,
                    settings,
                    batch_problems=len(ps),
                    on_progress=on_progress,
                )
                out[set_name] = r.metrics
                before[0], before[1] = before[0] + len(ps), before[1] + tokens[0]
            eng.close()
            return out

        def summary(metrics: dict[str, dict[str, float]]) -> str:
            if k == 1:
                cells = [f"{n.removeprefix('test-')} {percent(m):.1f}%" for n, m in metrics.items()]
                return "greedy accuracy " + ", ".join(cells)
            cells = [
                f"{n.removeprefix('test-')} {100 * m.get(f'maj@{k}', 0.0):.1f}%"
                for n, m in metrics.items()
            ]
            return f"maj@{k} " + ", ".join(cells)

        return self.step(f"eval-{name}-k{k}", run, summary, sum(map(len, chosen.values())))

    def _sft(self, name: str, data: Path, seed: int) -> Step:
        cfg = self.cfg
        out = self.model(name, seed)

        def run(update: Update) -> dict[str, Any]:
            s = SFTSettings(
                model=str(self.backbone),
                data=str(data),
                output_dir=str(out),
                max_steps=cfg.sft_steps,
                batch_size=cfg.batch_size,
                learning_rate=cfg.learning_rate,
                max_length=cfg.max_length,
                seed=seed,
                logging_steps=50,
                warmup=0.05,
            )
            return trained(train_sft(s, on_progress=update))

        return self.step(
            f"sft-{name}-s{seed}",
            run,
            lambda v: f"{cfg.sft_steps} steps, train loss {loss_of(v):.4f} → {out}",
            cfg.sft_steps,
            trains=True,
        )

    def _explore(self, seed: int) -> Step:
        cfg = self.cfg
        stage = f"explore-s{seed}"
        imitate = self.model("imitate", seed)

        def run(update: Update) -> dict[str, Any]:

            eng = HFEngine(str(imitate), spec=f"hf:{imitate}", batch_size=EVAL_BATCH)
            sampling = SamplingSettings(
                temperature=cfg.explore_temperature,
                max_tokens=cfg.max_new_tokens,
                system_prompt=False,
                seed=seed,
            )
            s = explore(
                eng,
                self.sets["explore"],
                self.store,
                sampling,
                max_rollouts=cfg.max_rollouts,
                batch=cfg.explore_batch,
                stage=stage,
                batch_problems=EVAL_BATCH,
                on_progress=update,
            )
            # perplexity of every explored rollout under the imitated model, for pair selection
            score = perplexity_scorer(eng, system_prompt=False)
            rollouts = list(self.store.trajectories(stage=stage))
            update(0, total=len(rollouts), note="perplexity of the rollouts")
            scores = {}
            for i, t in enumerate(rollouts, 1):
                scores[t.id] = score(self.problems[t.problem_id], t)
                update(i)
            self.store.set_scores(f"ppl-imitate-s{seed}", scores)
            eng.close()
            return {
                "solved": s.solved,
                "buckets": dict(s.buckets),
                "rollouts": sum(r.attempts for r in s.results),
                "generated_tokens": sum(t.tokens for t in rollouts),
            }

        return self.step(
            stage,
            run,
            lambda e: (
                f"solved {e['solved']}/{len(self.sets['explore'])} hard problems, "
                f"{e['rollouts']} rollouts"
            ),
            len(self.sets["explore"]),
        )

    def _rs_data(self, seed: int) -> Step:
        """D_1: D_0 plus each puzzle's distinct correct rollouts that pass D_0's cleaning
        (:data:`CURATE`: filters, exact and near-duplicates; what it drops is counted per reason
        in ``data/explored-sS/``), the longest first (STILL-2 keeps harder ones), up to
        ``rs_per_problem`` each, each ``rs_repeat`` times (they are few next to D_0)."""
        cfg = self.cfg
        stage = f"explore-s{seed}"

        def run(update: Update) -> dict[str, Any]:
            good = list(self.store.trajectories(stage=stage, correct=True))
            clean = self.clean(good, self.root / "data" / f"explored-s{seed}", update)
            per_problem: dict[str, dict[str, Any]] = {}
            for t in good:
                if t.id in clean.ids:
                    per_problem.setdefault(t.problem_id, {}).setdefault(t.text, t)
            picked = [
                t
                for found in per_problem.values()
                for t in sorted(found.values(), key=lambda t: -len(t.text))[: cfg.rs_per_problem]
            ]
            rows = [json.loads(x) for x in self.imitate_data.read_text().splitlines()]
            rows += sft_rows(self.problems, picked) * cfg.rs_repeat
            write_jsonl(self.root / "data" / f"rs-sft-s{seed}.jsonl", rows)
            return {"picked": len(picked), **clean.report}

        return self.step(
            f"rs-data-s{seed}",
            run,
            lambda v: (
                f"{explored_count(v)} distinct correct rollouts join D_0 (x{cfg.rs_repeat}); "
                f"cleaning kept {v['kept']} of {v['seen']} ({_dropped(v)})"
                if isinstance(v, dict)
                else f"{v} distinct correct rollouts join D_0 (x{cfg.rs_repeat})"
            ),
        )

    def clean(self, trajs: list[Any], out: Path, update: Update | None = None) -> Cleaned:
        """The trajectories of ``trajs`` that pass :data:`CURATE`'s filters and dedup (every
        one kept: selection is the caller's), and the curate report of what was dropped."""
        keep_all = replace(CURATE, select=SelectConfig(by="first", per_problem=len(trajs) or 1))
        rows = ((self.problems[t.problem_id], t) for t in trajs)
        rep = curate(rows, out, keep_all, progress=update)
        kept = {
            json.loads(line)["trajectory_id"]
            for line in (out / "train.jsonl").read_text(encoding="utf-8").splitlines()
        }
        return Cleaned(frozenset(kept), rep.as_dict())

    def _pairs(self, seed: int) -> Step:
        def run(update: Update) -> int:

            ppl = self.store.scores(f"ppl-imitate-s{seed}")
            trajs = [
                replace(t, perplexity=ppl.get(t.id))
                for t in self.store.trajectories(stage=f"explore-s{seed}")
            ]
            pairs = select_pairs(trajs, self.problems, prompt=lambda p: p.problem)
            rows = list(preference_rows(pairs))
            write_jsonl(self.dpo_data(seed), rows)
            return len(rows)

        return self.step(f"dpo-data-s{seed}", run, lambda n: f"{n} preference pairs")

    def dpo_data(self, seed: int) -> Path:
        return self.root / "data" / f"dpo-s{seed}.jsonl"

    def _dpo(self, seed: int) -> Step:
        cfg = self.cfg
        out = self.model("dpo", seed)

        def run(update: Update) -> dict[str, Any]:
            s = DPOSettings(
                model=str(self.model("imitate", seed)),
                data=str(self.dpo_data(seed)),
                output_dir=str(out),
                align="thought",
                sft_weight=cfg.dpo_sft_weight,
                beta=cfg.dpo_beta,
                max_steps=cfg.dpo_steps,
                batch_size=8,
                learning_rate=cfg.dpo_learning_rate,
                max_length=cfg.max_length,
                seed=seed,
                logging_steps=10,
            )
            return trained(train_dpo(s, on_progress=update))

        return self.step(
            f"dpo-s{seed}",
            run,
            lambda v: f"{cfg.dpo_steps} steps, loss {loss_of(v):.4f} → {out}",
            cfg.dpo_steps,
            trains=True,
        )

    def _grpo(self, seed: int, matched: str) -> Step:
        """GRPO from the imitated student on the hard pool, its budget what explore + DPO (or
        RS-SFT: ``matched``) of the same seed spent, so that the two are compared at matched
        cost; its rollouts go to the store under the step's name (``grpo-sS`` at DPO's cost)."""
        cfg = self.cfg
        name = grpo_name(matched)
        out = self.model(name, seed)

        def run(update: Update) -> dict[str, Any]:
            budget = self.costs(seed)[matched]
            if budget is None:  # a run directory from before costs were counted
                raise ConfigError(
                    f"the {matched} cost of seed {seed} was not counted: rerun its steps"
                )
            s = GRPOSettings(
                model=str(self.model("imitate", seed)),
                problems="demo:explore",
                output_dir=str(out),
                store=str(self.root / "store.db"),
                stage=f"{name}-s{seed}",
                system_prompt=False,
                group_size=cfg.grpo_group_size,
                prompts_per_step=cfg.grpo_prompts_per_step,
                temperature=cfg.explore_temperature,
                max_completion_length=cfg.max_new_tokens,
                loss_type=cfg.grpo_loss,
                dynamic_sampling=True,
                learning_rate=cfg.grpo_learning_rate,
                max_steps=cfg.grpo_max_steps,
                token_budget=budget,
                seed=seed,
                logging_steps=10,
            )
            self.close_store()  # the trainer writes its rollouts through a connection of its own
            r = train_grpo(s, problems=self.sets["explore"], on_progress=update)
            keep = ("steps", "rollouts", "correct", "generated_tokens", "trained_tokens")
            return {"budget": budget, **{k: getattr(r, k) for k in keep}, "loss": r.train_loss}

        return self.step(
            f"{name}-s{seed}",
            run,
            lambda v: (
                f"{v['steps']} steps, {v['rollouts']} rollouts ({v['correct']} correct), "
                f"{v['generated_tokens'] + v['trained_tokens']:,} tokens of a {v['budget']:,} "
                f"budget → {out}"
            ),
            cfg.grpo_max_steps,
            trains=True,
        )

    def costs(self, seed: int) -> dict[str, int | None]:
        """What each self-improvement method of ``seed`` spent beyond imitation, in tokens
        generated plus tokens trained on (None where a step has not finished, or was made before
        tokens were counted). RS-SFT and DPO both spend the exploration's rollouts; the
        perplexities that choose DPO's pairs (a forward pass over the rollouts) are not counted."""

        def value(step: str, key: str) -> int | None:
            v = marker(self.root, step)
            return v.get(key) if isinstance(v, dict) else None

        explore = value(f"explore-s{seed}", "generated_tokens")
        out: dict[str, int | None] = {}
        no_pairs = marker(self.root, f"dpo-data-s{seed}") == 0  # DPO spent the rollouts only
        for method, step in (("rs-sft", f"sft-rs-sft-s{seed}"), ("dpo", f"dpo-s{seed}")):
            trained_on = 0 if method == "dpo" and no_pairs else value(step, "tokens")
            out[method] = None if explore is None or trained_on is None else explore + trained_on
        for name in (grpo_name(b) for b in self.cfg.grpo_budgets):
            gen, train = (
                value(f"{name}-s{seed}", "generated_tokens"),
                value(f"{name}-s{seed}", "trained_tokens"),
            )
            out[name] = None if gen is None or train is None else gen + train
        return out

    # -- the run -----------------------------------------------------------------------------------

    def results(self) -> dict[str, dict[str, dict[str, float]]]:
        """Every finished evaluation, by the report's names."""
        cfg, first = self.cfg, self.cfg.seeds[0]
        names = {"backbone": "eval-backbone-k1", "control": "eval-control-k1"}
        for seed in cfg.seeds:
            for model in ("imitate", *methods(cfg)):
                names[f"{model}-s{seed}"] = f"eval-{model}-s{seed}-k1"
        names["imitate-maj"] = f"eval-imitate-s{first}-k{cfg.maj_k}"
        names["rs-sft-maj"] = f"eval-rs-sft-s{first}-k{cfg.maj_k}"
        found = {name: marker(self.root, step) for name, step in names.items()}
        return {name: value for name, value in found.items() if value is not None}

    def run(self) -> dict[str, Any]:
        """Run (or resume) the demo; returns the report's numbers (``backbone``, ``imitate``,
        ``improved``: hard-set accuracy in %; ``minutes``; ``table``: the report's main table)."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "config.json").write_text(json.dumps(asdict(self.cfg), indent=2) + "\n")
        try:
            run_steps(self.root, self.steps(), self.reporter)
        finally:
            self.close_store()
        rows = [
            {
                "seed": seed,
                "explored_correct": explored_count(marker(self.root, f"rs-data-s{seed}")),
            }
            for seed in self.cfg.seeds
        ]
        # the steps' own times, from their markers: a resumed run reports what the whole run took
        seconds = sum(
            json.loads(m.read_text()).get("seconds", 0.0)
            for m in (self.root / "steps").glob("*.json")
        )
        curated = marker(self.root, "curate")
        costs = {seed: self.costs(seed) for seed in self.cfg.seeds}
        summary = write_demo_report(
            self.root, self.cfg, self.results(), curated, rows, seconds, costs
        )
        with (self.root / "report.md").open("a", encoding="utf-8") as fh:
            fh.write("\n".join(self.cleaning_lines()) + "\n")
        return summary

    def cleaning_lines(self) -> list[str]:
        """The report's cleaning section: what D_0's cleaning dropped from the teacher's traces
        and from each seed's correct explored rollouts, per reason."""
        sets = [("D_0: teacher traces", marker(self.root, "curate"))]
        sets += [
            (f"D_1 seed {s}: correct explored rollouts", marker(self.root, f"rs-data-s{s}"))
            for s in self.cfg.seeds
        ]
        rows = [
            [label, str(v["seen"]), str(v["kept"]), _dropped(v)]
            for label, v in sets
            if isinstance(v, dict) and "seen" in v
        ]
        if not rows:
            return []
        return [
            "",
            "## Cleaning",
            "",
            "Every trace that trains the student passes one cleaning (filters, exact and "
            "near-duplicates); `not_selected`: past the per-puzzle limit.",
            "",
            markdown_table(["data", "seen", "kept", "dropped"], rows),
        ]


@dataclass(frozen=True, slots=True)
class Cleaned:
    """What :meth:`DemoRun.clean` kept (trajectory ids) and its curate report."""

    ids: frozenset[str]
    report: dict[str, Any]


def trained(metrics: dict[str, Any]) -> dict[str, Any]:
    """A training step's marker: its loss and the tokens it trained on."""
    return {"loss": metrics["train_loss"], "tokens": metrics.get("tokens_trained")}


def loss_of(value: Any) -> float:
    """The loss in a training step's marker (a run made before tokens were counted saved it bare)."""
    return value["loss"] if isinstance(value, dict) else value


def explored_count(value: Any) -> int:
    """The rollouts an ``rs-data`` step added to D_0 (a run made before explored traces were
    cleaned saved the bare count)."""
    return value if isinstance(value, int) else value["picked"]


def _dropped(c: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in c["dropped"].items()) or "nothing dropped"


def run_demo(cfg: DemoConfig, reporter: Reporter | None = None) -> dict[str, Any]:
    """Run (or resume) the demo in ``cfg.out`` (see :class:`DemoRun`)."""
    return DemoRun(cfg, reporter).run()


__all__ = ["DemoRun", "run_demo"]
