"""Problem sets: load problem files, benchmarks by name, and the prompt that poses a problem.

>>> from reasonloop.problems import load_benchmark, prompt_for
>>> problems = load_benchmark("math500", data_dir="../shared/data", limit=2)  # doctest: +SKIP
>>> prompt_for(problems[0])  # doctest: +SKIP

- :func:`load_problems` / :func:`iter_problems`: JSONL, JSON, parquet, HF ``save_to_disk`` dirs;
- :func:`load_benchmark` / :data:`BENCHMARKS`: ``math500``, ``aime24``, ``aime25``, ``amc23``,
  ``gsm8k``, ``gpqa`` (diamond), ``humaneval``, ``math-train``, from a data dir or the HF hub;
- :func:`resolve_problems`: a CLI ``--problems NAME|PATH`` (:func:`check_problem_spec` checks one
  without loading it);
- :func:`load_gpqa`: the encrypted GPQA archive, decrypted in memory;
- :func:`prompt_for` / :func:`format_choices`: the user message for a problem.
"""

from __future__ import annotations

from reasonloop.problems.gpqa import GPQA_VARIANTS, load_gpqa
from reasonloop.problems.load import iter_problems, load_problems
from reasonloop.problems.prompt import format_choices, prompt_for
from reasonloop.problems.registry import (
    ALIASES,
    BENCHMARKS,
    DATA_ENV,
    Benchmark,
    benchmark,
    check_problem_spec,
    load_benchmark,
    resolve_problems,
)

__all__ = [
    "ALIASES",
    "BENCHMARKS",
    "DATA_ENV",
    "GPQA_VARIANTS",
    "Benchmark",
    "benchmark",
    "check_problem_spec",
    "format_choices",
    "iter_problems",
    "load_benchmark",
    "load_gpqa",
    "load_problems",
    "prompt_for",
    "resolve_problems",
]
