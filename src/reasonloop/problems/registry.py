"""Benchmarks by name, read from a local data directory or, failing that, the Hugging Face hub.

Where the data comes from, first match wins:

1. ``data_dir=`` (CLI ``--data-dir``);
2. the environment variable ``REASONLOOP_DATA``;
3. the HF hub, through ``datasets.load_dataset`` (needs ``pip install 'reasonloop[train]'`` and a
   network; GPQA is gated, so also an accepted licence and ``huggingface-cli login``).

A data directory has this layout (that of the project's ``shared/data``)::

    math500/test.jsonl   aime2024/test.jsonl   aime2025/test.jsonl   amc2023/test.jsonl
    gsm8k/test.jsonl     humaneval/test.jsonl  math_train/<subject>.jsonl (7 files)
    gpqa/dataset.zip     (the authors' encrypted archive; see reasonloop.problems.gpqa)

A file missing from a named data directory is an error, never a silent fall back to the hub. Ids
from the hub match the local ones except for ``math-train``, whose hub copy has no MATH file
numbers (its ids are ``hub/<split>/<subject>/<row>``). The hub path is not exercised by the tests
beyond its field mappings (no network there).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonloop.errors import ConfigError, DataError
from reasonloop.problems import gpqa
from reasonloop.problems.countdown import countdown_set
from reasonloop.problems.load import iter_problems, load_problems, problem_from_row
from reasonloop.records import Problem

log = logging.getLogger(__name__)

DATA_ENV = "REASONLOOP_DATA"

# MATH subjects in the fixed order math-train concatenates them.
MATH_SUBJECTS: tuple[str, ...] = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)


@dataclass(frozen=True, slots=True)
class Benchmark:
    """One named problem set: where it lies in a data dir, where on the hub, how many rows."""

    name: str
    domain: str
    files: tuple[str, ...]  # relative to the data dir
    hub: str  # the HF dataset id(s) it is loaded from without a data dir
    rows: int
    description: str


_REGISTRY: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("math500", "math", ("math500/test.jsonl",), "HuggingFaceH4/MATH-500", 500,
                  "MATH-500, the PRM800K test subset of MATH"),
        Benchmark("aime24", "math", ("aime2024/test.jsonl",), "HuggingFaceH4/aime_2024", 30,
                  "AIME 2024 I and II"),
        Benchmark("aime25", "math", ("aime2025/test.jsonl",), "math-ai/aime25", 30,
                  "AIME 2025 I and II"),
        Benchmark("amc23", "math", ("amc2023/test.jsonl",), "AI-MO/aimo-validation-amc", 40,
                  "AMC 12 2023 A and B, choices removed"),
        Benchmark("gsm8k", "math", ("gsm8k/test.jsonl",), "openai/gsm8k", 1319,
                  "GSM8K test split"),
        Benchmark("gpqa", "science", ("gpqa/dataset.zip",), "Idavidrein/gpqa", 198,
                  "GPQA diamond, four shuffled choices"),
        Benchmark("humaneval", "code", ("humaneval/test.jsonl",), "openai/openai_humaneval", 164,
                  "HumanEval function completion"),
        Benchmark("math-train", "math", tuple(f"math_train/{s}.jsonl" for s in MATH_SUBJECTS),
                  "EleutherAI/hendrycks_math", 11998,
                  "MATH train+test less MATH-500 (the PRM800K 12k train split)"),
    )
}  # fmt: skip

BENCHMARKS: tuple[str, ...] = tuple(_REGISTRY)

# Other spellings people use; "gpqa-main" / "gpqa-extended" pick the other GPQA variants.
ALIASES: dict[str, tuple[str, str | None]] = {
    "math-500": ("math500", None),
    "aime2024": ("aime24", None),
    "aime2025": ("aime25", None),
    "amc2023": ("amc23", None),
    "math_train": ("math-train", None),
    "gpqa-diamond": ("gpqa", "diamond"),
    "gpqa-main": ("gpqa", "main"),
    "gpqa-extended": ("gpqa", "extended"),
}


def benchmark(name: str) -> Benchmark:
    """The registry entry for ``name`` (or an alias); ConfigError listing the names otherwise."""
    return _REGISTRY[_canonical(name)[0]]


def load_benchmark(
    name: str,
    *,
    data_dir: str | Path | None = None,
    gpqa_password: str | None = None,
    seed: int = 0,
    limit: int | None = None,
) -> list[Problem]:
    """The problems of benchmark ``name`` in their fixed order, the first ``limit`` if given.

    ``seed`` only shuffles GPQA's choices. Raises ConfigError for an unknown name (listing the
    valid ones) and DataError for missing or bad data (saying how to point at a data dir).
    """
    bench, variant = _canonical(name)
    if limit is not None and limit < 0:
        raise ConfigError(f"limit must be >= 0, got {limit}")
    root = data_dir if data_dir is not None else os.environ.get(DATA_ENV) or None
    if root is not None:
        problems = _load_local(bench, Path(root).expanduser(), variant, gpqa_password, seed, limit)
        log.info("loaded %d %s problems from %s", len(problems), name, root)
    else:
        problems = _load_hub(bench, variant, seed)[:limit]
        log.info("loaded %d %s problems from the HF hub", len(problems), name)
    return problems


def resolve_problems(
    spec: str,
    *,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    gpqa_password: str | None = None,
    seed: int = 0,
    domain: str | None = None,
) -> list[Problem]:
    """Problems for a CLI ``--problems NAME|PATH``: a benchmark name, else a file or directory.

    A name wins over a same-named path in the working directory (write ``./gsm8k`` for the path).
    ``countdown-easy|medium|hard`` are generated Countdown sets (100 puzzles unless ``limit``;
    ``seed`` picks the set), needing no data at all.
    A ``.zip`` path is read as the GPQA archive. ``domain`` fills rows that lack one (files only).
    """
    if limit is not None and limit < 0:
        raise ConfigError(f"limit must be >= 0, got {limit}")
    check_problem_spec(spec)
    generated = _COUNTDOWN.fullmatch(spec.strip().lower())
    if generated:
        return countdown_set(generated.group(1), limit if limit is not None else 100, seed=seed)
    if _lookup(spec) is not None:
        return load_benchmark(
            spec, data_dir=data_dir, gpqa_password=gpqa_password, seed=seed, limit=limit
        )
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".zip":
        problems = gpqa.load_gpqa(path, password=gpqa_password, seed=seed)
    else:
        problems = load_problems(path, domain=domain)
    return problems[:limit]


_COUNTDOWN = re.compile(r"countdown-(easy|medium|hard)")


def check_problem_spec(spec: str, *, key: str = "--problems") -> None:
    """Raise ConfigError unless ``spec`` names a problem set :func:`resolve_problems` can read: a
    benchmark name or alias, a generated Countdown set, or an existing file or directory. Loads
    nothing (a recipe checks its sets with it before anything runs); ``key`` names the setting."""
    name = spec.strip().lower()
    if _COUNTDOWN.fullmatch(name) or _lookup(spec) is not None or Path(spec).expanduser().exists():
        return
    raise ConfigError(
        f"{key} {spec!r} is neither a benchmark ({', '.join(BENCHMARKS)}, "
        "countdown-easy|medium|hard) nor an existing file or directory"
    )


def _lookup(name: str) -> tuple[str, str | None] | None:
    key = name.strip().lower()
    if key in _REGISTRY:
        return key, ("diamond" if key == "gpqa" else None)
    return ALIASES.get(key)


def _canonical(name: str) -> tuple[str, str | None]:
    found = _lookup(name)
    if found is None:
        raise ConfigError(
            f"unknown benchmark {name!r}; valid names: {', '.join(BENCHMARKS)} "
            f"(aliases: {', '.join(ALIASES)}); or give a problem file path"
        )
    return found


# --- local data dir -------------------------------------------------------------------------


def _load_local(
    bench: str,
    root: Path,
    variant: str | None,
    password: str | None,
    seed: int,
    limit: int | None,
) -> list[Problem]:
    if not root.is_dir():
        raise DataError(
            f"data dir {root} is not a directory; pass --data-dir DIR or set {DATA_ENV} "
            "to a directory laid out as described in reasonloop.problems.registry"
        )
    spec = _REGISTRY[bench]
    paths = [root / rel for rel in spec.files]
    for path in paths:
        if not path.exists():
            raise DataError(
                f"{bench}: no {path.relative_to(root)} under data dir {root}; point --data-dir / "
                f"{DATA_ENV} at a directory with that layout, or unset both to load from the HF hub"
            )
    if bench == "gpqa":
        return gpqa.load_gpqa(paths[0], password=password, seed=seed, variant=variant or "diamond")[
            :limit
        ]
    chained = itertools.chain.from_iterable(iter_problems(p, domain=spec.domain) for p in paths)
    return list(itertools.islice(chained, limit))


# --- HF hub ---------------------------------------------------------------------------------


def _hub_rows(dataset: str, config: str | None, split: str) -> list[dict[str, Any]]:
    """The rows of one hub dataset split, as plain dicts. The one place that touches the network."""
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"no data dir given and the 'datasets' package (needed to load {dataset} from the HF "
            f"hub) is not installed; pass --data-dir DIR or set {DATA_ENV}, or run "
            "pip install 'reasonloop[train]'"
        ) from None
    try:
        return list(datasets.load_dataset(dataset, config, split=split))
    except Exception as exc:  # network, auth, gated repo, renamed split ... all mean the same fix
        raise DataError(
            f"could not load {dataset} ({config or 'default'}, {split}) from the HF hub: "
            f"{type(exc).__name__}: {exc}; pass --data-dir DIR or set {DATA_ENV} to a local copy"
        ) from None


def _load_hub(bench: str, variant: str | None, seed: int) -> list[Problem]:
    if bench == "gpqa":
        variant = variant or "diamond"
        rows = _hub_rows("Idavidrein/gpqa", f"gpqa_{variant}", "train")
        return gpqa.problems_from_rows(rows, seed=seed, variant=variant, where="hf:Idavidrein/gpqa")
    convert = _HUB[bench]
    return list(convert())


def _checked(dataset: str, rows: Iterable[dict[str, Any]], domain: str) -> Iterator[Problem]:
    for i, row in enumerate(rows):
        yield problem_from_row(row, where=f"hf:{dataset}:row {i}", domain=domain)


def _hub_math500() -> Iterator[Problem]:
    rows = _hub_rows("HuggingFaceH4/MATH-500", None, "test")
    return _checked(
        "HuggingFaceH4/MATH-500",
        (
            {"id": r["unique_id"], "problem": r["problem"], "answer": r["answer"],
             "solution": r["solution"], "source": "MATH-500", "level": r["level"],
             "subject": r["subject"]}
            for r in rows
        ),
        "math",
    )  # fmt: skip


_AIME_URL = re.compile(r"(\d{4})_AIME_(I{1,2})_Problems/Problem_(\d+)")


def _hub_aime24() -> Iterator[Problem]:
    rows = _hub_rows("HuggingFaceH4/aime_2024", None, "train")
    out = []
    for r in rows:
        m = _AIME_URL.search(r.get("url") or "")
        pid = f"aime2024-{m.group(2)}-{int(m.group(3)):02d}" if m else f"aime2024-{r['id']}"
        out.append({"id": pid, "problem": r["problem"], "answer": _strip_zeros(r["answer"]),
                    "solution": r.get("solution"), "source": "AIME-2024"})  # fmt: skip
    return _checked("HuggingFaceH4/aime_2024", out, "math")


def _hub_aime25() -> Iterator[Problem]:
    # The hub file lists I-1..I-15 then II-1..II-15 with no part/number columns.
    rows = _hub_rows("math-ai/aime25", None, "test")
    out = []
    for i, r in enumerate(rows):
        part, number = ("I", i + 1) if i < 15 else ("II", i - 14)
        out.append({"id": f"aime2025-{part}-{number:02d}", "problem": r["problem"],
                    "answer": _strip_zeros(r["answer"]), "source": "AIME-2025"})  # fmt: skip
    return _checked("math-ai/aime25", out, "math")


_AMC_URL = re.compile(r"2023_AMC_(\d+[AB])_Problems/Problem_(\d+)")


def _hub_amc23() -> Iterator[Problem]:
    # The usual AMC23 set is the 2023 slice of this validation set (its answers are floats).
    rows = _hub_rows("AI-MO/aimo-validation-amc", None, "train")
    out = []
    for r in rows:
        m = _AMC_URL.search(r.get("url") or "")
        if m:
            out.append({"id": f"amc2023-{m.group(1)}-{int(m.group(2)):02d}", "problem": r["problem"],
                        "answer": r["answer"], "source": "AMC-2023"})  # fmt: skip
    return _checked("AI-MO/aimo-validation-amc", out, "math")


def _hub_gsm8k() -> Iterator[Problem]:
    rows = _hub_rows("openai/gsm8k", "main", "test")
    return _checked(
        "openai/gsm8k",
        (
            {"id": f"gsm8k-test-{i:04d}", "problem": r["question"],
             "answer": r["answer"].split("####")[-1].strip().replace(",", ""),
             "solution": r["answer"], "source": "GSM8K"}
            for i, r in enumerate(rows)
        ),
        "math",
    )  # fmt: skip


def _hub_humaneval() -> Iterator[Problem]:
    rows = _hub_rows("openai/openai_humaneval", None, "test")
    return _checked(
        "openai/openai_humaneval",
        (
            {"id": r["task_id"], "problem": r["prompt"], "answer": r["canonical_solution"],
             "solution": r["prompt"] + r["canonical_solution"], "tests": r["test"],
             "entry_point": r["entry_point"], "source": "HumanEval"}
            for r in rows
        ),
        "code",
    )  # fmt: skip


def _hub_math_train() -> Iterator[Problem]:
    # PRM800K's 12k train split = all of MATH (train + test) less the MATH-500 problems.
    held_out = {r["problem"].strip() for r in _hub_rows("HuggingFaceH4/MATH-500", None, "test")}
    out = []
    for subject in MATH_SUBJECTS:
        for split in ("train", "test"):
            for i, r in enumerate(_hub_rows("EleutherAI/hendrycks_math", subject, split)):
                answer = last_boxed(r["solution"])
                if r["problem"].strip() in held_out or not answer:
                    continue
                level = (r.get("level") or "").removeprefix("Level ").strip()
                out.append({"id": f"hub/{split}/{subject}/{i}", "problem": r["problem"],
                            "answer": answer, "solution": r["solution"],
                            "source": "MATH-train-prm800k-12k",
                            "level": level if level.isdigit() else None,
                            "subject": r.get("type")})  # fmt: skip
    return _checked("EleutherAI/hendrycks_math", out, "math")


_HUB: dict[str, Callable[[], Iterator[Problem]]] = {
    "math500": _hub_math500,
    "aime24": _hub_aime24,
    "aime25": _hub_aime25,
    "amc23": _hub_amc23,
    "gsm8k": _hub_gsm8k,
    "humaneval": _hub_humaneval,
    "math-train": _hub_math_train,
}


def _strip_zeros(answer: Any) -> Any:
    """AIME answers are compared as integers; ``"033"`` becomes ``"33"``."""
    if isinstance(answer, str) and answer.strip().isdigit():
        return str(int(answer))
    return answer


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (or ``\\boxed 2``) in ``text``.

    Braces are matched; returns None when there is none or it is unbalanced. Whitespace-stripped.
    """
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    rest = text[start:].removeprefix("\\boxed").removeprefix("\\fbox")
    if rest.startswith(" "):
        m = re.match(r" +([^\s$]+)", rest)
        return m.group(1).strip() if m else None
    if not rest.startswith("{"):
        return None
    depth = 0
    for i, ch in enumerate(rest):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth == 0:
            return rest[1:i].strip()
    return None
