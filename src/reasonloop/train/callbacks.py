"""What a trainer says while it trains: its metrics go to the log, its steps to a progress callback.

transformers' ``Trainer`` prints every logged metric dict (``{'loss': ..., 'grad_norm': ...}``)
to stdout when its tqdm bar is off (``PrinterCallback``). :func:`follow` takes that printer out
and puts :class:`StepLog` in: each dict becomes one INFO record of this module's logger, and each
optimizer step calls ``on_progress(step, total=max_steps, note="loss X")`` (the loss of the last
logged dict), so the command line can show one progress display with the loss in it. It does not
change what the trainer computes or logs to ``report_to`` integrations.
"""

from __future__ import annotations

import logging
from typing import Any

from reasonloop.progress import Update

log = logging.getLogger(__name__)


def _callback_class() -> type:
    from transformers import TrainerCallback

    class StepLog(TrainerCallback):
        """Logs each metric dict at INFO and reports every optimizer step to ``on_progress``."""

        def __init__(self, on_progress: Update | None):
            self.on_progress = on_progress
            self.note: str | None = None

        def _report(self, state: Any) -> None:
            if self.on_progress is not None:
                self.on_progress(state.global_step, 0, total=state.max_steps, note=self.note)

        def on_train_begin(self, args, state, control, **kwargs):
            self._report(state)

        def on_step_end(self, args, state, control, **kwargs):
            self._report(state)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_local_process_zero or not logs:
                return
            shown = {k: v for k, v in logs.items() if k != "total_flos"}
            log.info(
                "step %d/%d: %s",
                state.global_step,
                state.max_steps,
                ", ".join(
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()
                ),
            )
            loss = logs.get("loss", logs.get("train_loss"))
            if isinstance(loss, (int, float)):
                self.note = f"loss {loss:.4f}"
                self._report(state)

    return StepLog


def follow(trainer: Any, on_progress: Update | None = None) -> None:
    """Replace ``trainer``'s metric printer (and its tqdm bar, if any) with :class:`StepLog`."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(_callback_class()(on_progress))
