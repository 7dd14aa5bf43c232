"""The answer-only control's training set (the ReasonSet comparison): D_0's rows with each
worked response replaced by its final answer alone, ``<|begin_of_thought|><|end_of_thought|>``
then ``Answer: \\boxed{ANSWER}`` (:func:`reasonloop.engines.countdown.answer_only`), so that the
control sees the same problems, in the same prompts, as imitation — only the thought is missing.

Both the CPU demo and a loop recipe with ``control: true`` build it here. What it does not do:
decide how long the control trains (the demo gives it imitation's steps; the loop recipe matches
imitation's training tokens, see :meth:`reasonloop.recipe.runner.Loop._control`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reasonloop.engines.countdown import answer_only
from reasonloop.errors import DataError


def answer_only_rows(d0: Path, store: Any) -> list[dict[str, Any]]:
    """One row per row of ``d0`` (a curated ``train.jsonl``): its ``messages`` with the last
    (assistant) message's content replaced by the answer-only response, the answer read from the
    stored trajectory the row was made from. A row whose trajectory the store lacks is a
    :class:`DataError` naming the file and line."""
    rows = []
    for n, line in enumerate(d0.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        t = store.get(row["trajectory_id"])
        if t is None or t.extracted is None:
            raise DataError(
                f"trajectory {row['trajectory_id']!r} has no stored answer; rebuild D_0 from the "
                "same store",
                where=f"{d0}:{n}",
                field="trajectory_id",
            )
        messages = [
            *row["messages"][:-1],
            {"role": "assistant", "content": answer_only(t.extracted)},
        ]
        rows.append({"messages": messages})
    return rows


__all__ = ["answer_only_rows"]
