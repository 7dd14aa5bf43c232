"""The curation pipeline: filters → exact / near-duplicate removal → decontamination → selection
(by length and perplexity) → mixing by domain and difficulty → an SFT dataset.

It streams: each trajectory passes the filters once; what survives is spilled to a temporary JSONL
while only a small index row (problem, domain, level, length, perplexity, offset) stays in memory;
a second pass writes the selected rows. Rejected rows go to ``rejects.jsonl`` with their reason.
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reasonloop.curate.dedup import (
    DEFAULT_NGRAM,
    Decontaminator,
    ExactDedup,
    NearDedup,
    fingerprint,
    shingle_hashes,
)
from reasonloop.curate.filters import FilterConfig, default_filters, first_failure
from reasonloop.errors import ConfigError
from reasonloop.format import SYSTEM_PROMPT, parse
from reasonloop.records import Problem, Trajectory, from_dict, to_dict

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SelectConfig:
    """Per problem, keep up to ``per_problem`` trajectories ordered by ``by``:
    ``longest`` / ``shortest`` thought, ``perplexity_high`` / ``perplexity_low`` (STILL-2 keeps the
    harder, higher-perplexity ones), or ``first``."""

    per_problem: int = 1
    by: str = "longest"

    def __post_init__(self) -> None:
        valid = ("longest", "shortest", "perplexity_high", "perplexity_low", "first")
        if self.by not in valid:
            raise ConfigError(f"select.by: {self.by!r} is not one of {list(valid)}")
        if self.per_problem < 1:
            raise ConfigError(f"select.per_problem must be >= 1, got {self.per_problem}")


@dataclass(frozen=True, slots=True)
class MixConfig:
    """Target shares by domain and by level (difficulty); ``total`` rows at most (0 = all)."""

    domains: Mapping[str, float] = field(default_factory=dict)
    levels: Mapping[str, float] = field(default_factory=dict)
    total: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        for name, shares in (("domains", self.domains), ("levels", self.levels)):
            for k, v in shares.items():
                if not isinstance(v, int | float) or v < 0:
                    raise ConfigError(f"mix.{name}.{k}: share must be a number >= 0, got {v!r}")


@dataclass(frozen=True, slots=True)
class CurateConfig:
    filters: FilterConfig = FilterConfig()
    near_dup_threshold: float = 0.8
    decontaminate_n: int = 13
    select: SelectConfig = SelectConfig()
    mix: MixConfig = MixConfig()
    system_prompt: bool = True


def load_recipe(path: Path) -> CurateConfig:
    """A YAML recipe with keys ``filters``, ``near_dup_threshold``, ``decontaminate_n``,
    ``select``, ``mix``, ``system_prompt``; unknown keys are errors naming the file and key."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: recipe not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the recipe must be a mapping")
    top = {"filters", "near_dup_threshold", "decontaminate_n", "select", "mix", "system_prompt"}
    _reject_unknown(path, "", data, top)
    kwargs: dict[str, Any] = {
        k: data[k] for k in ("near_dup_threshold", "decontaminate_n", "system_prompt") if k in data
    }
    for key, cls in (("filters", FilterConfig), ("select", SelectConfig), ("mix", MixConfig)):
        if key in data:
            sub = data[key] or {}
            if not isinstance(sub, dict):
                raise ConfigError(f"{path}: {key} must be a mapping")
            _reject_unknown(path, key + ".", sub, set(cls.__dataclass_fields__))
            try:
                kwargs[key] = cls(**sub)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{path}: {key}: {exc}") from None
    return CurateConfig(**kwargs)


def _reject_unknown(path: Path, prefix: str, data: Mapping, valid: set[str]) -> None:
    unknown = set(data) - valid
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {sorted(prefix + k for k in unknown)}; valid: {sorted(valid)}"
        )


@dataclass
class CurateReport:
    seen: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    by_domain: Counter = field(default_factory=Counter)
    by_level: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "kept": self.kept,
            "dropped": dict(self.dropped.most_common()),
            "by_domain": dict(sorted(self.by_domain.items())),
            "by_level": dict(sorted(self.by_level.items())),
        }


def sft_row(problem: Problem, t: Trajectory, *, system_prompt: bool = True) -> dict[str, Any]:
    """One TRL conversational SFT row."""
    from reasonloop.problems.prompt import prompt_for

    messages = [{"role": "system", "content": SYSTEM_PROMPT}] if system_prompt else []
    messages += [
        {"role": "user", "content": prompt_for(problem)},
        {"role": "assistant", "content": t.text},
    ]
    return {"messages": messages, "problem_id": problem.id, "trajectory_id": t.id}


def curate(
    rows: Iterable[tuple[Problem, Trajectory]],
    out_dir: Path,
    cfg: CurateConfig = CurateConfig(),
    *,
    benchmark_texts: Iterable[str] = (),
    perplexity: Callable[[Problem, Trajectory], float | None] | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> CurateReport:
    """Curate ``rows`` into ``out_dir``: ``train.jsonl`` (TRL conversational), ``rejects.jsonl``,
    ``report.json``. ``perplexity`` scores a kept trajectory (e.g. an engine's ``score``) when the
    selection needs it; a trajectory's stored ``perplexity`` is used when present. With
    ``workers`` > 1 the filters and n-gram hashing run in that many processes (order is kept);
    duplicate detection and writing stay in this one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    exact, near = ExactDedup(), NearDedup(threshold=cfg.near_dup_threshold)
    bench = list(benchmark_texts)
    decon = Decontaminator(bench, n=cfg.decontaminate_n) if bench else None
    report = CurateReport()
    needs_ppl = cfg.select.by.startswith("perplexity")
    index: list[
        tuple[str, str, str, int, float, int]
    ] = []  # pid, domain, level, words, ppl, offset
    problems: dict[str, Problem] = {}
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8", dir=out_dir) as spill,
        (out_dir / "rejects.jsonl.tmp").open("w", encoding="utf-8") as rejects,
        _prepared(rows, cfg, workers) as prepared,
    ):
        for problem, t, prep in prepared:
            report.seen += 1
            if progress and report.seen % 1000 == 0:
                progress(report.seen)
            reason = prep.reason
            if reason is None and exact.seen_before(prep.fingerprint):
                reason = "exact_duplicate"
            if reason is None and decon is not None and decon.is_contaminated(problem.problem):
                reason = "contaminated"
            if reason is None and near.is_duplicate_hashes(prep.shingles):
                reason = "near_duplicate"
            if reason is not None:
                report.dropped[reason] += 1
                rejects.write(
                    json.dumps({"id": t.id, "problem_id": t.problem_id, "reason": reason}) + "\n"
                )
                continue
            thought = prep.thought
            ppl = t.perplexity
            if ppl is None and needs_ppl and perplexity is not None:
                ppl = perplexity(problem, t)
            problems.setdefault(problem.id, problem)
            offset = spill.tell()
            spill.write(json.dumps(to_dict(t), ensure_ascii=False) + "\n")
            index.append(
                (
                    problem.id,
                    problem.domain,
                    problem.level or "-",
                    len(thought.split()),
                    ppl or 0.0,
                    offset,
                )
            )
        chosen = _select(index, cfg.select)
        chosen = _mix(chosen, cfg.mix)
        dropped_by_selection = len(index) - len(chosen)
        if dropped_by_selection:
            report.dropped["not_selected"] += dropped_by_selection
        with (out_dir / "train.jsonl.tmp").open("w", encoding="utf-8") as train:
            for pid, domain, level, _, _, offset in sorted(chosen, key=lambda r: r[5]):
                spill.seek(offset)
                t = from_dict(Trajectory, json.loads(spill.readline()))
                train.write(
                    json.dumps(
                        sft_row(problems[pid], t, system_prompt=cfg.system_prompt),
                        ensure_ascii=False,
                    )
                    + "\n"
                )
                report.kept += 1
                report.by_domain[domain] += 1
                report.by_level[level] += 1
    (out_dir / "train.jsonl.tmp").replace(out_dir / "train.jsonl")
    (out_dir / "rejects.jsonl.tmp").replace(out_dir / "rejects.jsonl")
    (out_dir / "report.json").write_text(
        json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8"
    )
    return report


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What the per-row work (in a worker process when there are several) hands back."""

    reason: str | None
    thought: str
    fingerprint: bytes
    shingles: Any  # np.ndarray of n-gram hashes of the thought (or the text)


_WORKER_FILTERS: list = []


def _init_worker(filter_cfg: FilterConfig) -> None:
    _WORKER_FILTERS[:] = default_filters(filter_cfg)


def _prepare(item: tuple[Problem, Trajectory]) -> tuple[Problem, Trajectory, _Prepared]:
    problem, t = item
    reason = first_failure(t, _WORKER_FILTERS)
    if reason is not None:
        return problem, t, _Prepared(reason, "", b"", None)
    thought = parse(t.text).thought or ""
    return (
        problem,
        t,
        _Prepared(
            None, thought, fingerprint(t.text), shingle_hashes(thought or t.text, DEFAULT_NGRAM)
        ),
    )


@contextmanager
def _prepared(rows: Iterable[tuple[Problem, Trajectory]], cfg: CurateConfig, workers: int):
    if workers <= 1:
        _init_worker(cfg.filters)
        yield map(_prepare, rows)
        return
    import multiprocessing as mp

    with mp.get_context("fork").Pool(
        workers, initializer=_init_worker, initargs=(cfg.filters,)
    ) as pool:
        yield pool.imap(_prepare, rows, chunksize=64)


def _select(index: list[tuple], cfg: SelectConfig) -> list[tuple]:
    groups: dict[str, list[tuple]] = defaultdict(list)
    for row in index:
        groups[row[0]].append(row)
    key = {
        "longest": lambda r: -r[3],
        "shortest": lambda r: r[3],
        "perplexity_high": lambda r: -r[4],
        "perplexity_low": lambda r: r[4],
        "first": lambda r: r[5],
    }[cfg.by]
    out = []
    for rows in groups.values():
        out += sorted(rows, key=key)[: cfg.per_problem]
    return out


def _mix(rows: list[tuple], cfg: MixConfig) -> list[tuple]:
    """Sample rows so that domains and levels follow the recipe's shares (as far as the data
    allows); with no shares and no total, keep everything."""
    if not cfg.domains and not cfg.levels and not cfg.total:
        return rows
    rng = random.Random(cfg.seed)
    total = cfg.total or len(rows)
    for attr, shares in ((1, cfg.domains), (2, cfg.levels)):
        if not shares:
            continue
        norm = sum(shares.values()) or 1.0
        buckets: dict[str, list[tuple]] = defaultdict(list)
        for r in rows:
            if r[attr] in shares:
                buckets[r[attr]].append(r)
        rows = []
        for name, share in shares.items():
            pool = buckets.get(name, [])
            want = min(len(pool), round(total * share / norm))
            rows += rng.sample(pool, want)
    return rows if len(rows) <= total else rng.sample(rows, total)
