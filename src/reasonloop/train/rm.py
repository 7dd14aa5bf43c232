"""Reward models from the trajectory store: ORM, PRM and a generative verifier (GenRM).

Thin layers over TRL / transformers; the texts each model reads are built by
:mod:`reasonloop.train.rmcontract`, which also loads the saved directories as scorers
(``orm:OUT``, ``prm:OUT``, ``genrm:OUT``), so training and scoring read the same inputs.

- **ORM** — TRL's ``RewardTrainer`` (TRL 1.x supports only pairwise Bradley-Terry training for
  outcome rewards): for each problem with both correct and incorrect trajectories, pairs
  *(correct, incorrect)* are made so that every trajectory is used and no pair repeats
  (:func:`outcome_pairs`); problems with only correct or only incorrect trajectories give no
  pair. The model is a one-output sequence classifier started from the causal LM ``model``.
- **PRM** — TRL 1.x has no PRM trainer, so this is a token classifier with one output trained by
  a plain ``transformers.Trainer`` with a binary cross-entropy at the end of every step (the last
  token of the separator after it, :func:`reasonloop.train.rmcontract.prm_ids`), on the
  store's Math-Shepherd step labels (``reasonloop annotate-steps``): hard labels (0/1) or soft
  ones (the fraction of completions that reached the answer).
- **GenRM** — generative verification: the user message is
  :func:`~reasonloop.train.rmcontract.verification_prompt` and the assistant answers ``Yes``
  (correct trajectory) or ``No``. ``method="sft"`` fine-tunes on that answer with
  :func:`reasonloop.train.sft.train_sft`; ``method="dpo"`` prefers the right answer over the wrong
  one with :func:`reasonloop.train.dpo.train_dpo` (``align="full"``): the Yes/No DPO variant, not
  V-STaR's verifier (DPO on solution pairs, scored by likelihood: :mod:`reasonloop.train.vstar`).
  The rows are written to ``OUT/genrm_data.jsonl`` first.

Every run first holds out ``eval_fraction`` of the problems (:func:`held_out_problems`: by problem,
so no problem is both trained on and measured; seeded by ``seed``), trains on the rest, and then
measures the saved model on the held-out problems only (:func:`pair_accuracy`,
:func:`step_accuracy`, :func:`verdict_accuracy`): the accuracy in ``metrics["heldout"]`` is never
a training-batch number (TRL's logged ``accuracy`` is, and is not reported).

Every run saves the model (or a LoRA adapter with ``lora``; the classifier head is trained and
saved in full) and the tokenizer to ``output_dir`` with ``reasonloop_train.json`` (kind, settings,
metrics). CPU-safe defaults (no bf16). What it does not do: balance classes (except GenRM's
``balance``), or pick checkpoints.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonloop.engines.hf import HFEngine
from reasonloop.errors import ConfigError, DataError, MissingDependency
from reasonloop.options import check_options, include, option
from reasonloop.progress import Update
from reasonloop.records import Problem, Trajectory
from reasonloop.store import open_store
from reasonloop.store.export import stepwise_rows
from reasonloop.train.callbacks import follow
from reasonloop.train.dpo import DPOSettings, train_dpo
from reasonloop.train.rmcontract import (
    NO,
    ORM,
    PRM,
    YES,
    GenRM,
    auto_classifier,
    orm_ids,
    prm_ids,
    question_for,
    verification_prompt,
)
from reasonloop.train.sft import (
    LoraSettings,
    SFTSettings,
    TrainerOptions,
    add_format_tokens,
    load_model_and_tokenizer,
    lora_config,
    save_trained,
    train_sft,
    trl_common_args,
    write_train_info,
)

log = logging.getLogger(__name__)

KINDS = ("orm", "prm", "genrm")


@dataclass(frozen=True, slots=True)
@include(
    TrainerOptions, exclude=("bf16",), learning_rate=1e-5, batch_size=4, max_length=2048
)  # a reward model reads whole trajectories
class RMSettings:
    """What ``reasonloop train orm|prm|genrm`` runs: its flags are these fields' declarations
    (each command takes the ones of its kind)."""

    kind: str = option(cli=None, choices=KINDS, help="orm | prm | genrm")
    model: str = option(cli="--model", help="The causal LM to start from (dir or hub id).")
    store: str = option(
        cli="--store",
        path=True,
        help="The trajectory store to read trajectories (and step labels) from.",
    )
    output_dir: str = option(cli="--out", path=True, help="Where to save the reward model.")
    stage: str | None = option(None, help="Only trajectories of this stage.")
    pairs_per_problem: int = option(
        4, min=1, help="At most N (correct, incorrect) pairs per problem."
    )
    labels: str = option(
        "hard", choices=("hard", "soft"), help="hard (any correct) | soft (fraction)."
    )
    labeler: str | None = option(None, help="Only this labeller's step labels (default: all).")
    method: str = option(
        "sft",
        choices=("sft", "dpo"),
        help="sft (answer Yes/No) | dpo (prefer the right Yes/No answer; V-STaR's solution-pair "
        "verifier is `train vstar`).",
    )
    balance: bool = option(
        False,
        help="Only trajectories of (correct, incorrect) pairs of one problem: as many Yes as No.",
    )
    beta: float = option(0.1, above=0, help="DPO beta (--method dpo).")
    eval_fraction: float = option(
        0.1,
        min=0,
        help="Share of the problems held out of training; the accuracy reported is measured on "
        "them only (at least 1 problem of 2 or more; 0: none).",
    )

    def __post_init__(self) -> None:
        check_options(self)
        if not self.eval_fraction < 1.0:
            raise ConfigError(
                f"must be >= 0 and < 1, got {self.eval_fraction}", field="eval_fraction"
            )


# --- data -----------------------------------------------------------------------------------------


def outcome_pairs(
    trajectories: Iterable[Trajectory], pairs_per_problem: int | None = None
) -> list[tuple[Trajectory, Trajectory]]:
    """``(correct, incorrect)`` pairs per problem, problems in order of first appearance.

    With ``c`` correct and ``w`` incorrect trajectories (in store order) pair ``i`` is
    ``(correct[i % c], incorrect[i % w])`` for ``i < max(c, w)``: every trajectory is used, no pair
    repeats; then the first ``pairs_per_problem`` are kept. Ungraded trajectories are skipped."""
    good: dict[str, list[Trajectory]] = {}
    bad: dict[str, list[Trajectory]] = {}
    order: list[str] = []
    for t in trajectories:
        if t.verdict is None:
            continue
        if t.problem_id not in good:
            good[t.problem_id], bad[t.problem_id] = [], []
            order.append(t.problem_id)
        (good if t.verdict.correct else bad)[t.problem_id].append(t)
    pairs = []
    for pid in order:
        c, w = good[pid], bad[pid]
        if not c or not w:
            continue
        n = max(len(c), len(w))
        if pairs_per_problem is not None:
            n = min(n, pairs_per_problem)
        pairs += [(c[i % len(c)], w[i % len(w)]) for i in range(n)]
    return pairs


def held_out_problems(problem_ids: Iterable[str], fraction: float, seed: int) -> set[str]:
    """The problems held out of training to measure a reward model on: ``fraction * n`` (rounded
    half up) of the ``n`` distinct ids, at least one when ``fraction > 0`` and ``n >= 2``, never all of them
    (none of one); drawn with ``random.Random(seed)`` from the ids in sorted order, so the split
    depends on the ids and the seed, not on the order the store returns them in."""
    ids = sorted(set(problem_ids))
    if fraction <= 0 or len(ids) < 2:
        return set()
    k = min(len(ids) - 1, max(1, int(fraction * len(ids) + 0.5)))  # rounded half up
    return set(random.Random(seed).sample(ids, k))


def heldout_summary(unit: str, problems: int, correct: int, total: int) -> dict[str, Any]:
    """``metrics["heldout"]``: what was measured (``unit``: pairs, steps or answers), on how many
    held-out problems, how many were right, and the accuracy (None when nothing was held out)."""
    return {
        "unit": unit,
        "problems": problems,
        "total": total,
        "correct": correct,
        "accuracy": correct / total if total else None,
    }


def pair_accuracy(
    orm: Any, pairs: Sequence[tuple[Trajectory, Trajectory]], problems: Mapping[str, Problem]
) -> tuple[int, int]:
    """``(right, pairs)``: the pairs whose correct trajectory gets the higher ORM logit (a tie is
    wrong). ``orm`` is a :class:`reasonloop.train.rmcontract.ORM`."""
    logits: dict[str, float] = {}

    def logit(t: Trajectory) -> float:
        key = t.id or t.text
        if key not in logits:
            logits[key] = orm.logit(question_for(problems[t.problem_id]), t.text)
        return logits[key]

    return sum(logit(good) > logit(bad) for good, bad in pairs), len(pairs)


def step_accuracy(prm: Any, rows: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """``(right, steps)`` over stepwise rows: a step is right when the PRM's score and the label
    fall on the same side of 0.5 (score > 0.5 and label > 0.5, or neither; a soft label of exactly
    0.5 counts as negative). Steps whose end a long input cut off are not counted (the PRM never
    sees them). ``prm`` is a :class:`reasonloop.train.rmcontract.PRM`."""
    right = total = 0
    for row in rows:
        scores = prm.step_scores(row["prompt"], list(row["completions"]))
        labels = [float(x) for x in row["labels"]][len(row["labels"]) - len(scores) :]
        right += sum((p > 0.5) == (y > 0.5) for p, y in zip(scores, labels, strict=True))
        total += len(scores)
    return right, total


def verdict_accuracy(
    genrm: Any, trajectories: Iterable[Trajectory], problems: Mapping[str, Problem]
) -> tuple[int, int]:
    """``(right, answers)``: a graded trajectory is judged right when P(Yes) > 0.5 says correct
    exactly when its verdict does. ``genrm`` is a :class:`reasonloop.train.rmcontract.GenRM`."""
    right = total = 0
    for t in trajectories:
        if t.verdict is None or t.problem_id not in problems:
            continue
        says_yes = genrm.score(problems[t.problem_id], None, t.text) > 0.5
        right += says_yes == t.verdict.correct
        total += 1
    return right, total


def verification_rows(
    trajectories: Iterable[Trajectory],
    problems: Mapping[str, Problem],
    method: str = "sft",
    balance_pairs: int | None = None,
) -> list[dict[str, Any]]:
    """GenRM training rows: TRL conversational SFT rows (``messages``) answering Yes / No, or
    preference rows (``prompt``, ``chosen``, ``rejected``) preferring the right answer.

    One row per graded trajectory; with ``balance_pairs=N``, two rows per pair of
    ``outcome_pairs(trajectories, N)`` instead (its correct, then its incorrect trajectory), so the
    rows say Yes as often as No and come only from problems with both (on a benchmark the policy
    rarely solves, every trajectory would teach "No" about 99 times in 100)."""
    if balance_pairs is not None:
        trajectories = [t for pair in outcome_pairs(trajectories, balance_pairs) for t in pair]
    rows = []
    for t in trajectories:
        if t.verdict is None or t.problem_id not in problems:
            continue
        user = {
            "role": "user",
            "content": verification_prompt(question_for(problems[t.problem_id]), t.text),
        }
        right, wrong = (YES, NO) if t.verdict.correct else (NO, YES)
        if method == "sft":
            rows.append({"messages": [user, {"role": "assistant", "content": right}]})
        else:
            rows.append(
                {
                    "prompt": [user],
                    "chosen": [{"role": "assistant", "content": right}],
                    "rejected": [{"role": "assistant", "content": wrong}],
                }
            )
    return rows


def _graded(store: Any, stage: str | None) -> tuple[list[Trajectory], dict[str, Problem]]:
    trajs = [t for t in store.trajectories(stage=stage) if t.verdict is not None]
    problems: dict[str, Problem] = {}
    for pid in dict.fromkeys(t.problem_id for t in trajs):
        p = store.get_problem(pid)
        if p is not None:
            problems[pid] = p
    missing = {t.problem_id for t in trajs} - set(problems)
    if missing:
        log.warning("%d problem(s) not in the store; their trajectories are skipped", len(missing))
    return [t for t in trajs if t.problem_id in problems], problems


def _open_store(path: str) -> Any:
    if not Path(path).exists():
        raise DataError("no such store", where=str(path))
    return open_store(path, create=False, readonly=True)


# --- models ---------------------------------------------------------------------------------------


def _lora_config(s: LoraSettings | None, task_type: str) -> Any:
    return lora_config(s, task_type, modules_to_save=["score"])  # the new head trains in full


def load_classifier_for_training(path: str, task: str) -> tuple[Any, Any]:
    """A one-output ``seq`` or ``token`` classifier started from the causal LM at ``path`` (its
    new head is randomly initialised), with the format's markers added to the tokenizer."""
    torch, auto, AutoTokenizer = auto_classifier(task)
    from transformers.utils import logging as hf_logging

    tok = AutoTokenizer.from_pretrained(path)
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized: score.weight" is the point
    try:
        model = auto.from_pretrained(path, num_labels=1, dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(level)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.config.pad_token_id = tok.pad_token_id
    add_format_tokens(tok, model)
    return model, tok


def _finish(
    trainer: Any, tokenizer: Any, result: Any, s: RMSettings, heldout: dict, **info: Any
) -> dict:
    metrics = save_trained(trainer, tokenizer, result, s.output_dir)
    metrics["heldout"] = heldout
    write_train_info(s.output_dir, s.kind, s, metrics, **info)
    return metrics


# --- ORM ------------------------------------------------------------------------------------------


def train_orm(s: RMSettings, on_progress: Update | None = None) -> dict[str, Any]:
    """Train an ORM with TRL's RewardTrainer on outcome pairs from the store, except those of the
    held-out problems; the metrics, with the held-out pair accuracy in ``heldout``."""
    try:
        from datasets import Dataset
        from trl import RewardConfig, RewardTrainer
    except ImportError as exc:
        raise MissingDependency("trl", "train") from exc
    with _open_store(s.store) as store:
        trajs, problems = _graded(store, s.stage)
    pairs = outcome_pairs(trajs, s.pairs_per_problem)
    if not pairs:
        raise DataError(
            "no (correct, incorrect) pair: an ORM needs problems with both correct and incorrect "
            "graded trajectories",
            where=s.store,
        )
    held = held_out_problems((good.problem_id for good, _ in pairs), s.eval_fraction, s.seed)
    test = [p for p in pairs if p[0].problem_id in held]
    train = [p for p in pairs if p[0].problem_id not in held]
    model, tok = load_classifier_for_training(s.model, "seq")
    rows = []
    for good, bad in train:
        q = question_for(problems[good.problem_id])
        rows.append(
            {
                "chosen_ids": orm_ids(tok, q, good.text, s.max_length),
                "rejected_ids": orm_ids(tok, q, bad.text, s.max_length),
            }
        )
    args = RewardConfig(**trl_common_args(s), max_length=s.max_length, **s.extra)
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
        peft_config=_lora_config(s.lora, "SEQ_CLS"),
    )
    follow(trainer, on_progress)
    result = trainer.train()
    trainer.model.eval()
    orm = ORM(model=trainer.model, tokenizer=tok, max_length=s.max_length)
    heldout = heldout_summary("pairs", len(held), *pair_accuracy(orm, test, problems))
    return _finish(trainer, tok, result, s, heldout, pairs=len(train))


# --- PRM ------------------------------------------------------------------------------------------


def prm_features(
    tokenizer: Any, rows: Iterable[Mapping[str, Any]], max_length: int
) -> list[dict[str, list]]:
    """Token-classification features from stepwise rows (``prompt``, ``completions``,
    ``labels``: bools or fractions): ``input_ids`` and float ``labels``, -100 where no step ends."""
    feats = []
    for row in rows:
        steps, labels = list(row["completions"]), [float(x) for x in row["labels"]]
        ids, ends = prm_ids(tokenizer, row["prompt"], steps, max_length)
        labels = labels[len(labels) - len(ends) :] if ends else []  # the start may be cut
        target = [-100.0] * len(ids)
        for e, y in zip(ends, labels, strict=True):
            target[e] = y
        if ends:
            feats.append({"input_ids": ids, "labels": target})
    return feats


def prm_loss(logits: Any, labels: Any) -> Any:
    """Mean binary cross-entropy of one-output ``logits`` [B, T, 1] against float ``labels``
    [B, T] at the positions whose label is not -100."""
    import torch.nn.functional as F

    mask = labels != -100
    x = logits[..., 0][mask].float()
    y = labels[mask].float()
    return F.binary_cross_entropy_with_logits(x, y)


class _PRMCollator:
    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, feats: list[dict[str, list]]) -> dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in feats)
        ids, attn, labels = [], [], []
        for f in feats:
            pad = width - len(f["input_ids"])
            ids.append(list(f["input_ids"]) + [self.pad_id] * pad)
            attn.append([1] * len(f["input_ids"]) + [0] * pad)
            labels.append(list(f["labels"]) + [-100.0] * pad)
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "attention_mask": torch.tensor(attn, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.float),
        }


def _prm_trainer_class() -> type:
    from transformers import Trainer

    class PRMTrainer(Trainer):
        """A Trainer whose loss is :func:`prm_loss` on the step-end positions."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            outputs = model(**inputs, use_cache=False)
            loss = prm_loss(outputs.logits, labels)
            return (loss, outputs) if return_outputs else loss

    return PRMTrainer


def train_prm(s: RMSettings, on_progress: Update | None = None) -> dict[str, Any]:
    """Train a PRM on the store's step labels (token classification, see the module doc), except
    those of the held-out problems (told apart by their prompt); the metrics, with the held-out
    step accuracy in ``heldout``."""
    try:
        from datasets import Dataset
        from transformers import TrainingArguments
    except ImportError as exc:
        raise MissingDependency("transformers", "train") from exc
    with _open_store(s.store) as store:
        rows = list(stepwise_rows(store, stage=s.stage, labeler=s.labeler, soft=s.labels == "soft"))
    if not rows:
        raise DataError(
            "no step labels: run `reasonloop annotate-steps` on this store first", where=s.store
        )
    held = held_out_problems((r["prompt"] for r in rows), s.eval_fraction, s.seed)
    test = [r for r in rows if r["prompt"] in held]
    train = [r for r in rows if r["prompt"] not in held]
    model, tok = load_classifier_for_training(s.model, "token")
    feats = prm_features(tok, train, s.max_length)
    lora = _lora_config(s.lora, "TOKEN_CLS")
    if lora is not None:
        from peft import get_peft_model

        model = get_peft_model(model, lora)
    args = TrainingArguments(**trl_common_args(s), remove_unused_columns=False, **s.extra)
    trainer = _prm_trainer_class()(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(feats),
        data_collator=_PRMCollator(tok.pad_token_id),
        processing_class=tok,
    )
    follow(trainer, on_progress)
    result = trainer.train()
    trainer.model.eval()
    prm = PRM(model=trainer.model, tokenizer=tok, max_length=s.max_length)
    heldout = heldout_summary("steps", len(held), *step_accuracy(prm, test))
    steps = sum(len(r["labels"]) for r in train)
    return _finish(trainer, tok, result, s, heldout, trajectories=len(train), steps=steps)


# --- GenRM ----------------------------------------------------------------------------------------


def train_genrm(s: RMSettings, on_progress: Update | None = None) -> dict[str, Any]:
    """Train a generative verifier with SFT or DPO on Yes / No answers (see the module doc),
    except those of the held-out problems; the metrics, with the held-out Yes/No accuracy of the
    saved model in ``heldout``."""
    with _open_store(s.store) as store:
        trajs, problems = _graded(store, s.stage)
    pairs_n = s.pairs_per_problem if s.balance else None
    if pairs_n is None:
        judged = trajs
    else:  # the trajectories verification_rows keeps: those of (correct, incorrect) pairs
        judged = [t for pair in outcome_pairs(trajs, pairs_n) for t in pair]
    held = held_out_problems((t.problem_id for t in judged), s.eval_fraction, s.seed)
    train = [t for t in trajs if t.problem_id not in held]
    rows = verification_rows(train, problems, s.method, pairs_n)
    if not rows:
        raise DataError(
            "no (correct, incorrect) pair to balance"
            if s.balance
            else "no graded trajectories to verify",
            where=s.store,
        )
    out = Path(s.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "genrm_data.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    common = {
        "model": s.model,
        "data": str(data),
        "output_dir": s.output_dir,
        "lora": s.lora,
        "epochs": s.epochs,
        "max_steps": s.max_steps,
        "learning_rate": s.learning_rate,
        "batch_size": s.batch_size,
        "grad_accum": s.grad_accum,
        "max_length": s.max_length,
        "warmup": s.warmup,
        "seed": s.seed,
        "logging_steps": s.logging_steps,
        "extra": dict(s.extra),
    }
    if s.method == "sft":
        metrics = train_sft(SFTSettings(**common), on_progress=on_progress)
    else:
        import copy

        # The reference must share the policy's vocabulary after the markers are added: TRL
        # would load it from ``s.model`` without them. With LoRA, TRL uses the base (adapter off).
        model, tok = load_model_and_tokenizer(s.model)
        add_format_tokens(tok, model)
        ref = None if s.lora is not None else copy.deepcopy(model)
        metrics = train_dpo(
            DPOSettings(**common, align="full", beta=s.beta),
            model=model,
            tokenizer=tok,
            ref_model=ref,
            on_progress=on_progress,
        )
    test = [t for t in judged if t.problem_id in held]
    right, total = 0, 0
    if test:
        engine = HFEngine(str(out), spec=f"hf:{out}")  # the saved model, as `genrm:OUT` loads it
        try:
            right, total = verdict_accuracy(GenRM(engine=engine), test, problems)
        finally:
            engine.close()
    metrics["heldout"] = heldout_summary("answers", len(held), right, total)
    write_train_info(out, s.kind, s, metrics, method=s.method, rows=len(rows))
    return metrics


def train_rm(s: RMSettings, on_progress: Update | None = None) -> dict[str, Any]:
    """Train the reward model ``s.kind``; returns the training metrics (``heldout``: accuracy on
    the held-out problems, see :func:`heldout_summary`). ``on_progress`` follows the optimizer
    steps as in :func:`reasonloop.train.sft.train_sft`."""
    if s.kind == "orm":
        return train_orm(s, on_progress)
    if s.kind == "prm":
        return train_prm(s, on_progress)
    return train_genrm(s, on_progress)


__all__ = [
    "KINDS",
    "RMSettings",
    "held_out_problems",
    "heldout_summary",
    "load_classifier_for_training",
    "outcome_pairs",
    "pair_accuracy",
    "prm_features",
    "prm_loss",
    "step_accuracy",
    "train_genrm",
    "train_orm",
    "train_prm",
    "train_rm",
    "verdict_accuracy",
    "verification_rows",
]
