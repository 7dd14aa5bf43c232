"""DPO the STILL-2 way: preference loss on the thought tokens only, plus an SFT term on the chosen.

Built on TRL's ``DPOTrainer``. What this adds:

- ``align="thought"``: the preference loss sees only the thought tokens of chosen and rejected (up
  to and including ``<|end_of_thought|>``; :func:`reasonloop.train.masks.thought_mask`); the
  solution tokens are masked out of it. ``align="full"`` is plain TRL DPO.
- ``sft_weight``: an NLL term on the **whole** chosen response, weighted. With ``align="full"``
  this is TRL's own ``loss_type=["sigmoid", "sft"]``; with ``align="thought"`` the SFT term needs
  the full response's log-probs while the preference needs the thought's, so the chosen half is run
  through the model once more (about 1.5x the compute of a DPO step).

STILL-2 Table 4's four variants: ``align ∈ {thought, full}`` × ``sft_weight ∈ {0, w}``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonloop.errors import ConfigError, DataError, MissingDependency
from reasonloop.format import END_THOUGHT
from reasonloop.options import check_options, include, option
from reasonloop.progress import Update
from reasonloop.train.callbacks import follow
from reasonloop.train.masks import thought_mask
from reasonloop.train.sft import (
    COUNT_TOKENS,
    TrainerOptions,
    add_format_tokens,
    jsonl_lines,
    load_model_and_tokenizer,
    lora_config,
    save_trained,
    trl_common_args,
    write_train_info,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
@include(TrainerOptions, learning_rate=5e-6, batch_size=4)  # DPO moves a trained policy gently
class DPOSettings:
    """What ``reasonloop train dpo`` runs: its flags are these fields' declarations."""

    model: str = option(cli="--model", help="The policy to start from (e.g. the SFT output).")
    data: str = option(
        cli="--data", path=True, help="TRL preference JSONL: prompt, chosen, rejected."
    )
    output_dir: str = option(cli="--out", path=True, help="Where to save the trained model.")
    align: str = option("thought", choices=("thought", "full"), help="thought (STILL-2) | full")
    sft_weight: float = option(0.0, min=0, help="Weight of the NLL term on the chosen response.")
    beta: float = option(0.1, above=0, help="DPO beta.")

    def __post_init__(self) -> None:
        check_options(self)


def read_preferences(path: str | Path) -> list[dict[str, Any]]:
    """Read TRL conversational preference rows, checking each field."""
    path = Path(path)
    rows = []
    for where, row in jsonl_lines(path):
        if not isinstance(row, dict):
            raise DataError("expected a JSON object", where=where)
        for key in ("prompt", "chosen", "rejected"):
            msgs = row.get(key)
            if (
                not isinstance(msgs, list)
                or not msgs
                or not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in msgs)
            ):
                raise DataError(
                    "expected a non-empty list of messages with string content",
                    where=where,
                    field=key,
                )
        rows.append({k: row[k] for k in ("prompt", "chosen", "rejected")})
    if not rows:
        raise DataError("no preference rows", where=str(path))
    return rows


def _thought_trainer_class():
    try:
        import torch
        from trl import DPOTrainer
        from trl.trainer.dpo_trainer import DataCollatorForPreference
    except ImportError as exc:
        raise MissingDependency("trl", "train") from exc

    class ThoughtCollator(DataCollatorForPreference):
        """TRL's preference collator plus ``thought_mask``, laid out like ``completion_mask``."""

        end_thought_id: int = -1

        def torch_call(self, examples):
            out = super().torch_call(examples)
            masks = [
                [0] * len(e["prompt_ids"]) + thought_mask(e[key], self.end_thought_id)
                for key in ("chosen_ids", "rejected_ids")
                for e in examples
            ]
            # chosen rows first, then rejected: the same order TRL stacks input_ids in
            masks = [m[: out["completion_mask"].shape[1]] for m in masks]
            width = out["completion_mask"].shape[1]
            out["thought_mask"] = torch.tensor(
                [m + [0] * (width - len(m)) for m in masks], dtype=torch.long
            )
            if self.max_length is not None and self.truncation_mode == "keep_end":
                raise ConfigError("align='thought' supports truncation_mode='keep_start' only")
            return out

    class ThoughtDPOTrainer(DPOTrainer):
        """DPOTrainer whose preference loss covers thought tokens only, plus a weighted SFT term
        on the whole chosen response."""

        sft_weight: float = 0.0

        def _compute_loss(self, model, inputs, return_outputs=False):
            thought = inputs.pop("thought_mask")
            full = inputs["completion_mask"]
            pref_inputs = dict(inputs)
            pref_inputs["completion_mask"] = full * thought
            result = super()._compute_loss(model, pref_inputs, return_outputs)
            if not self.sft_weight:
                return result
            loss = result[0] if isinstance(result, tuple) else result
            nll = chosen_nll(model, inputs)
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["sft_nll"].append(
                self.accelerator.gather(nll.detach()).mean().item()
            )
            loss = loss + self.sft_weight * nll
            return (loss, result[1]) if isinstance(result, tuple) else loss

    return ThoughtDPOTrainer, ThoughtCollator


def chosen_nll(model: Any, inputs: dict[str, Any]) -> Any:
    """Mean token NLL of the chosen responses (the first half of the batch), all completion tokens."""
    import torch.nn.functional as F

    half = inputs["input_ids"].shape[0] // 2
    ids = inputs["input_ids"][:half]
    attn = inputs["attention_mask"][:half]
    mask = inputs["completion_mask"][:half]
    logits = model(input_ids=ids, attention_mask=attn, use_cache=False).logits[:, :-1]
    target = ids[:, 1:]
    tok_mask = mask[:, 1:].float()
    nll = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(), target.reshape(-1), reduction="none"
    )
    return (nll.view_as(tok_mask) * tok_mask).sum() / tok_mask.sum().clamp(min=1.0)


def train_dpo(
    s: DPOSettings,
    *,
    model: Any = None,
    tokenizer: Any = None,
    ref_model: Any = None,
    on_progress: Update | None = None,
) -> dict[str, Any]:
    """Run DPO and save to ``s.output_dir``; returns the training metrics. ``on_progress`` as in
    :func:`reasonloop.train.sft.train_sft`."""
    try:
        from datasets import Dataset
        from trl import DPOConfig, DPOTrainer
    except ImportError as exc:
        raise MissingDependency("trl", "train") from exc
    if model is None or tokenizer is None:
        model, tokenizer = load_model_and_tokenizer(s.model)
    add_format_tokens(tokenizer, model)
    rows = read_preferences(s.data)
    loss_type: list[str] = ["sigmoid"]
    loss_weights: list[float] = [1.0]
    if s.align == "full" and s.sft_weight:
        loss_type, loss_weights = ["sigmoid", "sft"], [1.0, s.sft_weight]
    args = DPOConfig(
        **trl_common_args(s),
        **COUNT_TOKENS,
        beta=s.beta,
        max_length=s.max_length,
        loss_type=loss_type,
        loss_weights=loss_weights,
        **s.extra,
    )
    kwargs: dict[str, Any] = {}
    if s.align == "thought":
        trainer_cls, collator_cls = _thought_trainer_class()
        collator = collator_cls(pad_token_id=tokenizer.pad_token_id, max_length=s.max_length)
        collator.end_thought_id = tokenizer.convert_tokens_to_ids(END_THOUGHT)
        kwargs["data_collator"] = collator
    else:
        trainer_cls = DPOTrainer
    trainer = trainer_cls(
        model=model,
        ref_model=ref_model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora_config(s.lora),
        **kwargs,
    )
    if s.align == "thought":
        trainer.sft_weight = s.sft_weight
    follow(trainer, on_progress)
    metrics = save_trained(trainer, tokenizer, trainer.train(), s.output_dir)
    write_train_info(s.output_dir, "dpo", s, metrics)
    return metrics
