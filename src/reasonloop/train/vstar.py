"""V-STaR: a verifier trained by DPO on (correct, incorrect) solution pairs, scoring a candidate by
its likelihood.

V-STaR (Hosseini et al., 2024) trains its verifier on the generator's own labelled solutions. For
every problem, each solution graded correct is preferred over each one graded incorrect: the pairs
are the Cartesian product of the two sets, ``pairs_per_problem`` of them at most per problem, drawn
with ``seed`` (:func:`vstar_pairs`). The verifier is trained with DPO on those pairs (TRL's
``DPOTrainer`` through :func:`reasonloop.train.dpo.train_dpo`, ``align="full"``, no SFT term),
starting from the SFT generator, which is also DPO's reference model. At test time a candidate
``y`` to problem ``x`` scores ``log π_ver(y | x)`` under the trained verifier, summed over the
response's tokens or their mean (:class:`VStar`, the scorers ``vstar:DIR`` and ``vstar-mean:DIR``).

The prompt ``x`` is the one the generator was trained and sampled with: the problem's user message
(:func:`reasonloop.problems.prompt.prompt_for`), after the format's system prompt unless
``system_prompt`` is off. Training records the choice and scoring reads it back, so they agree.

Data: the store's graded trajectories of one or several stages (V-STaR's iteration ``i`` trains on
all of rounds 1..i's labelled solutions: ``--stage explore-r1 --stage explore-r2 ...``), or a JSONL
file of labelled solutions, one per line: ``{"problem_id": str, "prompt": str (the user message,
as ``prompt_for`` poses the problem), "response": str, "correct": bool}``.

Before training, ``eval_fraction`` of the problems with a pair is held out
(:func:`reasonloop.train.rm.held_out_problems`, by problem, seeded); the saved verifier is then
measured on the held-out pairs only: ``metrics["heldout"]`` is the share of them whose correct
solution scores strictly higher than the incorrect one (summed log-probs, the default scorer),
``metrics["heldout_mean"]`` the same with mean log-probs. No training-batch accuracy is reported.

What this is not: ``reasonloop train genrm --method dpo`` is a different verifier (asked "Is the
answer correct?", it prefers the right Yes/No answer); it stays as that variant. This module does
not deduplicate solutions, balance problems, or run the generator's side of the V-STaR iteration
(the recipe's ``rs-sft`` rounds do: the backbone fine-tuned on correct solutions).
"""

from __future__ import annotations

import copy
import logging
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from reasonloop.engines.base import Prompt, Sample, user_messages
from reasonloop.engines.hf import HFEngine
from reasonloop.errors import ConfigError, DataError
from reasonloop.format import SYSTEM_PROMPT
from reasonloop.options import check_options, include, option
from reasonloop.problems.prompt import prompt_for
from reasonloop.progress import Update
from reasonloop.records import Problem, Trajectory, Verdict
from reasonloop.store import open_store
from reasonloop.train.dpo import DPOSettings, train_dpo
from reasonloop.train.grpo import GRPOSettings
from reasonloop.train.rm import RMSettings, held_out_problems, heldout_summary
from reasonloop.train.rmcontract import check_kind
from reasonloop.train.sft import (
    add_format_tokens,
    jsonl_lines,
    load_model_and_tokenizer,
    write_rows,
    write_train_info,
)

log = logging.getLogger(__name__)

KIND = "vstar"
AGGREGATES = ("sum", "mean")  # how a candidate's token log-probs make its score


def _only(block: type, *names: str) -> tuple[str, ...]:
    """The ``exclude`` of an :func:`include` that takes only ``names`` from ``block``."""
    return tuple(f.name for f in fields(block) if f.name not in names)


@dataclass(frozen=True, slots=True)
@include(DPOSettings, exclude=("data", "align", "sft_weight"))
@include(GRPOSettings, exclude=_only(GRPOSettings, "system_prompt"))
@include(
    RMSettings, exclude=_only(RMSettings, "pairs_per_problem", "eval_fraction"), pairs_per_problem=8
)
class VStarSettings:
    """What ``reasonloop train vstar`` runs: its flags are these fields' declarations (the DPO
    trainer block, the reward models' pair cap and held-out share, GRPO's system-prompt switch)."""

    model: str = option(
        cli="--model",
        help="The SFT generator: the verifier starts from it, and it is DPO's reference model.",
    )
    output_dir: str = option(cli="--out", path=True, help="Where to save the verifier.")
    store: str | None = option(
        None, cli="--store", path=True, help="The trajectory store to read labelled solutions from."
    )
    stages: tuple[str, ...] = option(
        (),
        cli="--stage",
        help="Only trajectories of these stages (repeat the flag; default: all). V-STaR's "
        "iteration i: the explore stages of rounds 1..i.",
    )
    data: str | None = option(
        None,
        cli="--data",
        path=True,
        help="Instead of --store: JSONL of labelled solutions (problem_id, prompt, response, "
        "correct).",
    )

    def __post_init__(self) -> None:
        check_options(self)
        if not self.eval_fraction < 1.0:
            raise ConfigError(
                f"must be >= 0 and < 1, got {self.eval_fraction}", field="eval_fraction"
            )


# --- the prompt and the score ---------------------------------------------------------------------


def verifier_prompt(question: str, system_prompt: bool) -> tuple[Any, ...]:
    """The chat ``x`` a solution is scored after: the optional system prompt, then the user
    message (the generator's own prompt)."""
    return user_messages(question, SYSTEM_PROMPT if system_prompt else None)


def aggregate(logprobs: Sequence[float], how: str) -> float:
    """``sum`` or ``mean`` of a solution's token log-probs; -inf for an empty solution (so that
    an empty response never outranks a real one, as a sum of nothing would)."""
    if not logprobs:
        return -math.inf
    total = math.fsum(logprobs)
    if how == "sum":
        return total
    if how == "mean":
        return total / len(logprobs)
    raise ConfigError(f"aggregate must be one of {AGGREGATES}, got {how!r}")


class VStar:
    """A V-STaR verifier as a scorer: ``score`` = ``log π_ver(response | problem)`` under the
    trained model, the response's token log-probs summed (``aggregate="sum"``, the default) or
    averaged (``"mean"``); -inf for an empty response.

    Scores are log-probs (<= 0), comparable across candidates of one problem: best-of-N ranks
    them. ``sum`` is V-STaR's likelihood and the quantity DPO trained (a sequence's summed
    log-ratio), but it favours short candidates; ``mean`` is length-normalised (use it when
    candidates differ much in length, and for beam search, whose partial responses differ in
    length). A weighted vote needs non-negative weights and counts these as 0: it is not
    supported. The prompt is rebuilt from the problem as training posed it (``system_prompt``
    read from the training info), whatever prompt the strategy sampled with.

    Loads ``path`` with the ``hf`` engine (a LoRA adapter on its base too), or takes any engine
    with ``score``.
    """

    oracle = False

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        engine: Any = None,
        aggregate: str = "sum",
        system_prompt: bool | None = None,
    ):
        if aggregate not in AGGREGATES:
            raise ConfigError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
        info: dict[str, Any] = {}
        if path is not None:
            info = check_kind(path, KIND)
        if engine is None:
            if path is None:
                raise ConfigError("VStar needs a path or an engine")
            engine = HFEngine(str(path), spec=f"hf:{path}")
        if system_prompt is None:
            system_prompt = bool(info.get("settings", {}).get("system_prompt", True))
        self.engine, self.aggregate, self.system_prompt = engine, aggregate, system_prompt

    def __repr__(self) -> str:
        return f"VStar({self.engine.spec!r}, aggregate={self.aggregate!r})"

    def with_aggregate(self, how: str) -> VStar:
        """The same verifier (one loaded model) scoring with another aggregate."""
        return VStar(engine=self.engine, aggregate=how, system_prompt=self.system_prompt)

    def logprobs(self, question: str, response: str) -> tuple[float, ...]:
        """The log-prob of each token of ``response`` after the question's prompt."""
        return self.engine.score(verifier_prompt(question, self.system_prompt), response).logprobs

    def score(
        self, problem: Problem, prompt: Prompt, response: str, sample: Sample | None = None
    ) -> float:
        return aggregate(self.logprobs(prompt_for(problem), response), self.aggregate)


# --- data -----------------------------------------------------------------------------------------


def vstar_pairs(
    trajectories: Iterable[Trajectory], pairs_per_problem: int | None, seed: int
) -> list[tuple[Trajectory, Trajectory]]:
    """``(correct, incorrect)`` pairs per problem, problems in order of first appearance.

    A problem with correct solutions ``c_1..c_a`` and incorrect ones ``w_1..w_b`` (store order) has
    the ``a * b`` pairs of their product, ``(c_1, w_1), (c_1, w_2), ..., (c_a, w_b)``. Over
    ``pairs_per_problem`` of them, that many are drawn with ``random.Random(f"{seed}:{problem
    id}")`` and kept in product order: a problem's draw depends on its id and the seed only, not
    on the other problems. Ungraded trajectories are skipped."""
    good: dict[str, list[Trajectory]] = {}
    bad: dict[str, list[Trajectory]] = {}
    for t in trajectories:
        if t.verdict is None:
            continue
        good.setdefault(t.problem_id, [])
        bad.setdefault(t.problem_id, [])
        (good if t.verdict.correct else bad)[t.problem_id].append(t)
    pairs: list[tuple[Trajectory, Trajectory]] = []
    for pid in good:
        product = [(c, w) for c in good[pid] for w in bad[pid]]
        if pairs_per_problem is not None and len(product) > pairs_per_problem:
            keep = random.Random(f"{seed}:{pid}").sample(range(len(product)), pairs_per_problem)
            product = [product[i] for i in sorted(keep)]
        pairs += product
    return pairs


def store_solutions(
    store: Any, stages: Sequence[str] = ()
) -> tuple[list[Trajectory], dict[str, str]]:
    """The graded trajectories of ``stages`` (all when empty; each trajectory once) and the user
    message of each of their problems. Trajectories whose problem is not in the store are left
    out, with a warning."""
    seen: set[str] = set()
    trajs: list[Trajectory] = []
    for stage in stages or (None,):
        for t in store.trajectories(stage=stage):
            key = t.id or f"{t.problem_id}\0{t.text}"
            if t.verdict is None or key in seen:
                continue
            seen.add(key)
            trajs.append(t)
    questions: dict[str, str] = {}
    for pid in dict.fromkeys(t.problem_id for t in trajs):
        p = store.get_problem(pid)
        if p is not None:
            questions[pid] = prompt_for(p)
    missing = {t.problem_id for t in trajs} - set(questions)
    if missing:
        log.warning("%d problem(s) not in the store; their trajectories are skipped", len(missing))
    return [t for t in trajs if t.problem_id in questions], questions


def read_solutions(path: str | Path) -> tuple[list[Trajectory], dict[str, str]]:
    """Labelled solutions from JSONL (see the module docstring): as trajectories (id
    ``path:line``) and each problem's user message. DataError naming the line and the field when
    a row is malformed, or when one problem is given two different prompts."""
    path = Path(path)
    trajs: list[Trajectory] = []
    questions: dict[str, str] = {}
    for where, row in jsonl_lines(path):
        if not isinstance(row, dict):
            raise DataError("expected a JSON object", where=where)
        for key in ("problem_id", "prompt", "response"):
            if not isinstance(row.get(key), str) or not row[key]:
                raise DataError("expected a non-empty string", where=where, field=key)
        if not isinstance(row.get("correct"), bool):
            raise DataError("expected true or false", where=where, field="correct")
        pid = row["problem_id"]
        if questions.setdefault(pid, row["prompt"]) != row["prompt"]:
            raise DataError(
                f"problem {pid!r} was given another prompt on an earlier line; one problem, one "
                "prompt",
                where=where,
                field="prompt",
            )
        ok = row["correct"]
        verdict = Verdict(ok, None, "correct" if ok else "wrong")
        trajs.append(Trajectory(pid, row["response"], verdict=verdict, id=where))
    if not trajs:
        raise DataError("no labelled solutions", where=str(path))
    return trajs, questions


def load_solutions(s: VStarSettings) -> tuple[list[Trajectory], dict[str, str]]:
    """The labelled solutions ``s`` names: from ``s.store`` (its ``s.stages``) or ``s.data``."""
    if bool(s.store) == bool(s.data):
        raise ConfigError(
            "give either --store (with --stage) or --data, not both or neither", field="store"
        )
    if s.data:
        if s.stages:
            raise ConfigError(
                "--stage selects from a store; --data takes every row", field="stages"
            )
        return read_solutions(s.data)
    store_path = str(s.store)
    if not Path(store_path).exists():
        raise DataError("no such store", where=store_path)
    with open_store(store_path, create=False, readonly=True) as store:
        return store_solutions(store, s.stages)


def preference_rows(
    pairs: Iterable[tuple[Trajectory, Trajectory]],
    questions: Mapping[str, str],
    system_prompt: bool,
) -> list[dict[str, Any]]:
    """TRL conversational preference rows (``prompt``, ``chosen``, ``rejected``; plus
    ``problem_id``) of the pairs, posed as :func:`verifier_prompt` poses them."""
    rows = []
    for good, bad in pairs:
        prompt = verifier_prompt(questions[good.problem_id], system_prompt)
        rows.append(
            {
                "problem_id": good.problem_id,
                "prompt": [{"role": m.role, "content": m.content} for m in prompt],
                "chosen": [{"role": "assistant", "content": good.text}],
                "rejected": [{"role": "assistant", "content": bad.text}],
            }
        )
    return rows


def heldout_accuracy(
    verifier: VStar,
    pairs: Sequence[tuple[Trajectory, Trajectory]],
    questions: Mapping[str, str],
) -> dict[str, tuple[int, int]]:
    """``{"sum": (right, pairs), "mean": (right, pairs)}``: the pairs whose correct solution
    scores strictly higher than the incorrect one (a tie is wrong), under each aggregate. Each
    solution is scored once."""
    cache: dict[str, tuple[float, ...]] = {}

    def lps(t: Trajectory) -> tuple[float, ...]:
        key = t.id or t.text
        if key not in cache:
            cache[key] = verifier.logprobs(questions[t.problem_id], t.text)
        return cache[key]

    out = {}
    for how in AGGREGATES:
        right = sum(aggregate(lps(g), how) > aggregate(lps(b), how) for g, b in pairs)
        out[how] = (right, len(pairs))
    return out


# --- training -------------------------------------------------------------------------------------


def train_vstar(s: VStarSettings, on_progress: Update | None = None) -> dict[str, Any]:
    """Train a V-STaR verifier (see the module docstring) and save it to ``s.output_dir`` with
    ``vstar_pairs.jsonl`` (the training pairs) and ``reasonloop_train.json``; returns the DPO
    run's metrics with ``heldout`` / ``heldout_mean`` (see :func:`heldout_summary`)."""
    trajs, questions = load_solutions(s)
    pairs = vstar_pairs(trajs, s.pairs_per_problem, s.seed)
    if not pairs:
        raise DataError(
            "no (correct, incorrect) pair: V-STaR needs problems with both correct and incorrect "
            "graded solutions",
            where=str(s.store or s.data),
        )
    held = held_out_problems((good.problem_id for good, _ in pairs), s.eval_fraction, s.seed)
    test = [p for p in pairs if p[0].problem_id in held]
    train = [p for p in pairs if p[0].problem_id not in held]
    out = Path(s.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "vstar_pairs.jsonl"
    rows = preference_rows(train, questions, s.system_prompt)
    write_rows(data, rows)  # every rank builds the same rows; none reads a half-written file
    dpo_names = {f.name for f in fields(DPOSettings)} - {"data", "align", "sft_weight"}
    common = {f.name: getattr(s, f.name) for f in fields(s) if f.name in dpo_names}
    dpo = DPOSettings(**common, data=str(data), align="full", sft_weight=0.0)
    # the reference is the SFT generator with the format's markers added, as the policy gets them
    # (TRL would load it from s.model without them); with LoRA, TRL uses the base (adapter off)
    model, tok = load_model_and_tokenizer(s.model)
    add_format_tokens(tok, model)
    ref = None if s.lora is not None else copy.deepcopy(model)
    metrics = train_dpo(dpo, model=model, tokenizer=tok, ref_model=ref, on_progress=on_progress)
    del model, ref
    acc = {how: (0, 0) for how in AGGREGATES}
    if test:
        engine = HFEngine(str(out), spec=f"hf:{out}")  # the saved model, as `vstar:OUT` loads it
        try:
            verifier = VStar(engine=engine, system_prompt=s.system_prompt)
            acc = heldout_accuracy(verifier, test, questions)
        finally:
            engine.close()
    metrics["heldout"] = heldout_summary("pairs", len(held), *acc["sum"])
    metrics["heldout_mean"] = heldout_summary("pairs", len(held), *acc["mean"])
    problems = len({good.problem_id for good, _ in train})
    write_train_info(out, KIND, s, metrics, pairs=len(train), problems=problems)
    return metrics


__all__ = [
    "AGGREGATES",
    "KIND",
    "VStar",
    "VStarSettings",
    "aggregate",
    "heldout_accuracy",
    "load_solutions",
    "preference_rows",
    "read_solutions",
    "store_solutions",
    "train_vstar",
    "vstar_pairs",
    "verifier_prompt",
]
