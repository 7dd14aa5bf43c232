"""The ``tiny`` student: a Llama of a few ten thousand parameters with a character tokenizer.

Built from a config in the run directory, nothing downloaded: it lets a loop recipe run end to end
on a CPU in a minute (the ``cpu-smoke`` recipe, the tests). It learns nothing useful in that time;
for a student that does, see the CPU demo (``reasonloop demo``). Characters outside printable ASCII
become ``<unk>``.
"""

from __future__ import annotations

import string
from pathlib import Path

from reasonloop.demo.student import make_student, make_task_tokenizer


def build_tiny(out: str | Path, *, seed: int = 0, max_positions: int = 2048) -> str:
    """Save the tiny model and its tokenizer (chat template and the format's markers included)."""
    tok = make_task_tokenizer([string.printable], max_number=0, words=False)
    model = make_student(
        tok, hidden_size=32, layers=2, heads=2, max_position_embeddings=max_positions, seed=seed
    )
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)
