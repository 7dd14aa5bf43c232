"""The curation pipeline: filters → exact / near-duplicate removal → decontamination → selection
(by length and perplexity) → mixing by domain and difficulty → an SFT dataset.

It streams: each trajectory passes the filters once; what survives is spilled to a temporary file
while only a small index row (problem, domain, level, length, perplexity, position) stays in memory;
a second pass writes the selected rows. Rejected rows go to ``rejects.jsonl`` with their reason.
"""

from __future__ import annotations

import json
import logging
import pickle
import random
import tempfile
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from itertools import islice
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from reasonloop.curate.dedup import (
    Decontaminator,
    ExactDedup,
    NearDedup,
    fingerprint,
    shingle_hashes,
)
from reasonloop.curate.filters import Filter, FilterConfig, default_filters, first_failure
from reasonloop.curate.tokens import parts
from reasonloop.engines import load_engine
from reasonloop.errors import ConfigError, DataError
from reasonloop.format import SYSTEM_PROMPT
from reasonloop.generate import perplexity_scorer
from reasonloop.problems import resolve_problems
from reasonloop.problems.prompt import prompt_for
from reasonloop.progress import LogReporter, Reporter
from reasonloop.records import Problem, Trajectory
from reasonloop.store import open_store

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
            raise ConfigError(f"must be one of {list(valid)}, got {self.by!r}", field="by")
        if self.per_problem < 1:
            raise ConfigError(f"must be >= 1, got {self.per_problem}", field="per_problem")


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
            except ConfigError as exc:
                field = f"{key}.{exc.field}" if exc.field else key
                raise ConfigError(exc.message, field=field, where=str(path)) from None
            except TypeError as exc:
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
    ``workers`` > 1 the per-row work (filters, fingerprints, MinHash band keys, decontamination
    look-ups) runs in that many processes, in batches, and order is kept; the duplicate indexes,
    the perplexity calls and writing stay in this one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    exact, near = ExactDedup(), NearDedup(threshold=cfg.near_dup_threshold)
    bench = list(benchmark_texts)
    decon = Decontaminator(bench, n=cfg.decontaminate_n) if bench else None
    work = _Work(tuple(default_filters(cfg.filters)), near, decon)
    report = CurateReport()
    needs_ppl = cfg.select.by.startswith("perplexity")
    # pid, domain, level, words, ppl, position in the spill
    index: list[tuple[str, str, str, int, float, int]] = []
    problems: dict[str, Problem] = {}
    labels: dict[Any, Any] = {}  # one shared object per domain / level value, not one per row
    with (
        # (id, text) pickles, read back in order: no JSON, no text-mode seek/tell (both slow)
        tempfile.TemporaryFile("w+b", dir=out_dir) as spill,
        (out_dir / "rejects.jsonl.tmp").open("w", encoding="utf-8") as rejects,
        _prepared(rows, work, workers) as prepared,
    ):
        for problem, t, prep in prepared:
            report.seen += 1
            if progress and report.seen % 1000 == 0:
                progress(report.seen)
            reason = prep.reason
            if reason is None and exact.seen_before(prep.fingerprint):
                reason = "exact_duplicate"
            if reason is None and prep.contaminated:
                reason = "contaminated"
            if reason is None and near.seen_before(prep.near_keys):
                reason = "near_duplicate"
            if reason is not None:
                report.dropped[reason] += 1
                rejects.write(
                    json.dumps({"id": t.id, "problem_id": t.problem_id, "reason": reason}) + "\n"
                )
                continue
            ppl = t.perplexity
            if ppl is None and needs_ppl and perplexity is not None:
                ppl = perplexity(problem, t)
            # the index shares the first problem's id string (rows of one problem repeat it)
            pid = problems.setdefault(problem.id, problem).id
            pickle.dump((t.id, t.text), spill, protocol=pickle.HIGHEST_PROTOCOL)
            index.append(
                (
                    pid,
                    labels.setdefault(problem.domain, problem.domain),
                    labels.setdefault(problem.level or "-", problem.level or "-"),
                    prep.thought_words,
                    ppl or 0.0,
                    len(index),
                )
            )
        chosen = _select(index, cfg.select)
        chosen = _mix(chosen, cfg.mix)
        dropped_by_selection = len(index) - len(chosen)
        if dropped_by_selection:
            report.dropped["not_selected"] += dropped_by_selection
        del index
        # one sequential pass over the spill writes the chosen rows in arrival order
        by_position = {r[5]: r for r in chosen}
        spill.seek(0)
        with (out_dir / "train.jsonl.tmp").open("w", encoding="utf-8") as train:
            for position in range(max(by_position, default=-1) + 1):
                # a fresh unpickler per record: one reused Unpickler memoises every text it loads
                tid, text = pickle.load(spill)
                row = by_position.get(position)
                if row is None:
                    continue
                pid, domain, level = row[:3]
                t = Trajectory(pid, text, id=tid)
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


def store_rows(store, stages: Iterable[str] = ()) -> Iterator[tuple[Problem, Trajectory]]:
    """``(problem, trajectory)`` for the store's trajectories of ``stages`` (all when empty), in
    store order; a trajectory whose problem is not in the store is left out."""
    problems = {p.id: p for p in store.problems()}
    wanted = set(stages)
    for s in store.stored():
        if (not wanted or s.stage in wanted) and s.trajectory.problem_id in problems:
            yield problems[s.trajectory.problem_id], s.trajectory


def run_curate(
    store: str | Path,
    out_dir: str | Path,
    cfg: CurateConfig = CurateConfig(),
    *,
    stages: Iterable[str] = (),
    decontaminate: Iterable[str] = (),
    data_dir: str | Path | None = None,
    perplexity_engine: str | None = None,
    reporter: Reporter | None = None,
) -> CurateReport:
    """The ``curate`` stage over a store file: the benchmarks to decontaminate against are loaded
    and the perplexity engine (if any) opened before the store is read (read-only)."""

    reporter = reporter or LogReporter()
    bench = [p.problem for name in decontaminate for p in resolve_problems(name, data_dir=data_dir)]
    eng = load_engine(perplexity_engine) if perplexity_engine else None
    scorer = perplexity_scorer(eng, system_prompt=cfg.system_prompt) if eng else None
    if not Path(store).exists():
        raise DataError("no such store", where=str(store))
    try:
        with (
            open_store(store, create=False, readonly=True) as st,
            reporter.task("curate", len(st)) as update,
        ):
            report = curate(
                store_rows(st, stages),
                Path(out_dir),
                cfg,
                benchmark_texts=bench,
                perplexity=scorer,
                progress=update,
            )
            update(report.seen)
            return report
    finally:
        if eng is not None:
            eng.close()


@dataclass(frozen=True, slots=True)
class _Work:
    """What the per-row work needs; handed to each worker process once, when it starts."""

    filters: tuple[tuple[str, Filter], ...]
    near: NearDedup  # only its pure band_keys is used there; the index stays in the parent
    decon: Decontaminator | None


class _Prepared(NamedTuple):
    """What the per-row work hands back (a NamedTuple: it pickles several times faster than a
    slotted dataclass, and a worker sends one per row)."""

    reason: str | None
    thought_words: int = 0
    fingerprint: bytes = b""
    near_keys: tuple[int, ...] = ()
    contaminated: bool = False


def _prepare(work: _Work, problem_text: str, t: Trajectory) -> _Prepared:
    reason = first_failure(t, work.filters)
    if reason is not None:
        return _Prepared(reason)
    thought = parts(t.text).thought or ""
    return _Prepared(
        None,
        len(thought.split()),
        fingerprint(t.text),
        work.near.band_keys(shingle_hashes(thought or t.text, work.near.ngram)),
        work.decon is not None and work.decon.is_contaminated(problem_text),
    )


_WORKER: list[_Work] = []  # the worker process's _Work, set by _init_worker


def _init_worker(work: _Work) -> None:
    _WORKER[:] = [work]


# A worker gets the problem text and the trajectory's field values, not the records: slotted
# dataclasses pickle field by field in Python, about three times slower.
_TRAJECTORY_FIELDS = attrgetter(*(f.name for f in fields(Trajectory)))


def _prepare_batch(batch: list[tuple[str, tuple]]) -> list[_Prepared]:
    work = _WORKER[0]
    return [_prepare(work, text, Trajectory(*values)) for text, values in batch]


# Rows per task: large enough that a task's pickling and messaging cost is small per row.
_BATCH = 256


@contextmanager
def _prepared(
    rows: Iterable[tuple[Problem, Trajectory]], work: _Work, workers: int
) -> Iterator[Iterator[tuple[Problem, Trajectory, _Prepared]]]:
    if workers <= 1:
        yield ((problem, t, _prepare(work, problem.problem, t)) for problem, t in rows)
        return
    import multiprocessing as mp

    # fork: the workers inherit ``work`` (filters, permutations, benchmark n-grams) unpickled
    with mp.get_context("fork").Pool(workers, initializer=_init_worker, initargs=(work,)) as pool:
        yield _in_batches(pool, iter(rows), window=2 * workers + 2)


def _in_batches(pool, rows: Iterator, *, window: int) -> Iterator:
    """Rows with their ``_Prepared``, in input order. At most ``window`` batches are in flight,
    so memory stays bounded however fast the input or slow the consumer (``Pool.imap`` would
    queue every finished result)."""
    pending: deque = deque()
    while True:
        batch = list(islice(rows, _BATCH))
        if batch:
            packed = [(problem.problem, _TRAJECTORY_FIELDS(t)) for problem, t in batch]
            pending.append((batch, pool.apply_async(_prepare_batch, (packed,))))
        if not pending:
            return
        if batch and len(pending) < window:
            continue
        done, result = pending.popleft()
        for (problem, t), prep in zip(done, result.get(), strict=True):
            yield problem, t, prep


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
