"""The reward-model contract: what ORM, PRM and generative-verifier (GenRM) models read, how a
trained one is loaded, and how its output becomes a score.

Training (:mod:`reasonloop.train.rm`) builds its inputs with the functions below and measures the
held-out accuracy with the classes below; search loads the saved directories as scorers with
:func:`reasonloop.search.scorers.make_scorer` (``orm:PATH``, ``prm:PATH``, ``genrm:PATH``,
``genrm-cot:PATH``). One module for both sides, so training and scoring always agree. Each reads a directory written by
:mod:`reasonloop.train.rm` (a full model, or a LoRA adapter on top of its base model).

- :class:`ORM` — a sequence classifier with one output; the score is ``sigmoid(logit)``, read as
  the probability that the response is correct (the logit is a Bradley-Terry reward, so the
  probability is monotone in it but not calibrated).
- :class:`PRM` — a token classifier with one output read at the end of every step; a callable
  ``(problem, prompt, steps) -> [sigmoid(logit) per step]`` for
  :class:`~reasonloop.search.scorers.RewardModelScorer`, which aggregates them (min / last /
  mean / prod).
- :class:`GenRM` — a causal LM asked :func:`verification_prompt`; the score is ``P(Yes)``, the
  probability of its answer being ``Yes``: the softmax over the whole vocabulary at the answer
  position (for a ``Yes`` of several tokens, the product of their probabilities, i.e. the
  probability of the whole word). That is the GenRM paper's score and the default
  (``form="yes"``): it keeps the verifier's doubt, where the named variant ``form="yes-no"``,
  ``P(Yes) / (P(Yes) + P(No))`` (what reasonloop scored before), renormalises it away — a
  verifier that puts 1% on Yes, 0.1% on No and the rest on neither scores 0.01 by default and
  0.91 normalised. The two rank candidates alike when all the mass is on the two words.
- :class:`GenRMCoT` — GenRM-CoT: the verifier first writes a verification rationale (sampled
  ``votes`` times at a temperature), is then asked :data:`VERIFY_QUESTION`, and the score is
  the mean of ``P(Yes)`` over the rationales (the paper's "majority voting" over verifications:
  an average of probabilities, not a count of verdicts). The conversation is
  :func:`cot_messages`: the rationale is the verifier's first turn, the Yes/No its second, so
  ``P(Yes)`` is read exactly as for the direct GenRM (no guess at where a word starts).

The texts the models see are built by the functions below, which training uses too, so training
and scoring always agree: the question is :func:`reasonloop.problems.prompt.prompt_for` of the
problem (the policy's system prompt is never shown to a reward model). Sequences longer than
``max_length`` tokens lose their *start* (the end holds the answer and the last steps).
What it does not do: batch several responses into one forward pass, or run on a GPU unless asked
(``device=``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasonloop.engines.base import Message, Prompt, Request, Sample
from reasonloop.engines.hf import HFEngine
from reasonloop.errors import ConfigError, EngineError, MissingDependency
from reasonloop.problems.prompt import prompt_for
from reasonloop.records import Problem

log = logging.getLogger(__name__)

STEP_SEPARATOR = "\n\n"  # what follows the question and every step in a PRM's input
VERIFY_QUESTION = "Is the answer correct? Answer Yes or No."
VERIFY_STEPS = "Check the answer step by step."  # GenRM-CoT's first question: the rationale
YES, NO = "Yes", "No"
KINDS = ("orm", "prm", "genrm")
GENRM_FORMS = ("yes", "yes-no")  # P(Yes) (default) | P(Yes) / (P(Yes) + P(No))
VERIFICATIONS = ("direct", "cot")  # how a GenRM was trained: Yes/No at once, or a rationale first
VOTES = 4  # GenRM-CoT: rationales sampled per response (eval's --verifications declares the flag)
COT_TEMPERATURE = 0.7  # GenRM-CoT rationales are sampled, so that the votes differ
COT_MAX_TOKENS = 256  # the length of one rationale at most


def question_for(problem: Problem) -> str:
    """The question a reward model sees: the problem's user message, no system prompt."""
    return prompt_for(problem)


def orm_text(question: str, response: str) -> str:
    """What an ORM reads: the question, a blank line, the response."""
    return f"{question}{STEP_SEPARATOR}{response}"


def verification_prompt(question: str, response: str) -> str:
    """The user message a generative verifier answers with Yes or No."""
    return f"{question}\n\nProposed response:\n{response}\n\n{VERIFY_QUESTION}"


def rationale_prompt(question: str, response: str) -> str:
    """GenRM-CoT's first user message: the verifier answers with a verification rationale."""
    return f"{question}\n\nProposed response:\n{response}\n\n{VERIFY_STEPS}"


def cot_messages(question: str, response: str, rationale: str) -> tuple[Message, ...]:
    """GenRM-CoT's conversation up to the Yes/No: the rationale prompt, the verifier's
    rationale, then :data:`VERIFY_QUESTION` (the verifier's next turn is Yes or No)."""
    return (
        Message("user", rationale_prompt(question, response)),
        Message("assistant", rationale),
        Message("user", VERIFY_QUESTION),
    )


def orm_ids(tokenizer: Any, question: str, response: str, max_length: int) -> list[int]:
    """Token ids of :func:`orm_text` with the tokenizer's special tokens and an EOS at the end,
    keeping the last ``max_length``."""
    ids = list(tokenizer(orm_text(question, response))["input_ids"])
    if tokenizer.eos_token_id is not None and (not ids or ids[-1] != tokenizer.eos_token_id):
        ids.append(tokenizer.eos_token_id)
    return ids[-max_length:]


def prm_ids(
    tokenizer: Any, question: str, steps: Sequence[str], max_length: int
) -> tuple[list[int], list[int]]:
    """``(ids, ends)``: the question then every step, each followed by :data:`STEP_SEPARATOR`;
    ``ends[i]`` is the position of the last token of step ``i``'s separator (where the PRM's
    output for step ``i`` is read). Pieces are tokenized separately so a step never merges with
    its separator. Over ``max_length`` the start is cut; steps whose end was cut have no entry.
    """
    sep = tokenizer(STEP_SEPARATOR, add_special_tokens=False)["input_ids"]
    if not sep:
        raise ConfigError(f"the tokenizer turns the step separator {STEP_SEPARATOR!r} into nothing")
    ids = list(tokenizer(question)["input_ids"]) + list(sep)
    ends = []
    for step in steps:
        ids += tokenizer(step, add_special_tokens=False)["input_ids"]
        ids += sep
        ends.append(len(ids) - 1)
    cut = max(0, len(ids) - max_length)
    return ids[cut:], [e - cut for e in ends if e >= cut]


def train_info(path: str | Path) -> dict[str, Any]:
    """The ``reasonloop_train.json`` a training run left in ``path`` ({} when absent)."""
    f = Path(path) / "reasonloop_train.json"
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def check_kind(path: str | Path, kind: str) -> dict[str, Any]:
    """The training info of the ``kind`` model in ``path``; ConfigError when there is no such
    directory or it holds another kind."""
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(f"{kind}:{path}: no such model directory")
    info = train_info(p)
    trained = info.get("kind")
    if trained is not None and trained != kind:
        raise ConfigError(f"{kind}:{path} holds a {trained!r} model, not {kind!r}; use {trained}:")
    return info


def load_classifier(path: str | Path, task: str, *, device: str = "cpu") -> tuple[Any, Any]:
    """(model, tokenizer) of a one-output classifier saved by :mod:`reasonloop.train.rm`:
    ``task`` is ``seq`` (ORM) or ``token`` (PRM). A LoRA adapter directory gets its base model
    loaded with a one-output head, resized to the adapter's tokenizer, and the adapter on top."""
    torch, auto, AutoTokenizer = auto_classifier(task)
    p = Path(path)
    try:
        tok = AutoTokenizer.from_pretrained(str(p))
        adapter = p / "adapter_config.json"
        if adapter.exists():
            try:
                from peft import PeftModel
            except ImportError as exc:
                raise MissingDependency("peft", "train") from exc
            base = json.loads(adapter.read_text())["base_model_name_or_path"]
            model = auto.from_pretrained(base, num_labels=1, dtype=torch.float32)
            if model.get_input_embeddings().weight.shape[0] != len(tok):
                model.resize_token_embeddings(len(tok))
            model = PeftModel.from_pretrained(model, str(p))
        else:
            model = auto.from_pretrained(str(p), dtype=torch.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise EngineError(f"{path}: cannot load the reward model ({exc})") from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model.config.pad_token_id = tok.pad_token_id
    return model.to(device).eval(), tok


def auto_classifier(task: str) -> tuple[Any, Any, Any]:
    """``(torch, AutoModelFor{Sequence|Token}Classification, AutoTokenizer)`` for ``task`` (``seq``
    or ``token``); MissingDependency naming the extra when transformers is not installed."""
    try:
        import torch
        from transformers import (
            AutoModelForSequenceClassification,
            AutoModelForTokenClassification,
            AutoTokenizer,
        )
    except ImportError as exc:
        raise MissingDependency("transformers", "train") from exc
    auto = AutoModelForSequenceClassification if task == "seq" else AutoModelForTokenClassification
    return torch, auto, AutoTokenizer


class _Classifier:
    """A one-output classifier (ORM, PRM): the model and tokenizer given, else the ones saved in
    ``path`` by :mod:`reasonloop.train.rm`; ``max_length`` defaults to the one it was trained with."""

    kind = ""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        model: Any = None,
        tokenizer: Any = None,
        max_length: int | None = None,
        device: str = "cpu",
    ):
        info = check_kind(path, self.kind) if path is not None else {}
        if model is None or tokenizer is None:
            if path is None:
                raise ConfigError(f"{type(self).__name__} needs a path or a model and a tokenizer")
            task = "seq" if self.kind == "orm" else "token"
            model, tokenizer = load_classifier(path, task, device=device)
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.max_length = max_length or int(info.get("settings", {}).get("max_length", 2048))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({getattr(self.model.config, '_name_or_path', '')!r})"


class ORM(_Classifier):
    """An outcome reward model: ``score`` = sigmoid of the classifier's logit on
    :func:`orm_ids` (see the module docstring). Pass ``model`` and ``tokenizer`` to use ones in
    memory instead of loading ``path``."""

    kind = "orm"
    oracle = False

    def logit(self, question: str, response: str) -> float:
        import torch

        ids = orm_ids(self.tokenizer, question, response, self.max_length)
        with torch.no_grad():
            out = self.model(input_ids=torch.tensor([ids], device=self.device))
        return float(out.logits[0, 0])

    def score(
        self, problem: Problem, prompt: Prompt, response: str, sample: Sample | None = None
    ) -> float:
        return _sigmoid(self.logit(question_for(problem), response))


class PRM(_Classifier):
    """A process reward model: called with ``(problem, prompt, steps)``, returns the sigmoid of
    the token classifier's logit at the end of every step (fewer when the start was cut, see
    :func:`prm_ids`). Search wraps it in :class:`~reasonloop.search.scorers.RewardModelScorer`."""

    kind = "prm"

    def step_scores(self, question: str, steps: Sequence[str]) -> list[float]:
        import torch

        if not steps:
            return []
        ids, ends = prm_ids(self.tokenizer, question, steps, self.max_length)
        with torch.no_grad():
            logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0, :, 0]
        return [_sigmoid(float(logits[e])) for e in ends]

    def __call__(self, problem: Problem, prompt: Prompt, steps: Sequence[str]) -> list[float]:
        return self.step_scores(question_for(problem), steps)


def yes_score(engine: Any, messages: Sequence[Message], form: str = "yes") -> float:
    """The verifier's score for the conversation ``messages`` (its next turn is Yes or No):
    ``P(Yes)`` with ``form="yes"``, ``P(Yes) / (P(Yes) + P(No))`` with ``"yes-no"`` (0.5 when
    both underflow). ``engine`` is anything with ``score(prompt, continuation)``."""
    _check_form(form)
    msgs = tuple(messages)
    yes = sum(engine.score(msgs, YES).logprobs)
    if form == "yes":
        return math.exp(yes)
    no = sum(engine.score(msgs, NO).logprobs)
    top = max(yes, no)
    if top == -math.inf:
        return 0.5
    a, b = math.exp(yes - top), math.exp(no - top)
    return a / (a + b)


def _check_form(form: str) -> None:
    if form not in GENRM_FORMS:
        raise ConfigError(f"GenRM form must be one of {', '.join(GENRM_FORMS)}, got {form!r}")


def _verifier_engine(path: str | Path | None, engine: Any, verification: str) -> Any:
    """The engine of a GenRM trained with ``verification``: ``engine`` as given, else ``path``
    loaded with the ``hf`` engine after checking that it holds a GenRM of that verification."""
    if engine is not None:
        return engine
    if path is None:
        raise ConfigError("a GenRM needs a path or an engine")
    info = check_kind(path, "genrm")
    trained = info.get("verification", "direct")
    if trained != verification:
        name = "genrm-cot" if trained == "cot" else "genrm"
        raise ConfigError(
            f"{path} holds a GenRM trained with verification {trained!r}, not "
            f"{verification!r}; score it with {name}:{path}"
        )
    return HFEngine(str(path), spec=f"hf:{path}")


class GenRM:
    """A generative verifier: ``P(Yes)`` for the user message :func:`verification_prompt` under
    the model's chat template (as ``train genrm`` trained it); ``form="yes-no"`` for the
    normalised variant (see the module docstring). Loads ``path`` with the ``hf`` engine, or
    takes any engine with ``score``."""

    oracle = False

    def __init__(self, path: str | Path | None = None, *, engine: Any = None, form: str = "yes"):
        _check_form(form)
        self.engine = _verifier_engine(path, engine, "direct")
        self.form = form

    def __repr__(self) -> str:
        return f"GenRM({self.engine.spec!r}, form={self.form!r})"

    def p_yes(self, question: str, response: str) -> float:
        msgs = (Message("user", verification_prompt(question, response)),)
        return yes_score(self.engine, msgs, self.form)

    def score(
        self, problem: Problem, prompt: Prompt, response: str, sample: Sample | None = None
    ) -> float:
        return self.p_yes(question_for(problem), response)


class GenRMCoT:
    """GenRM-CoT (see the module docstring): ``votes`` rationales sampled at ``temperature``
    (seeded: ``seed + i`` for rationale ``i``, so a response always gets the same ones), each
    followed by the Yes/No question; the score is the mean ``P(Yes)`` (or the mean normalised
    one with ``form="yes-no"``). A rationale is what the model wrote, cut at ``max_tokens``.
    Loads ``path`` (a GenRM trained with ``verification="cot"``) with the ``hf`` engine, or takes
    any engine with ``generate`` and ``score``."""

    oracle = False

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        engine: Any = None,
        votes: int = VOTES,
        form: str = "yes",
        temperature: float = COT_TEMPERATURE,
        max_tokens: int = COT_MAX_TOKENS,
        seed: int = 0,
    ):
        _check_form(form)
        if votes < 1:
            raise ConfigError(f"GenRM-CoT votes must be >= 1, got {votes}")
        self.engine = _verifier_engine(path, engine, "cot")
        self.votes, self.form = votes, form
        self.temperature, self.max_tokens, self.seed = temperature, max_tokens, seed

    def __repr__(self) -> str:
        return f"GenRMCoT({self.engine.spec!r}, votes={self.votes}, form={self.form!r})"

    def rationales(self, question: str, response: str) -> list[str]:
        """The ``votes`` verification rationales the verifier writes for ``response``."""
        req = Request(
            messages=(Message("user", rationale_prompt(question, response)),),
            n=self.votes,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            seed=self.seed,
        )
        return [s.text for s in self.engine.generate([req])[0].samples]

    def verifications(self, question: str, response: str) -> list[tuple[str, float]]:
        """``(rationale, P(Yes) after it)`` for each of the ``votes`` rationales."""
        return [
            (r, yes_score(self.engine, cot_messages(question, response, r), self.form))
            for r in self.rationales(question, response)
        ]

    def p_yes(self, question: str, response: str) -> float:
        votes = self.verifications(question, response)
        return sum(p for _, p in votes) / len(votes)

    def score(
        self, problem: Problem, prompt: Prompt, response: str, sample: Sample | None = None
    ) -> float:
        return self.p_yes(question_for(problem), response)


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


__all__ = [
    "COT_MAX_TOKENS",
    "COT_TEMPERATURE",
    "GENRM_FORMS",
    "GenRM",
    "GenRMCoT",
    "KINDS",
    "NO",
    "ORM",
    "PRM",
    "STEP_SEPARATOR",
    "VERIFICATIONS",
    "VERIFY_QUESTION",
    "VERIFY_STEPS",
    "VOTES",
    "YES",
    "auto_classifier",
    "check_kind",
    "cot_messages",
    "load_classifier",
    "orm_ids",
    "orm_text",
    "prm_ids",
    "question_for",
    "rationale_prompt",
    "train_info",
    "verification_prompt",
    "yes_score",
]
