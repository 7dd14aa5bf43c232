"""Supervised fine-tuning on curated trajectories: a thin layer over TRL's ``SFTTrainer``.

What it adds to TRL: the format's markers become special tokens where the tokenizer lacks them (the
embeddings grow to match); conversational rows (``messages``) become prompt/completion pairs so the
loss falls on the assistant's response only, whatever the chat template; short traces are grouped
with short ones (``group_by_length``) or packed padding-free; CPU-safe defaults (``bf16=False``).
The saved directory loads with the ``hf:`` engine (a LoRA run saves an adapter directory that
``hf:`` loads on top of its base model).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reasonloop.errors import DataError, MissingDependency
from reasonloop.format import MARKERS
from reasonloop.options import check_options, include, option
from reasonloop.progress import Update
from reasonloop.train.callbacks import follow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True, slots=True)
class TrainerOptions:
    """The trainer block: what SFT, DPO and the reward models share, declared once and included in
    each one's settings (with that trainer's own learning rate, batch size and length)."""

    lora: LoraSettings | None = option(
        None, cli="--lora", lora=True, help="Train a LoRA adapter instead of all weights."
    )
    epochs: float = option(1.0, above=0, help="Passes over the data (unless --max-steps).")
    max_steps: int = option(-1, help="Stop after N optimizer steps (-1: epochs).")
    learning_rate: float = option(1e-4, cli="--lr", above=0, help="Peak learning rate.")
    batch_size: int = option(8, min=1, help="Sequences per optimizer step (per device).")
    grad_accum: int = option(1, min=1, help="Gradient accumulation steps.")
    max_length: int = option(1024, min=8, help="Tokens per sequence; longer ones are cut.")
    warmup: float = option(0.0, min=0, help="Warmup steps, or a fraction of all steps when < 1.")
    seed: int = option(0, help="Seed of initialisation, shuffling and dropout.")
    logging_steps: int = option(10, cli=None, min=1, help="Log the loss every N steps.")
    bf16: bool = option(False, help="bf16 mixed precision (GPU; on CPU ~17x slower than fp32).")
    gradient_checkpointing: bool = option(
        False,
        help="Recompute activations in the backward pass to save memory (TRL's default; off here: "
        "it costs a third more compute, and what trains on CPU fits without it).",
    )
    extra: dict[str, Any] = option(
        cli=None, default_factory=dict, help="Passed to the TRL config as is."
    )


@dataclass(frozen=True, slots=True)
@include(TrainerOptions)
class SFTSettings:
    """What ``reasonloop train sft`` runs: its flags are these fields' declarations."""

    model: str = option(cli="--model", help="A transformers model dir or hub id.")
    data: str = option(
        cli="--data", path=True, help="TRL conversational JSONL (e.g. curate's train.jsonl)."
    )
    output_dir: str = option(cli="--out", path=True, help="Where to save the fine-tuned model.")
    packing: bool = option(
        False, help="Padding-free packing (exact with FlashAttention; see the module doc)."
    )
    group_by_length: bool = option(
        True, cli=None, help="Batch sequences of similar length together."
    )

    def __post_init__(self) -> None:
        check_options(self)


def add_format_tokens(tokenizer: Any, model: Any | None = None) -> list[str]:
    """Make the format's markers single, never-split tokens; resize the model's embeddings if given.
    Returns the markers that were added (none when the tokenizer had them all).

    They are added as *non-skipped* added tokens: like special tokens they are never split, but
    ``decode(..., skip_special_tokens=True)`` keeps them, so generated text still parses.

    Each new row (input and, when untied, output embedding) starts as the mean of the rows of the
    pieces the marker was split into before: a pretrained model then learns to emit it within a
    few steps. From transformers' default (a random draw around the mean embedding) SmolLM2-135M
    still gave the first marker p < 0.001 after 12 SFT steps at lr 2e-4, where its pieces' mean
    gave 0.05 and more with more steps (the marker as plain text: 0.999)."""
    from tokenizers import AddedToken

    vocab = tokenizer.get_vocab()
    missing = [m for m in MARKERS if m not in vocab]
    if not missing:
        return missing
    pieces = {m: tokenizer(m, add_special_tokens=False)["input_ids"] for m in missing}
    tokenizer.add_tokens([AddedToken(m, special=False, normalized=False) for m in missing])
    if model is not None:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        _init_from_pieces(model, tokenizer, pieces)
    return missing


def _init_from_pieces(model: Any, tokenizer: Any, pieces: dict[str, list[int]]) -> None:
    """Set each new token's embedding rows to the mean of its ``pieces``' rows."""
    import torch

    tables = [model.get_input_embeddings().weight]
    out = model.get_output_embeddings()
    if out is not None and out.weight.data_ptr() != tables[0].data_ptr():
        tables.append(out.weight)
    with torch.no_grad():
        for marker, ids in pieces.items():
            if not ids:
                continue
            new = tokenizer.convert_tokens_to_ids(marker)
            for w in tables:
                w[new] = w[ids].mean(dim=0)


def jsonl_lines(path: Path) -> Iterator[tuple[str, Any]]:
    """``(where, value)`` of every non-blank line of a JSON Lines file (``where`` is
    ``path:line``); DataError naming the file, or the line, when it is missing or not JSON."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError("file not found", where=str(path)) from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            yield where, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON ({exc.msg})", where=where) from None


def read_conversations(path: str | Path) -> list[dict[str, Any]]:
    """Read conversational SFT rows and turn each into ``{"prompt": [...], "completion": [...]}``:
    everything before the last assistant message is the prompt."""
    rows = []
    path = Path(path)
    for where, row in jsonl_lines(path):
        msgs = row.get("messages") if isinstance(row, dict) else None
        if not isinstance(msgs, list) or not msgs:
            raise DataError("expected a non-empty list of messages", where=where, field="messages")
        for i, m in enumerate(msgs):
            if not (
                isinstance(m, dict)
                and isinstance(m.get("role"), str)
                and isinstance(m.get("content"), str)
            ):
                raise DataError(
                    f"message {i} needs string 'role' and 'content'", where=where, field="messages"
                )
        if msgs[-1]["role"] != "assistant":
            raise DataError(
                "the last message must be the assistant's response", where=where, field="messages"
            )
        rows.append(
            {
                "prompt": [{"role": m["role"], "content": m["content"]} for m in msgs[:-1]],
                "completion": [{"role": "assistant", "content": msgs[-1]["content"]}],
            }
        )
    if not rows:
        raise DataError("no training rows", where=str(path))
    return rows


def load_model_and_tokenizer(path: str) -> tuple[Any, Any]:
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MissingDependency("transformers", "train") from exc
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def save_trained(
    trainer: Any, tokenizer: Any, result: Any, output_dir: str | Path
) -> dict[str, Any]:
    """Save the trained model and its tokenizer to ``output_dir``; the run's metrics (TRL's, plus
    ``train_loss`` and ``global_step``). In a multi-process run only the main process writes (the
    trainer's ``save_model`` already does so; the tokenizer follows it)."""
    out = Path(output_dir)
    trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(out))
    metrics = dict(result.metrics)
    loss = result.training_loss
    if trainer.args.world_size > 1:
        # each rank's training_loss is the mean over its share of every batch; their mean is the
        # single-process run's loss over the whole batch (exactly so when the ranks' shares hold
        # as many tokens), and every rank reports the same
        import torch

        shared = torch.tensor(loss, dtype=torch.float32, device=trainer.args.device)
        loss = trainer.accelerator.reduce(shared, reduction="mean").item()
    metrics["train_loss"] = loss
    metrics["global_step"] = result.global_step
    if trainer.args.include_num_input_tokens_seen != "no":
        metrics["tokens_trained"] = trainer.state.num_input_tokens_seen  # every rank's, summed
    return metrics


def is_main_process() -> bool:
    """Whether this process writes a training run's files: a lone process, or rank 0 of several
    (``RANK``, set by ``accelerate launch`` and ``torchrun``). Every rank trains; one writes."""
    return int(os.environ.get("RANK", "0")) == 0


def write_train_info(
    output_dir: str | Path, kind: str, settings: Any, metrics: dict[str, Any], **info: Any
) -> None:
    """``reasonloop_train.json`` in ``output_dir``: the kind of model, the settings it was trained
    with, its metrics and ``info`` (read back by :func:`reasonloop.train.rmcontract.train_info`).
    Written by the main process only (:func:`is_main_process`); the other ranks return."""
    if not is_main_process():
        return
    record = {"kind": kind, "settings": asdict(settings), "metrics": metrics, **info}
    (Path(output_dir) / "reasonloop_train.json").write_text(
        json.dumps(record, indent=2, default=str) + "\n"
    )


def write_rows(path: Path, rows: Iterable[Any]) -> None:
    """``rows`` as JSON Lines at ``path``, through a temporary file of this process renamed into
    place: when several ranks write the same training data, none reads another's half-written
    file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    os.replace(tmp, path)


def distributed_on_cpu() -> bool:
    """Launched as one of several processes (``accelerate launch --multi_gpu``, ``torchrun``) on a
    machine without CUDA. Accelerate then treats each process as a lone run unless told to use the
    CPU: every rank would train alone on the whole data and all would write the same files."""
    import torch

    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()


# the trainers whose batches hold input_ids and attention_mask (SFT, DPO) count the tokens they are
# trained on (non-padding, prompt included: each passes forward and backward); save_trained reports
# them as ``tokens_trained``. GRPO counts its own (its batches are prompt and completion tensors).
COUNT_TOKENS = {"include_num_input_tokens_seen": "non_padding"}


def trl_common_args(s: Any) -> dict[str, Any]:
    """TrainingArguments shared by SFT and DPO runs: CPU-safe precision, no hub, no reporting;
    several processes on CPU train as one DDP run over gloo (see :func:`distributed_on_cpu`)."""
    return {
        "use_cpu": distributed_on_cpu(),
        "output_dir": s.output_dir,
        "num_train_epochs": s.epochs,
        "max_steps": s.max_steps,
        "learning_rate": s.learning_rate,
        "per_device_train_batch_size": s.batch_size,
        "gradient_accumulation_steps": s.grad_accum,
        "warmup_steps": s.warmup,  # < 1: a fraction of the steps
        "seed": s.seed,
        "logging_steps": s.logging_steps,
        "bf16": bool(getattr(s, "bf16", False)),  # TRL defaults to bf16: ~17x slower on CPU
        "gradient_checkpointing": bool(getattr(s, "gradient_checkpointing", False)),  # TRL: on
        "fp16": False,
        "save_strategy": "no",
        "report_to": [],
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def lora_config(
    settings: LoraSettings | None,
    task_type: str = "CAUSAL_LM",
    modules_to_save: list[str] | None = None,
) -> Any:
    """A peft LoraConfig from the settings (None without LoRA); reward models pass their task
    type and the new head to train in full."""
    if settings is None:
        return None
    try:
        from peft import LoraConfig
    except ImportError as exc:
        raise MissingDependency("peft", "train") from exc
    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        task_type=task_type,
        modules_to_save=modules_to_save,
    )


def with_new_rows_trained(model: Any, config: Any) -> Any:
    """``model`` with a LoRA adapter whose embedding (and output) matrices also train in full: the
    format markers were just added, and a student whose marker rows stayed frozen never learns to
    emit them (a SmolLM2 LoRA student wrote "_" in their place and ran to the length limit). peft
    saves the grown matrices with the adapter (``save_embedding_layers``), and merging restores
    them. (peft's trainable tokens would train the new rows only, but on a model with tied
    embeddings TRL's fused LM head cannot read them.)"""
    from peft import get_peft_model

    model = get_peft_model(model, config)
    model.get_input_embeddings().weight.requires_grad_(True)
    out = model.get_output_embeddings()
    if out is not None:
        out.weight.requires_grad_(True)
    return model


def train_sft(
    s: SFTSettings,
    *,
    model: Any = None,
    tokenizer: Any = None,
    on_progress: Update | None = None,
) -> dict[str, Any]:
    """Fine-tune and save to ``s.output_dir``; returns the training metrics (loss, steps, time).
    A model/tokenizer already in memory can be passed instead of loading ``s.model``.
    ``on_progress(step, total=max_steps, note="loss X")`` follows the optimizer steps; the
    trainer's metric dicts are logged (INFO), never printed."""
    try:
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer
    except ImportError as exc:
        raise MissingDependency("trl", "train") from exc
    if model is None or tokenizer is None:
        model, tokenizer = load_model_and_tokenizer(s.model)
    added = add_format_tokens(tokenizer, model)
    if added:
        log.info("added special tokens %s", added)
    rows = read_conversations(s.data)
    args = SFTConfig(
        **trl_common_args(s),
        **COUNT_TOKENS,
        max_length=s.max_length,
        packing=s.packing,
        completion_only_loss=True,
        train_sampling_strategy="group_by_length"
        if s.group_by_length and not s.packing
        else "random",
        **s.extra,
    )
    peft_config = lora_config(s.lora)
    if peft_config is not None and added:
        model, peft_config = with_new_rows_trained(model, peft_config), None
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    follow(trainer, on_progress)
    metrics = save_trained(trainer, tokenizer, trainer.train(), s.output_dir)
    write_train_info(s.output_dir, "sft", s, metrics)  # one writer in a multi-process run
    return metrics
