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
- **GenRM** — generative verification (Zhang et al., "Generative Verifiers"): the user message is
  :func:`~reasonloop.train.rmcontract.verification_prompt` and the assistant answers ``Yes``
  (correct trajectory) or ``No``; the score is then ``P(Yes)``
  (:class:`~reasonloop.train.rmcontract.GenRM`). ``method="sft"`` (the paper's) is *unified
  training*: one SFT mixture (:func:`reasonloop.train.sft.train_sft`) of those verification rows
  and ``generation_ratio`` generation rows per verification row — correct trajectories of the
  training problems as plain SFT rows on the problem's prompt (:func:`generation_rows`), so the
  verifier keeps solving while it learns to judge. ``method="dpo"`` is the named Yes/No-DPO
  variant: it prefers the right answer over the wrong one with
  :func:`reasonloop.train.dpo.train_dpo` (``align="full"``); its rows are preferences, so it takes
  no generation rows. It is not V-STaR's verifier (DPO on solution pairs, scored by likelihood:
  :mod:`reasonloop.train.vstar`). The rows are written to ``OUT/genrm_data.jsonl`` first.
- **GenRM-CoT** (``verification="cot"``, SFT): the verifier writes a verification rationale, is
  then asked the Yes/No question and answers it (:func:`~reasonloop.train.rmcontract.cot_messages`;
  two rows per trajectory, one teaching the rationale, one the answer after it). The rationales
  come from the task's exact checker (:func:`verification_rationale`): for Countdown,
  :func:`reasonloop.verify.countdown.explain_countdown` re-checks the answer step by step from the
  problem alone, as a verifier can at test time. For other domains it is a **templated
  shortcut**: the grader's extracted answer and its outcome in a fixed sentence ("The final answer
  is 7. It is not the right answer."), which teaches the verdict's format, not a way to reach it.
  What it does not do: ask a critic model for reference-guided rationales (the paper's source).

Every run first holds out ``eval_fraction`` of the problems (:func:`held_out_problems`: by problem,
so no problem is both trained on and measured; seeded by ``seed``), trains on the rest, and then
measures the saved model on the held-out problems only (:func:`pair_accuracy`,
:func:`step_accuracy`, :func:`verdict_accuracy`; a GenRM also :func:`ranked_pairs` in
``metrics["heldout_pairs"]``): the accuracy in ``metrics["heldout"]`` is never a training-batch
number (TRL's logged ``accuracy`` is, and is not reported). No row of a held-out problem is
trained on, generation rows included.

Every run saves the model (or a LoRA adapter with ``lora``; the classifier head is trained and
saved in full) and the tokenizer to ``output_dir`` with ``reasonloop_train.json`` (kind, settings,
metrics). CPU-safe defaults (no bf16). What it does not do: balance classes (except GenRM's
``balance``), or pick checkpoints.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonloop.engines.hf import HFEngine
from reasonloop.errors import ConfigError, DataError, MissingDependency
from reasonloop.options import check_options, include, option
from reasonloop.problems.countdown import SOURCE as COUNTDOWN
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
    VERIFICATIONS,
    VERIFY_QUESTION,
    VOTES,
    YES,
    GenRM,
    GenRMCoT,
    auto_classifier,
    orm_ids,
    prm_ids,
    question_for,
    rationale_prompt,
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
    write_rows,
    write_train_info,
)
from reasonloop.verify.countdown import explain_countdown

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
        help="sft (answer Yes/No, unified with --generation-ratio) | dpo (prefer the right "
        "Yes/No answer; V-STaR's solution-pair verifier is `train vstar`).",
    )
    verification: str = option(
        "direct",
        choices=VERIFICATIONS,
        help="direct (answer Yes/No at once) | cot (GenRM-CoT: write a verification rationale "
        "first; --method sft).",
    )
    generation_ratio: float = option(
        0.5,
        min=0,
        help="Generation rows (a correct solution on its problem's prompt) per verification row "
        "in the SFT mixture (unified training; --method sft); 0: verification rows only.",
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
        if self.verification == "cot" and self.method != "sft":
            raise ConfigError(
                f"'cot' needs method 'sft' (its rationales are SFT rows), got {self.method!r}",
                field="verification",
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


def _key(t: Trajectory) -> str:
    return t.id or t.text


def verifier_scores(
    genrm: Any, trajectories: Iterable[Trajectory], problems: Mapping[str, Problem]
) -> dict[str, float]:
    """The verifier's score of every graded trajectory whose problem is known, by trajectory id
    (its text when it has none). ``genrm``: anything with ``score`` (a
    :class:`~reasonloop.train.rmcontract.GenRM` or ``GenRMCoT``)."""
    out: dict[str, float] = {}
    for t in trajectories:
        if t.verdict is None or t.problem_id not in problems or _key(t) in out:
            continue
        out[_key(t)] = genrm.score(problems[t.problem_id], None, t.text)
    return out


def verdict_accuracy(
    genrm: Any,
    trajectories: Iterable[Trajectory],
    problems: Mapping[str, Problem],
    scores: Mapping[str, float] | None = None,
) -> tuple[int, int]:
    """``(right, answers)``: a graded trajectory is judged right when P(Yes) > 0.5 says correct
    exactly when its verdict does. ``genrm`` is a :class:`reasonloop.train.rmcontract.GenRM`;
    ``scores`` (from :func:`verifier_scores`) spares scoring again."""
    trajectories = list(trajectories)
    if scores is None:
        scores = verifier_scores(genrm, trajectories, problems)
    right = total = 0
    for t in trajectories:
        if t.verdict is None or t.problem_id not in problems:
            continue
        right += (scores[_key(t)] > 0.5) == t.verdict.correct
        total += 1
    return right, total


def ranked_pairs(
    scores: Mapping[str, float], pairs: Sequence[tuple[Trajectory, Trajectory]]
) -> tuple[int, int]:
    """``(right, pairs)``: the ``(correct, incorrect)`` pairs whose correct trajectory scores
    higher (a tie is wrong) — what best-of-N asks of a verifier."""
    return sum(scores[_key(good)] > scores[_key(bad)] for good, bad in pairs), len(pairs)


_SAYS = {
    "no_answer": "The response gives no final answer.",
    "thought_unfinished": "The thought never ends, so there is no final answer.",
}


def verification_rationale(problem: Problem, t: Trajectory) -> tuple[bool, str] | None:
    """``(correct, rationale)``: the verification rationale a GenRM-CoT row teaches for ``t`` and
    the verdict it reaches (see the module docstring: the Countdown checker's step-by-step check;
    elsewhere a templated sentence from the stored verdict, a named shortcut). None when ``t`` is
    ungraded, or when the checker's verdict today differs from the one stored with ``t`` (graded
    by an older checker): a rationale must never argue against its row's label."""
    if t.verdict is None:
        return None
    if problem.domain == "puzzle" and problem.source == COUNTDOWN:
        verdict, rationale = explain_countdown(problem, t.text)
        return None if verdict.correct != t.verdict.correct else (verdict.correct, rationale)
    v = t.verdict
    if v.reason in _SAYS:
        return v.correct, _SAYS[v.reason]
    said = f"The final answer is {v.extracted}." if v.extracted else "The final answer is unclear."
    return v.correct, f"{said} It is {'' if v.correct else 'not '}the right answer."


def verification_rows(
    trajectories: Iterable[Trajectory],
    problems: Mapping[str, Problem],
    method: str = "sft",
    balance_pairs: int | None = None,
    verification: str = "direct",
) -> list[dict[str, Any]]:
    """GenRM training rows: TRL conversational SFT rows (``messages``) answering Yes / No, or
    preference rows (``prompt``, ``chosen``, ``rejected``) preferring the right answer.

    One row per graded trajectory; with ``verification="cot"`` two SFT rows instead, both from
    :func:`~reasonloop.train.rmcontract.cot_messages`: the rationale prompt answered with
    :func:`verification_rationale`, then the whole conversation answered Yes / No (trajectories
    with no rationale are left out). With ``balance_pairs=N``, the trajectories of
    ``outcome_pairs(trajectories, N)`` instead (each pair's correct, then its incorrect one), so
    the rows say Yes as often as No and come only from problems with both (on a benchmark the
    policy rarely solves, every trajectory would teach "No" about 99 times in 100)."""
    if balance_pairs is not None:
        trajectories = [t for pair in outcome_pairs(trajectories, balance_pairs) for t in pair]
    rows: list[dict[str, Any]] = []
    stale = 0
    for t in trajectories:
        if t.verdict is None or t.problem_id not in problems:
            continue
        problem = problems[t.problem_id]
        question = question_for(problem)
        if verification == "cot":
            found = verification_rationale(problem, t)
            if found is None:
                stale += 1
                continue
            correct, rationale = found
            ask = {"role": "user", "content": rationale_prompt(question, t.text)}
            said = {"role": "assistant", "content": rationale}
            rows.append({"messages": [ask, said]})
            verdict = {"role": "assistant", "content": YES if correct else NO}
            rows.append(
                {"messages": [ask, said, {"role": "user", "content": VERIFY_QUESTION}, verdict]}
            )
            continue
        user = {"role": "user", "content": verification_prompt(question, t.text)}
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
    if stale:
        log.warning(
            "%d trajectories left out: the checker's verdict today differs from the stored one",
            stale,
        )
    return rows


def generation_count(verification_rows: int, ratio: float) -> int:
    """How many generation rows a mixture with ``verification_rows`` rows holds at ``ratio``
    generation rows per verification row: ``ratio * verification_rows`` rounded half up."""
    return int(ratio * verification_rows + 0.5)


def generation_rows(
    trajectories: Iterable[Trajectory], problems: Mapping[str, Problem], count: int, seed: int
) -> list[dict[str, Any]]:
    """``count`` plain SFT rows of correct solutions: the problem's prompt (the question a reward
    model sees, :func:`~reasonloop.train.rmcontract.question_for`) answered with a correct
    trajectory. The correct trajectories are taken in an order shuffled with
    ``random.Random(seed)``, each once before any is repeated (a ratio that asks for more rows
    than there are correct trajectories cycles through them again). [] when ``count`` is 0 or
    there is no correct trajectory."""
    correct = [
        t
        for t in trajectories
        if t.verdict is not None and t.verdict.correct and t.problem_id in problems
    ]
    if count <= 0 or not correct:
        return []
    random.Random(seed).shuffle(correct)
    rows = []
    for i in range(count):
        t = correct[i % len(correct)]
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": question_for(problems[t.problem_id])},
                    {"role": "assistant", "content": t.text},
                ]
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


def genrm_rows(
    s: RMSettings, trajs: Sequence[Trajectory], problems: Mapping[str, Problem], held: set[str]
) -> tuple[list[dict[str, Any]], int]:
    """``(rows, verification rows)``: what ``train genrm`` trains on, from the trajectories of
    the problems not in ``held`` — the verification rows (:func:`verification_rows`), then with
    ``method="sft"`` the :func:`generation_count` generation rows of the mixture."""
    train = [t for t in trajs if t.problem_id not in held]
    pairs_n = s.pairs_per_problem if s.balance else None
    rows = verification_rows(train, problems, s.method, pairs_n, s.verification)
    if not rows:
        raise DataError(
            "no (correct, incorrect) pair to balance"
            if s.balance
            else "no graded trajectories to verify",
            where=s.store,
        )
    if s.method != "sft" or s.generation_ratio == 0:
        return rows, len(rows)
    count = generation_count(len(rows), s.generation_ratio)
    gen = generation_rows(train, problems, count, s.seed)
    if count and not gen:
        raise DataError(
            f"no correct trajectory to make the {count} generation rows that generation_ratio "
            f"{s.generation_ratio} asks for: use --generation-ratio 0 (verification only)",
            where=s.store,
        )
    return rows + gen, len(rows)


def train_genrm(s: RMSettings, on_progress: Update | None = None) -> dict[str, Any]:
    """Train a generative verifier (direct or CoT) with SFT on the mixture, or with DPO on Yes /
    No answers (see the module doc), except on the held-out problems; the metrics, with the
    held-out Yes/No accuracy of the saved model in ``heldout`` (GenRM-CoT: the mean P(Yes) over
    :data:`~reasonloop.train.rmcontract.VOTES` sampled rationales, > 0.5), and in
    ``heldout_pairs`` the share of the held-out problems' ``(correct, incorrect)`` pairs (at most
    ``pairs_per_problem`` each) whose correct trajectory it scores higher."""
    with _open_store(s.store) as store:
        trajs, problems = _graded(store, s.stage)
    pairs_n = s.pairs_per_problem if s.balance else None
    if pairs_n is None:
        judged = trajs
    else:  # the trajectories verification_rows keeps: those of (correct, incorrect) pairs
        judged = [t for pair in outcome_pairs(trajs, pairs_n) for t in pair]
    held = held_out_problems((t.problem_id for t in judged), s.eval_fraction, s.seed)
    rows, n_verify = genrm_rows(s, trajs, problems, held)
    out = Path(s.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "genrm_data.jsonl"
    write_rows(data, rows)  # every rank builds the same rows; none reads a half-written file
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
    right, total, scores, pairs = 0, 0, {}, []
    if test:
        engine = HFEngine(str(out), spec=f"hf:{out}")  # the saved model, as `genrm:OUT` loads it
        try:
            verifier: Any = (
                GenRMCoT(engine=engine, votes=VOTES)
                if s.verification == "cot"
                else GenRM(engine=engine)
            )
            scores = verifier_scores(verifier, test, problems)
        finally:
            engine.close()
        right, total = verdict_accuracy(verifier, test, problems, scores)
        pairs = outcome_pairs(test, s.pairs_per_problem)
    metrics["heldout"] = heldout_summary("answers", len(held), right, total)
    # the same held-out problems as pairs: does the correct answer get the higher score?
    metrics["heldout_pairs"] = heldout_summary("pairs", len(held), *ranked_pairs(scores, pairs))
    write_train_info(
        out,
        s.kind,
        s,
        metrics,
        method=s.method,
        verification=s.verification,
        rows=len(rows),
        verification_rows=n_verify,
        generation_rows=len(rows) - n_verify,
    )
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
    "generation_count",
    "generation_rows",
    "genrm_rows",
    "held_out_problems",
    "heldout_summary",
    "load_classifier_for_training",
    "outcome_pairs",
    "pair_accuracy",
    "prm_features",
    "prm_loss",
    "ranked_pairs",
    "step_accuracy",
    "train_genrm",
    "train_orm",
    "train_prm",
    "train_rm",
    "verdict_accuracy",
    "verification_rationale",
    "verification_rows",
    "verifier_scores",
]
