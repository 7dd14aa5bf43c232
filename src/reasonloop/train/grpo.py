"""GRPO with verifiable rewards: TRL's ``GRPOTrainer`` rewarded by reasonloop's graders.

What it adds to TRL:

- **Rewards from the graders.** A rollout's reward is ``1`` when :func:`reasonloop.verify.grade`
  says its answer is correct (math, choice, code in the sandbox, Countdown), else ``0``; plus
  ``format_weight`` times :func:`format_reward` (1 for a well-formed thought/solution response);
  plus :func:`overlong_penalty`, DAPO's soft length penalty over the last ``overlong_buffer`` tokens
  before ``max_completion_length`` (off when the buffer is 0). :func:`rollout_reward` is the whole
  rule, a pure function of the verdict, the text and the token count.
- **Every rollout in the store.** Each rollout is graded once and stored as a
  :class:`~reasonloop.records.Trajectory` under one stage (``stage``, default ``grpo``) with the
  optimizer step it trains in ``generator.round`` (so ``--stage grpo`` selects every GRPO rollout
  and ``round`` one step), its sample index in the group, and ``{"step": k, "rewards": [parts of
  sample 0, 1, ...]}`` (the problem's group) as row meta. Ids are the store's deterministic keys of
  (problem, stage, generator with that step, index), and the prompt order is a function of (seed,
  epoch) (TRL's own sampler restarts its random stream on resume), so a run killed after step *k*'s
  rollouts were stored and resumed from an earlier checkpoint poses the same problems at the same
  steps and stores them again as no-ops: no row is doubled. (TRL restores the sampling RNG from the
  checkpoint too, so on CPU the regenerated rollouts were identical in the tests; were they not, the
  store would keep the first ones.)
- **Dynamic sampling** (``dynamic_sampling=True``): a group whose rewards are all equal (all right or
  all wrong) carries no advantage; DAPO drops such prompts and draws more. Here they are *dropped
  from the batch* after scoring (their rows leave every tensor of the step, so they add neither
  tokens to the loss normaliser nor a KL term) and **not** replaced by new draws: a step trains on
  fewer groups instead. When every group of a step is all-equal, the step keeps its rows with an
  all-zero loss mask (a zero update). Dropped groups are still stored and counted.

**Generation with vLLM** (GPU only): ``use_vllm`` and the ``vllm_*`` options pass through to
TRL's ``GRPOConfig`` under the same names. ``vllm_mode: server`` reaches a ``trl vllm-serve
--model MODEL`` process started beforehand on GPUs of its own (TRL pushes the policy's weights to
it after each step); ``colocate`` runs vLLM inside the training processes. An unset ``vllm_*``
option keeps TRL's default. On a machine without CUDA, ``use_vllm`` is refused before anything is
loaded. Only the pass-through and the refusal are tested here (no GPU in the tests).

It does not run several generations per optimizer step (``steps_per_generation`` is 1: one
generation batch of ``prompts_per_step * group_size`` rollouts per step).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

from reasonloop.engines.base import Sample
from reasonloop.errors import ConfigError, MissingDependency
from reasonloop.format import parse
from reasonloop.generate import Inputs, messages_for, to_trajectory
from reasonloop.options import check_options, include, option
from reasonloop.problems import resolve_problems
from reasonloop.progress import Update
from reasonloop.records import Generator, Problem, Trajectory, Verdict
from reasonloop.store import open_store
from reasonloop.train.callbacks import follow
from reasonloop.train.sft import (
    TrainerOptions,
    add_format_tokens,
    is_main_process,
    load_model_and_tokenizer,
    lora_config,
    trl_common_args,
    write_train_info,
)

log = logging.getLogger(__name__)

# TRL 1.16's loss types that need no other setting changed (luspo/vespo need
# importance_sampling_level set to match; pass them through ``extra`` with it).
LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo")
SCALE_REWARDS = ("group", "batch", "none")
VLLM_MODES = ("server", "colocate")
# TRL's defaults for a server it reaches (GRPOConfig's vllm_server_host/port, trl vllm-serve's
# --host/--port): the recipe waits on this address when the options are unset
TRL_VLLM_HOST = "0.0.0.0"
TRL_VLLM_PORT = 8000
# the token counts a checkpoint carries (generated, trained), for token_budget across a resume
TOKENS_FILE = "reasonloop_tokens.json"
# options that apply in one vLLM mode only (TRL ignores them silently in the other)
VLLM_SERVER_ONLY = ("vllm_server_host", "vllm_server_port")
VLLM_COLOCATE_ONLY = ("vllm_gpu_memory_utilization", "vllm_tensor_parallel_size")


@dataclass(frozen=True, slots=True, kw_only=True)
@include(Inputs, exclude=("engine",))
@include(
    TrainerOptions,
    exclude=("epochs", "batch_size", "grad_accum", "max_length"),
    max_steps=100,
    learning_rate=1e-6,
    logging_steps=1,
)
class GRPOSettings:
    """What ``reasonloop train grpo`` runs: its flags are these fields' declarations (plus the
    shared trainer block, less what GRPO derives: the batch is ``prompts_per_step *
    group_size`` rollouts, one pass per step)."""

    model: str = option(
        cli="--model", help="The policy to start from (a model dir or hub id, e.g. the SFT output)."
    )
    problems: str = option(
        cli="--problems", help="A benchmark name, countdown-easy|medium|hard, or a problems file."
    )
    output_dir: str = option(
        cli="--out", path=True, help="Where to save the policy and its checkpoints."
    )
    stage: str = option("grpo", help="Store stage of the rollouts (the step is their round).")
    system_prompt: bool = option(
        True,
        negatable=True,
        help="Pose problems with the format's system prompt, as generate does.",
    )
    group_size: int = option(
        8, min=2, help="Rollouts per prompt (TRL num_generations); GRPO compares them."
    )
    prompts_per_step: int = option(4, min=1, help="Prompts per optimizer step.")
    temperature: float = option(1.0, above=0, help="Sampling temperature of the rollouts.")
    top_p: float = option(1.0, above=0, max=1, help="Nucleus sampling of the rollouts.")
    max_completion_length: int = option(
        256, cli="--max-tokens", min=1, help="Max completion length (tokens)."
    )
    loss_type: str = option("dapo", cli="--loss", choices=LOSS_TYPES, help="TRL's loss type.")
    beta: float = option(0.0, min=0, help="KL weight (0: no reference model is loaded).")
    scale_rewards: str = option(
        "group", choices=SCALE_REWARDS, help="Advantage scaling (Dr. GRPO: none)."
    )
    format_weight: float = option(
        0.0, min=0, help="Weight of the well-formed-response reward (0: off)."
    )
    overlong_buffer: int = option(
        0, min=0, help="Soft length penalty over the last N tokens before the limit (0: off)."
    )
    overlong_penalty: float = option(1.0, min=0, help="The length penalty at (and past) the limit.")
    mask_truncated: bool = option(False, help="Leave truncated rollouts out of the loss (DAPO).")
    dynamic_sampling: bool = option(
        False, help="Drop groups whose rewards are all equal (no advantage) from the step."
    )
    save_steps: int = option(0, min=0, help="Checkpoint every N steps (0: only the final model).")
    token_budget: int = option(
        0,
        min=0,
        help="Stop after the step at which the tokens generated plus the tokens trained on reach "
        "N (0: max_steps alone decides): what a matched-cost comparison with other methods sets.",
    )
    resume: bool = option(False, help="Continue from the last checkpoint in --out.")
    use_vllm: bool = option(False, help="Generate the rollouts with vLLM (CUDA GPUs only).")
    vllm_mode: str | None = option(
        None,
        choices=VLLM_MODES,
        help="server: a `trl vllm-serve --model MODEL` process on GPUs of its own; colocate: "
        "vLLM inside the training processes (unset: TRL's default, colocate).",
    )
    vllm_server_host: str | None = option(
        None, help=f"server mode: the vLLM server's host (unset: {TRL_VLLM_HOST})."
    )
    vllm_server_port: int | None = option(
        None,
        min=1,
        max=65535,
        help=f"server mode: the vLLM server's port (unset: {TRL_VLLM_PORT}).",
    )
    vllm_gpu_memory_utilization: float | None = option(
        None, above=0, max=1, help="colocate mode: vLLM's share of GPU memory (unset: TRL's 0.3)."
    )
    vllm_tensor_parallel_size: int | None = option(
        None, min=1, help="colocate mode: vLLM's tensor-parallel size (unset: 1)."
    )

    def __post_init__(self) -> None:
        check_options(self)
        if self.max_steps < 1:
            raise ConfigError(f"must be >= 1, got {self.max_steps}", field="max_steps")
        if self.overlong_buffer >= self.max_completion_length:
            raise ConfigError(
                f"must be < max_completion_length ({self.max_completion_length}), "
                f"got {self.overlong_buffer}",
                field="overlong_buffer",
            )
        if not self.stage.strip():
            raise ConfigError("must be a non-empty name", field="stage")
        self._check_vllm()

    def _check_vllm(self) -> None:
        """The vLLM options only with ``use_vllm``, each in the mode it applies to."""
        mode = self.vllm_mode or "colocate"
        for name in ("vllm_mode", *VLLM_SERVER_ONLY, *VLLM_COLOCATE_ONLY):
            if getattr(self, name) is None:
                continue
            if not self.use_vllm:
                raise ConfigError("is a vLLM option: set use_vllm too, or leave it out", field=name)
            wrong = (name in VLLM_SERVER_ONLY and mode != "server") or (
                name in VLLM_COLOCATE_ONLY and mode != "colocate"
            )
            if wrong:
                raise ConfigError(
                    f"does not apply in vllm_mode {mode} (TRL would ignore it); leave it out",
                    field=name,
                )

    def vllm(self) -> dict[str, Any]:
        """The GRPOConfig arguments of the vLLM options (those set; none without use_vllm)."""
        if not self.use_vllm:
            return {}
        names = ("use_vllm", "vllm_mode", *VLLM_SERVER_ONLY, *VLLM_COLOCATE_ONLY)
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    # what trl_common_args reads
    @property
    def batch_size(self) -> int:
        return self.prompts_per_step * self.group_size

    @property
    def grad_accum(self) -> int:
        return 1

    @property
    def epochs(self) -> float:
        return 1.0  # max_steps decides; TRL's sampler cycles through the problems


#: each field's default, for the command line (fields without one are required options)
GRPO_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in fields(GRPOSettings) if f.default is not MISSING
}


@dataclass(frozen=True, slots=True)
class RewardParts:
    correct: float
    format: float
    overlong: float
    total: float


# the settings GRPOConfig names as GRPOSettings does
_SAME_IN_TRL = (
    "temperature",
    "top_p",
    "max_completion_length",
    "loss_type",
    "beta",
    "scale_rewards",
)


@dataclass(frozen=True, slots=True)
class GRPOSummary:
    steps: int
    rollouts: int  # rollouts scored in this run (a resumed run counts only its own)
    new_rows: int  # of those, rows the store did not have yet
    correct: int
    generated_tokens: int  # tokens of every rollout drawn (all groups, kept or dropped)
    trained_tokens: int  # prompt + completion tokens of the rollouts the loss was computed on
    dropped_groups: int  # all-equal groups left out of the loss (dynamic sampling)
    mean_reward_first: float  # mean reward of the first / last step this run scored
    mean_reward_last: float
    train_loss: float
    seconds: float
    output_dir: str

    @property
    def accuracy(self) -> float:
        return self.correct / self.rollouts if self.rollouts else 0.0

    @property
    def cost(self) -> int:
        """Tokens generated plus tokens trained on (the measure of ``token_budget``)."""
        return self.generated_tokens + self.trained_tokens


def format_reward(text: str) -> float:
    """1.0 for a well-formed response: a closed, non-empty thought then a closed, non-empty
    solution in this format's markers; else 0.0. It does not look at the answer."""
    p = parse(text)
    ok = (
        p.formatted
        and p.thought_closed
        and p.solution_closed
        and bool(p.thought and p.thought.strip())
        and bool(p.solution and p.solution.strip())
    )
    return 1.0 if ok else 0.0


def overlong_penalty(tokens: int, max_tokens: int, buffer: int, penalty: float = 1.0) -> float:
    """DAPO's soft overlong punishment: 0 up to ``max_tokens - buffer`` tokens, then falling
    linearly to ``-penalty`` at ``max_tokens`` (and ``-penalty`` past it). 0 when ``buffer`` is 0."""
    if buffer <= 0:
        return 0.0
    free = max_tokens - buffer
    if tokens <= free:
        return 0.0
    if tokens >= max_tokens:
        return -penalty
    return -penalty * (tokens - free) / buffer


def rollout_reward(verdict: Verdict, text: str, tokens: int, s: GRPOSettings) -> RewardParts:
    """The reward of one rollout: verdict (0/1) + format_weight * format + overlong penalty."""
    correct = 1.0 if verdict.correct else 0.0
    fmt = format_reward(text) if s.format_weight else 0.0
    over = overlong_penalty(tokens, s.max_completion_length, s.overlong_buffer, s.overlong_penalty)
    return RewardParts(correct, fmt, over, correct + s.format_weight * fmt + over)


def prompt_messages(problem: Problem, system_prompt: bool = True) -> list[dict[str, str]]:
    """The chat messages that pose ``problem``, as ``generate``/``explore`` pose it."""

    return [
        {"role": m.role, "content": m.content}
        for m in messages_for(problem, system_prompt=system_prompt)
    ]


class StoreRewards:
    """TRL reward function: grades each rollout, stores it, returns its reward.

    TRL calls it once per generation batch with ``problem_id`` (a dataset column), the
    completions and their token ids, and ``trainer_state``."""

    __name__ = "reasonloop_grade"

    def __init__(
        self, s: GRPOSettings, problems: dict[str, Problem], store: Any, eos_ids: set[int]
    ):
        self.s = s
        self.problems = problems
        self.store = store
        self.eos_ids = eos_ids
        self.last: list[float] = []  # the rewards of the latest batch, in order
        self.rollouts = self.new_rows = self.correct = self.tokens = 0
        self.step_means: list[float] = []

    def generator(self, step: int) -> Generator:
        s = self.s
        sampled = {name: getattr(s, name) for name in ("temperature", "top_p", "seed")}
        return Generator(
            engine="trl-grpo",
            model=s.model,
            round=step,
            max_tokens=s.max_completion_length,
            role="grpo",
            **sampled,
        )

    def __call__(
        self,
        prompts,
        completions,
        completion_ids,
        problem_id,
        trainer_state=None,
        log_metric=None,
        **_,
    ):

        step = (trainer_state.global_step if trainer_state is not None else 0) + 1
        gen = self.generator(step)
        seen: Counter[str] = Counter()
        trajs: list[Trajectory] = []
        indices: list[int] = []
        parts: list[RewardParts] = []
        for pid, completion, ids in zip(problem_id, completions, completion_ids, strict=True):
            text = completion[-1]["content"] if isinstance(completion, list) else completion
            finished = bool(ids) and ids[-1] in self.eos_ids
            sample = Sample(
                text=text, tokens=len(ids), finish_reason="stop" if finished else "length"
            )
            t = to_trajectory(self.problems[pid], sample, gen)  # grades once (never raises)
            assert t.verdict is not None  # to_trajectory always grades
            parts.append(rollout_reward(t.verdict, text, len(ids), self.s))
            trajs.append(t)
            indices.append(seen[pid])
            seen[pid] += 1
        by_problem: dict[str, list[int]] = {}
        for k, t in enumerate(trajs):
            by_problem.setdefault(t.problem_id, []).append(k)
        for ks in by_problem.values():
            added = self.store.add_trajectories(
                [trajs[k] for k in ks],
                stage=self.s.stage,
                sample_indices=[indices[k] for k in ks],
                meta={
                    "step": step,
                    "rewards": [asdict(parts[k]) for k in ks],
                },
            )
            self.new_rows += added.inserted
        self.last = [p.total for p in parts]
        self.rollouts += len(parts)
        self.correct += sum(p.correct == 1.0 for p in parts)
        self.tokens += sum(len(ids) for ids in completion_ids)
        self.step_means.append(sum(self.last) / len(self.last))
        if log_metric is not None:
            log_metric("rewards/correct", sum(p.correct for p in parts) / len(parts))
            log_metric("rewards/format", sum(p.format for p in parts) / len(parts))
            log_metric("rewards/overlong", sum(p.overlong for p in parts) / len(parts))
        return self.last


def keep_rows(rewards: list[float], group_size: int) -> list[int]:
    """Indices of the rows whose group (``group_size`` consecutive rows) has unequal rewards."""
    keep: list[int] = []
    for g in range(0, len(rewards), group_size):
        group = rewards[g : g + group_size]
        if max(group) - min(group) > 1e-9:
            keep.extend(range(g, g + len(group)))
    return keep


def check_vllm_runs_here(s: GRPOSettings) -> None:
    """With ``use_vllm``: a CUDA GPU is visible and vLLM is installed; else a ConfigError naming
    the option and why (before any model is loaded)."""
    if not s.use_vllm:
        return
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            "needs a CUDA GPU (vLLM generates on GPUs only) and none is visible here; "
            "leave it off to generate with transformers on this machine",
            field="use_vllm",
        )
    if importlib.util.find_spec("vllm") is None:
        raise ConfigError(
            "needs the vllm package (pip install vllm, a version TRL supports)", field="use_vllm"
        )


def _trainer_classes() -> tuple[type, type]:
    import torch
    from transformers import TrainerCallback
    from trl import GRPOTrainer
    from trl.trainer.utils import RepeatSampler

    class EpochSampler(RepeatSampler):
        """TRL's sampler, reseeded from ``(seed, epoch)`` at each epoch: a run resumed from a
        checkpoint draws the same prompts for the same steps (TRL's own sampler restarts its random
        stream on resume, so a resumed epoch after the first would pose other problems)."""

        def set_epoch(self, epoch: int) -> None:
            if self.shuffle:
                self.generator.manual_seed((self.seed or 0) + epoch)

    class ReasonloopGRPOTrainer(GRPOTrainer):
        """GRPOTrainer with a resumable prompt order and, optionally, dynamic sampling: groups
        whose rewards are all equal leave each scored batch (see the module doc)."""

        rewards_fn: StoreRewards | None = None
        dynamic_sampling: bool = False
        dropped_groups: int = 0
        tokens_trained: int = 0

        def _get_train_sampler(self, dataset=None):
            return EpochSampler(
                data_source=self.train_dataset if dataset is None else dataset,
                mini_repeat_count=self.num_generations,
                batch_size=self.args.generation_batch_size // self.num_generations,
                repeat_count=self.num_iterations * self.args.steps_per_generation,
                shuffle=self.shuffle_dataset,
                seed=self.args.seed,
            )

        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            if self.dynamic_sampling:
                out = self._drop_flat_groups(out)
            # a row the loss sees passes forward and backward whole: its prompt and completion
            live = out["completion_mask"].sum(dim=1) > 0
            used = out["prompt_mask"].sum(dim=1) + out["completion_mask"].sum(dim=1)
            self.tokens_trained += int(self.accelerator.gather((used * live).sum()).sum().item())
            return out

        def _drop_flat_groups(self, out):
            assert self.rewards_fn is not None  # set by train_grpo
            rewards = self.rewards_fn.last
            n, group = len(rewards), self.num_generations
            keep = keep_rows(rewards, group)
            self.dropped_groups += (n - len(keep)) // group
            self._metrics["train"]["dynamic_sampling/kept_groups"].append(len(keep) / group)
            if len(keep) == n:
                return out
            if not keep:
                # nothing to learn from: keep the shapes, train on no token
                out["completion_mask"] = torch.zeros_like(out["completion_mask"])
                out["num_items_in_batch"] = torch.zeros_like(out["num_items_in_batch"])
                return out
            idx = torch.tensor(keep, device=out["completion_mask"].device)
            for key, value in list(out.items()):
                if isinstance(value, torch.Tensor) and value.dim() >= 1 and value.size(0) == n:
                    out[key] = value.index_select(0, idx)
            mask = out["completion_mask"]
            if "tool_mask" in out:
                mask = mask * out["tool_mask"]
            out["num_items_in_batch"] = self.accelerator.gather(mask.sum()).sum()
            return out

    class TokenBudget(TrainerCallback):
        """Stops training after the step at which generated + trained tokens reach the budget, and
        keeps both counts in each checkpoint (``reasonloop_tokens.json``) so that a resumed run
        goes on counting from them."""

        def __init__(self, trainer: Any, rewards: StoreRewards, budget: int):
            self.trainer, self.rewards, self.budget = trainer, rewards, budget

        def spent(self) -> int:
            return self.rewards.tokens + self.trainer.tokens_trained

        def on_step_end(self, args, state, control, **kwargs):
            if self.budget and self.spent() >= self.budget:
                log.info(
                    "token budget reached at step %d: %d tokens", state.global_step, self.spent()
                )
                control.should_training_stop = True
            return control

        def on_save(self, args, state, control, **kwargs):
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir() and state.is_world_process_zero:
                counts = {"generated": self.rewards.tokens, "trained": self.trainer.tokens_trained}
                (folder / TOKENS_FILE).write_text(json.dumps(counts) + "\n")
            return control

    return ReasonloopGRPOTrainer, TokenBudget


def train_grpo(
    s: GRPOSettings,
    *,
    model: Any = None,
    tokenizer: Any = None,
    problems: list[Problem] | None = None,
    on_progress: Update | None = None,
) -> GRPOSummary:
    """Run GRPO on ``s.problems`` (or ``problems``), storing every rollout in ``s.store``; save the
    policy (or its LoRA adapter) to ``s.output_dir``. A model/tokenizer in memory may be passed."""
    try:
        from datasets import Dataset
        from transformers.trainer_utils import get_last_checkpoint
        from trl import GRPOConfig
    except ImportError as exc:
        raise MissingDependency("trl", "train") from exc

    check_vllm_runs_here(s)
    t0 = time.perf_counter()
    if problems is None:
        problems = resolve_problems(s.problems, data_dir=s.data_dir, limit=s.limit)
    elif s.limit is not None:
        problems = problems[: s.limit]
    if len(problems) < s.prompts_per_step:
        raise ConfigError(
            f"prompts_per_step ({s.prompts_per_step}) is more than the {len(problems)} problems of {s.problems!r}"
        )
    if model is None or tokenizer is None:
        model, tokenizer = load_model_and_tokenizer(s.model)
    add_format_tokens(tokenizer, model)
    rows = [{"prompt": prompt_messages(p, s.system_prompt), "problem_id": p.id} for p in problems]
    kwargs = trl_common_args(s)
    if s.save_steps:
        kwargs.update(save_strategy="steps", save_steps=s.save_steps)
    kwargs.update({name: getattr(s, name) for name in _SAME_IN_TRL})
    kwargs.update(
        num_generations=s.group_size,
        steps_per_generation=1,
        mask_truncated_completions=s.mask_truncated,
    )
    kwargs.update(s.vllm())
    kwargs.update(s.extra)
    args = GRPOConfig(**kwargs)
    out_dir = Path(s.output_dir)
    checkpoint = get_last_checkpoint(str(out_dir)) if s.resume and out_dir.is_dir() else None
    with open_store(s.store) as store:
        store.add_problems(problems)
        rewards = StoreRewards(s, {p.id: p for p in problems}, store, set())
        trainer_cls, budget_cls = _trainer_classes()
        trainer = trainer_cls(
            model=model,
            reward_funcs=[rewards],
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=lora_config(s.lora),
        )
        # a rollout is finished when it ends in a token TRL stops on (else it was cut at the limit)
        rewards.eos_ids = {*trainer.eos_token_ids, tokenizer.pad_token_id} - {None}
        trainer.rewards_fn = rewards
        trainer.dynamic_sampling = s.dynamic_sampling
        if checkpoint and (Path(checkpoint) / TOKENS_FILE).is_file():
            counts = json.loads((Path(checkpoint) / TOKENS_FILE).read_text())
            rewards.tokens, trainer.tokens_trained = counts["generated"], counts["trained"]
        trainer.add_callback(budget_cls(trainer, rewards, s.token_budget))
        follow(trainer, on_progress)
        if checkpoint:
            log.info("resuming from %s", checkpoint)
        result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(str(out_dir))  # the trainer's main process alone writes the model
    if is_main_process():
        tokenizer.save_pretrained(str(out_dir))
    summary = GRPOSummary(
        steps=result.global_step,
        rollouts=rewards.rollouts,
        new_rows=rewards.new_rows,
        correct=rewards.correct,
        generated_tokens=rewards.tokens,
        trained_tokens=trainer.tokens_trained,
        dropped_groups=getattr(trainer, "dropped_groups", 0),
        mean_reward_first=rewards.step_means[0] if rewards.step_means else math.nan,
        mean_reward_last=rewards.step_means[-1] if rewards.step_means else math.nan,
        train_loss=float(result.training_loss),
        seconds=time.perf_counter() - t0,
        output_dir=str(out_dir),
    )
    write_train_info(out_dir, "grpo", s, result.metrics, summary=asdict(summary))
    return summary


__all__ = [
    "LOSS_TYPES",
    "GRPO_DEFAULTS",
    "TRL_VLLM_HOST",
    "TRL_VLLM_PORT",
    "VLLM_MODES",
    "GRPOSettings",
    "GRPOSummary",
    "RewardParts",
    "check_vllm_runs_here",
    "format_reward",
    "keep_rows",
    "overlong_penalty",
    "rollout_reward",
    "train_grpo",
]
