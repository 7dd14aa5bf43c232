"""The trajectory store on real SQLite files: round trips, dedup, keys, errors, progress, scores."""

from __future__ import annotations

import dataclasses
import math
import sqlite3

import pytest

from reasonloop.errors import DataError
from reasonloop.records import Generator, Problem, StepLabel, Trajectory, Verdict
from reasonloop.store import (
    SCHEMA_VERSION,
    StageStats,
    Store,
    StoredTrajectory,
    StoreStats,
    open_store,
    settings_key,
    trajectory_key,
)
from reasonloop.store.export import trajectory_rows
from reasonloop.store.schema import EXPORTED_COLUMNS, STORED_COLUMNS, TRAJECTORY_COLUMNS

PROBLEMS = [
    Problem("math/1", "math", "What is 6*7?", "42", solution="6*7=42", source="toy", level="1"),
    Problem(
        "gpqa/1",
        "science",
        "Which is a noble gas?",
        "B",
        choices=("Oxygen", "Neon", "Iron", "Sodium"),
        subject="chemistry",
    ),
    Problem(
        "code/1",
        "code",
        "def add(a, b):\n",
        "    return a + b\n",
        tests="assert add(1, 2) == 3",
        entry_point="add",
    ),
]

GEN = Generator(
    engine="llamacpp:m.gguf",
    model="m",
    round=2,
    temperature=0.7,
    top_p=0.95,
    max_tokens=4096,
    seed=11,
    role="explore",
)

FULL = Trajectory(
    problem_id="math/1",
    text="<|begin_of_thought|>\n6*7\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\\boxed{42}\n"
    "<|end_of_solution|>",
    thought="6*7",
    solution="\\boxed{42}",
    extracted="42",
    verdict=Verdict(True, "42", "correct"),
    tokens=31,
    mean_logprob=-0.25,
    perplexity=1.2840254166877414,
    finish_reason="stop",
    generator=GEN,
    parent="t-parent",
    critic_scores={"planning": 0.8, "exploration": 0.5, "clarity": 1.0},
    critique="add a check",
)
BARE = Trajectory(problem_id="gpqa/1", text="no answer here")


def test_keys_are_pinned_and_depend_on_every_setting():
    # Stored in every pool: a change here makes re-runs write every row again.
    assert (
        trajectory_key("math500/1", stage="explore-r1", generator=GEN, sample_index=3)
        == "t-27c5667d8a4ee99dbb1695de63655672"
    )
    assert (
        trajectory_key("math500/1", stage="explore-r1", generator=None)
        == "t-9d14804c9ec9d2780bf01ef5edf36f8a"
    )
    assert settings_key("explore-r1", GEN) == "s-33137cd9ba0ec25d90a79ea04e43e297"

    base = trajectory_key("p", stage="s", generator=GEN, sample_index=0)
    variants = [
        trajectory_key("q", stage="s", generator=GEN),
        trajectory_key("p", stage="t", generator=GEN),
        trajectory_key("p", stage="s", generator=GEN, sample_index=1),
        trajectory_key("p", stage="s", generator=GEN, parent="t-x"),
        trajectory_key("p", stage="s", generator=None),
    ]
    for name, value in [
        ("engine", "hf:m"),
        ("model", "m2"),
        ("round", 3),
        ("temperature", 0.8),
        ("top_p", 1.0),
        ("max_tokens", 100),
        ("seed", 12),
        ("role", "sample"),
    ]:
        g = dataclasses.replace(GEN, **{name: value})
        variants.append(trajectory_key("p", stage="s", generator=g))
    assert len({base, *variants}) == len(variants) + 1
    # 1 and 1.0 are one temperature.
    g1 = dataclasses.replace(GEN, temperature=1)
    g2 = dataclasses.replace(GEN, temperature=1.0)
    assert trajectory_key("p", stage="s", generator=g1) == trajectory_key(
        "p", stage="s", generator=g2
    )


def test_new_store_is_wal_with_meta(tmp_path):
    path = tmp_path / "sub" / "pool.sqlite"
    with open_store(path) as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert store.conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
        assert store.conn.execute("PRAGMA busy_timeout").fetchone() == (60000,)
        meta = store.meta()
        assert meta["application"] == "reasonloop"
        assert meta["schema_version"] == str(SCHEMA_VERSION) == "3"
        assert len(store) == 0
        assert store.stats() == StoreStats(problems=0, trajectories=0, stages=())


def test_problems_round_trip_in_order_and_are_not_doubled(tmp_path, caplog):
    path = tmp_path / "pool.sqlite"
    with Store(path) as store:
        assert store.add_problems(PROBLEMS) == 3
        assert store.add_problems(PROBLEMS) == 0
        changed = dataclasses.replace(PROBLEMS[0], answer="43")
        assert store.add_problems([changed]) == 0
        assert "1 problem(s) already stored with different content" in caplog.text
    with Store(path) as store:
        assert list(store.problems()) == PROBLEMS
        assert store.get_problem("gpqa/1") == PROBLEMS[1]
        assert store.get_problem("nope") is None
        assert store.n_problems() == 3


def test_trajectories_round_trip_every_field(tmp_path):
    path = tmp_path / "pool.sqlite"
    with Store(path) as store:
        added = store.add_trajectories(
            [FULL, BARE], stage="explore-r2", sample_indices=[4, 0], meta={"run": "runs/a"}
        )
    full_id = trajectory_key(
        "math/1", stage="explore-r2", generator=GEN, sample_index=4, parent="t-parent"
    )
    bare_id = trajectory_key("gpqa/1", stage="explore-r2", generator=None, sample_index=0)
    assert added.ids == (full_id, bare_id) and added.inserted == 2

    with Store(path, readonly=True) as store:
        got = list(store.trajectories())
        assert got == [
            dataclasses.replace(FULL, id=full_id),
            dataclasses.replace(BARE, id=bare_id),
        ]
        assert store.get(full_id) == got[0]
        assert store.get("t-missing") is None
        stored = store.get_stored(full_id)
        assert isinstance(stored, StoredTrajectory)
        assert (stored.stage, stored.sample_index, stored.meta) == (
            "explore-r2",
            4,
            {"run": "runs/a"},
        )
        assert stored.created_at.endswith("+00:00")
        assert full_id in store and "t-missing" not in store


def test_given_ids_are_kept(tmp_path):
    with Store(tmp_path / "pool.sqlite") as store:
        t = dataclasses.replace(FULL, id="rel-abc")
        assert store.add_trajectories([t], stage="rel").ids == ("rel-abc",)
        assert store.get("rel-abc") == t


def test_nan_is_stored_as_none(tmp_path):
    with Store(tmp_path / "pool.sqlite") as store:
        t = dataclasses.replace(BARE, mean_logprob=float("nan"), perplexity=math.inf)
        (tid,) = store.add_trajectories([t], stage="s").ids
        got = store.get(tid)
        assert got is not None and got.mean_logprob is None and got.perplexity == math.inf


def test_re_adding_never_doubles_rows(tmp_path):
    path = tmp_path / "pool.sqlite"
    batch = [dataclasses.replace(FULL, text=f"sample {i}") for i in range(5)]
    with Store(path) as store:
        first = store.add_trajectories(batch, stage="explore", sample_indices=range(5))
        assert first.inserted == 5
        # A re-run samples different texts for the same keys: the first ones are kept.
        rerun = [dataclasses.replace(FULL, text=f"other {i}") for i in range(7)]
        again = store.add_trajectories(rerun, stage="explore", sample_indices=range(7))
        assert again.inserted == 2 and again.ids[:5] == first.ids
        assert len(store) == 7
        assert [t.text for t in store.trajectories()] == [
            "sample 0",
            "sample 1",
            "sample 2",
            "sample 3",
            "sample 4",
            "other 5",
            "other 6",
        ]
        # Another stage is another key.
        assert store.add_trajectories(batch[:1], stage="distill").inserted == 1
        assert len(store) == 8
        # The identical trajectory twice in one batch is stored once.
        assert store.add_trajectories([BARE, BARE], stage="x").inserted == 1


def test_batch_collision_and_bad_records_write_nothing(tmp_path):
    with Store(tmp_path / "pool.sqlite") as store:
        two = [FULL, dataclasses.replace(FULL, text="another")]
        with pytest.raises(DataError, match=r"trajectory 1 of the batch has the same id t-\w+"):
            store.add_trajectories(two, stage="explore")
        bad = dataclasses.replace(BARE, tokens="many")  # type: ignore[arg-type]
        with pytest.raises(DataError, match=r"trajectory 1: field 'tokens': expected an integer"):
            store.add_trajectories([FULL, bad], stage="explore")
        for bad, message in [
            (dataclasses.replace(BARE, problem_id=""), "'problem_id': expected a non-empty"),
            (dataclasses.replace(BARE, verdict=Verdict(1, "x", "correct")), "'verdict.correct'"),
            (
                dataclasses.replace(BARE, generator=dataclasses.replace(GEN, seed=1.5)),
                "'generator.seed'",
            ),
            (dataclasses.replace(BARE, critic_scores={"a": "high"}), "'critic_scores'"),
            (
                dataclasses.replace(BARE, perplexity="low"),
                "'perplexity': expected a number or null",
            ),
        ]:
            with pytest.raises(DataError, match=f"trajectory 0: field {message}"):
                store.add_trajectories([bad], stage="explore")  # type: ignore[list-item]
        with pytest.raises(DataError, match="trajectory 0: expected a Trajectory, got dict"):
            store.add_trajectories([{"text": "x"}], stage="explore")  # type: ignore[list-item]
        with pytest.raises(DataError, match="2 sample_indices for 1 trajectories"):
            store.add_trajectories([FULL], stage="explore", sample_indices=[0, 1])
        with pytest.raises(DataError, match="sample index must be an integer >= 0, got -1"):
            store.add_trajectories([FULL], stage="explore", sample_indices=[-1])
        with pytest.raises(DataError, match="stage must be a non-empty string"):
            store.add_trajectories([FULL], stage="")
        assert len(store) == 0


def test_queries_filter_count_stats_and_existing_keys(tmp_path):
    other = dataclasses.replace(GEN, round=3, role="sample")
    rows = [
        (dataclasses.replace(FULL, parent=None), "explore", 0),
        (
            dataclasses.replace(FULL, parent=None, verdict=Verdict(False, "41", "wrong")),
            "explore",
            1,
        ),
        (
            dataclasses.replace(FULL, parent=None, problem_id="gpqa/1", generator=other),
            "explore",
            0,
        ),
        (BARE, "distill", 0),
    ]
    with Store(tmp_path / "pool.sqlite") as store:
        store.add_problems(PROBLEMS)
        for t, stage, idx in rows:
            store.add_trajectories([t], stage=stage, sample_indices=[idx])
        assert len(store) == 4
        assert store.count(stage="explore") == 3
        assert store.count(stage="explore", correct=True) == 2
        assert store.count(correct=False) == 1
        assert store.count(problem_id="gpqa/1") == 2
        assert store.count(role="explore") == 2
        assert store.count(round=3) == 1
        assert [t.problem_id for t in store.trajectories(correct=True)] == ["math/1", "gpqa/1"]
        assert [t.verdict for t in store.trajectories(stage="distill")] == [None]

        assert store.existing_keys("explore", GEN) == {("math/1", 0), ("math/1", 1)}
        assert store.existing_keys("explore", other) == {("gpqa/1", 0)}
        assert store.existing_keys("explore", GEN, problem_ids=["gpqa/1"]) == set()
        assert store.existing_keys("distill", None) == {("gpqa/1", 0)}
        assert store.existing_keys("distill", GEN) == set()
        ids = [t.id for t in store.trajectories()]
        assert store.existing_ids([ids[0], "t-nope", ids[3]]) == {ids[0], ids[3]}

        assert store.stats() == StoreStats(
            problems=3,
            trajectories=4,
            stages=(
                StageStats(
                    "distill", trajectories=1, problems=1, correct=0, incorrect=0, ungraded=1
                ),
                StageStats(
                    "explore", trajectories=3, problems=2, correct=2, incorrect=1, ungraded=0
                ),
            ),
        )


def test_scores_are_annotations_beside_the_rows(tmp_path):
    with Store(tmp_path / "pool.sqlite") as store:
        a, b = store.add_trajectories([FULL, BARE], stage="s").ids
        assert store.set_scores("ppl:r1", {a: 3.5, b: 9.0}) == 2
        store.set_score(a, "ppl:r1", 4.0)  # recomputed: replaced
        store.set_score(a, "reward", None)
        assert store.scores("ppl:r1") == {a: 4.0, b: 9.0}
        assert store.scores_of(a) == {"ppl:r1": 4.0, "reward": None}
        assert store.all_scores() == {a: {"ppl:r1": 4.0, "reward": None}, b: {"ppl:r1": 9.0}}
        with pytest.raises(
            DataError, match=r"score 'ppl:r1' for 1 trajectory id\(s\) not in the store: t-x"
        ):
            store.set_scores("ppl:r1", {a: 1.0, "t-x": 2.0})
        with pytest.raises(DataError, match="expected a number, got 'high'"):
            store.set_score(a, "ppl:r1", "high")  # type: ignore[arg-type]
        assert store.scores("ppl:r1") == {a: 4.0, b: 9.0}
        assert store.get(a) == dataclasses.replace(FULL, id=a)  # the row itself is untouched


def test_progress_marks_commit_with_the_batch(tmp_path):
    path = tmp_path / "pool.sqlite"
    with Store(path) as store:
        store.add_trajectories([FULL], stage="explore", done={"math/1": {"solved_at": 0}})
        store.mark_done("explore", ["gpqa/1"])
        store.mark_done("explore", {"gpqa/1": {"solved_at": None, "tried": 20}})
        store.mark_done("distill", ["math/1"])
    with Store(path, readonly=True) as store:
        assert store.done("explore") == {
            "gpqa/1": {"solved_at": None, "tried": 20},
            "math/1": {"solved_at": 0},
        }
        assert store.done("distill") == {"math/1": None}
        assert store.done("nothing") == {}


def test_not_a_store_errors_name_the_path_and_leave_the_file_alone(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a database\n")
    with pytest.raises(DataError) as exc:
        Store(text)
    assert str(exc.value) == f"{text} is not a reasonloop store (not an SQLite database)"
    assert text.read_text() == "hello, not a database\n"

    foreign = tmp_path / "app.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.execute("CREATE TABLE orders (id INTEGER)")
    conn.commit()
    conn.close()
    before = foreign.read_bytes()
    with pytest.raises(DataError) as exc:
        Store(foreign)
    assert str(exc.value) == (
        f"{foreign} is not a reasonloop store (an SQLite database without a reasonloop meta "
        "table; its tables: orders, users)"
    )
    assert foreign.read_bytes() == before  # not switched to WAL, no schema added

    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('application', 'someapp')")
    conn.commit()
    conn.close()
    with pytest.raises(DataError) as exc:
        Store(other)
    assert str(exc.value) == (
        f"{other} is not a reasonloop store (its meta table says application = 'someapp')"
    )

    with pytest.raises(DataError) as exc:
        Store(tmp_path)
    assert str(exc.value) == f"{tmp_path} is not a reasonloop store (it is a directory)"


def test_newer_schema_names_both_versions_and_the_fix(tmp_path):
    path = tmp_path / "pool.sqlite"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(DataError) as exc:
        Store(path)
    assert str(exc.value) == (
        f"{path} has store schema version 7, newer than version 3 that this reasonloop reads; "
        "upgrade reasonloop (pip install -U reasonloop) to open it"
    )


def test_missing_file_without_create_and_read_only_writes(tmp_path):
    missing = tmp_path / "missing.sqlite"
    with pytest.raises(DataError) as exc:
        Store(missing, create=False)
    assert str(exc.value) == (
        f"{missing}: no reasonloop store there (open it with create=True to make one)"
    )
    with pytest.raises(DataError, match="no reasonloop store there$"):
        Store(missing, readonly=True)
    assert not missing.exists()

    empty = tmp_path / "empty.sqlite"
    empty.touch()  # an empty file (e.g. from mkstemp) becomes a store
    with Store(empty) as store:
        assert store.meta()["application"] == "reasonloop"

    path = tmp_path / "pool.sqlite"
    Store(path).close()
    with Store(path, readonly=True) as store:
        with pytest.raises(DataError, match="opened read-only"):
            store.add_problems(PROBLEMS)
        with pytest.raises(DataError, match="opened read-only"):
            store.add_trajectories([FULL], stage="s")
    store.close()  # closing twice is fine
    with pytest.raises(DataError, match="the store is closed"):
        len(store)


# --- step labels (schema version 2) ---------------------------------------------------------------


def _labels(tid, pid="math/1", steps=("a", "b", "c"), counts=(4, 2, 0)):
    return [StepLabel(pid, tid, i, tuple(steps[: i + 1]), 4, c) for i, c in enumerate(counts)]


def test_step_labels_round_trip_per_labeller_and_are_not_doubled(tmp_path):
    with open_store(tmp_path / "pool.sqlite") as store:
        store.add_problems(PROBLEMS)
        (tid,) = store.add_trajectories([FULL], stage="s").ids
        assert store.add_step_labels(_labels(tid), labeler="L1") == 3
        assert store.add_step_labels(_labels(tid), labeler="L1") == 0  # resumed: nothing new
        assert store.add_step_labels(_labels(tid, counts=(1, 1, 1)), labeler="L2") == 3
        assert store.labelled_steps("L1") == {(tid, 0), (tid, 1), (tid, 2)}
        assert store.labelled_steps("nobody") == set()
        assert store.step_labelers() == {"L1": 3, "L2": 3}
        got = list(store.step_labels(labeler="L1"))
        assert got == [("L1", _labels(tid))]
        assert [lab.soft for lab in got[0][1]] == [1.0, 0.5, 0.0]
        assert [lab.hard for lab in got[0][1]] == [True, True, False]
        assert [k for k, _ in store.step_labels()] == ["L1", "L2"]
        assert list(store.step_labels(problem_id="gpqa/1")) == []
        # a gap: labels after it cannot have their prefix rebuilt and are left out
        (tid2,) = store.add_trajectories([BARE], stage="s").ids
        gappy = _labels(tid2, pid="gpqa/1")
        store.add_step_labels([gappy[0], gappy[2]], labeler="L1")
        assert list(store.step_labels(trajectory_id=tid2)) == [("L1", gappy[:1])]


def test_bad_step_labels_write_nothing(tmp_path):
    with open_store(tmp_path / "pool.sqlite") as store:
        (tid,) = store.add_trajectories([FULL], stage="s").ids
        good = _labels(tid)
        with pytest.raises(DataError, match="field 'steps'"):
            store.add_step_labels(
                [good[0], dataclasses.replace(good[1], steps=("b",))], labeler="L"
            )
        with pytest.raises(DataError, match="0 <= n_correct <= n"):
            store.add_step_labels([dataclasses.replace(good[0], n_correct=5)], labeler="L")
        with pytest.raises(DataError, match="not in the store: t-missing"):
            store.add_step_labels(
                [dataclasses.replace(good[0], trajectory_id="t-missing")], labeler="L"
            )
        with pytest.raises(DataError, match="labeler must be a non-empty string"):
            store.add_step_labels(good, labeler="")
        assert store.step_labelers() == {}


def _make_v1(path):
    """A store as reasonloop with schema version 1 wrote it: no step_labels table."""
    with Store(path) as store:
        store.add_problems(PROBLEMS)
        store.add_trajectories([FULL], stage="s")
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE step_labels")
    conn.execute("ALTER TABLE trajectories DROP COLUMN boundary")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()


def test_a_version_1_store_reads_read_only_and_migrates_when_opened_for_writing(tmp_path):
    path = tmp_path / "old.sqlite"
    _make_v1(path)
    with Store(path, readonly=True) as store:  # read-only: left as it is, no labels
        assert store.meta()["schema_version"] == "1"
        assert len(store) == 1
        assert list(store.step_labels()) == [] and store.labelled_steps("L") == set()
        assert store.step_labelers() == {}
    with Store(path) as store:  # writable: migrated in place, rows kept
        assert store.meta()["schema_version"] == "3"
        assert len(store) == 1 and store.n_problems() == 3
        (tid,) = [t.id for t in store.trajectories()]
        assert store.add_step_labels(_labels(tid), labeler="L") == 3
    with Store(path, readonly=True) as store:
        assert store.step_labelers() == {"L": 3}


def _corrupt_store(path):
    """A real store of 300 rows, checkpointed into the main file, with three pages in the
    middle overwritten (the header and the schema page are intact)."""
    with open_store(path) as st:
        st.add_problems([Problem(f"p{i}", "math", "q" * 200, "1") for i in range(300)])
        st.add_trajectories([Trajectory(f"p{i}", "text " * 100) for i in range(300)], stage="x")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    assert size > 64 * 4096
    with path.open("r+b") as fh:
        fh.seek((size // 2) // 4096 * 4096)
        fh.write(b"\xff" * 3 * 4096)
    return path.read_bytes()


@pytest.mark.parametrize("readonly", [False, True])
def test_a_corrupted_store_is_refused_on_open_naming_the_file(tmp_path, readonly):
    path = tmp_path / "pool.db"
    before = _corrupt_store(path)
    with pytest.raises(DataError) as exc:
        open_store(path, readonly=readonly)
    message = str(exc.value)
    assert message.startswith(f"{path} is corrupted (SQLite quick_check: ")
    assert message.endswith(
        "); restore it from a backup, or save what is readable into a new store with "
        f"`sqlite3 {path} .recover | sqlite3 NEW.db`"
    )
    assert path.read_bytes() == before  # nothing written to it


def test_the_cli_reports_a_corrupted_store_in_one_line(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "pool.db"
    before = _corrupt_store(path)
    r = subprocess.run(
        [sys.executable, "-c", "from reasonloop.cli import main; main()", "stats", "--store", path],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    (line,) = r.stderr.splitlines()
    assert line.startswith(f"error: {path} is corrupted (SQLite quick_check: ")
    assert path.read_bytes() == before


def test_a_sound_store_is_checked_once_per_version_of_the_file(tmp_path, monkeypatch):
    from reasonloop.store import db

    class Checked(set):
        adds = 0

        def add(self, item):
            Checked.adds += 1
            super().add(item)

    path = tmp_path / "pool.db"
    with open_store(path) as st:
        st.add_problems(PROBLEMS[:1])
    monkeypatch.setattr(db, "_CHECKED", Checked())
    for _ in range(3):
        with open_store(path, readonly=True) as st:
            assert len(list(st.problems())) == 1
    assert Checked.adds == 1  # three opens of the unchanged file, one full check
    with open_store(path) as st:
        st.add_problems(PROBLEMS[1:2])
    with sqlite3.connect(path) as conn:  # the rows reach the main file: a new version of it
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open_store(path, readonly=True) as st:
        assert len(list(st.problems())) == 2
    assert Checked.adds == 2


# --- the verdict's boundary (schema version 3) ------------------------------------------------------

# The trajectories table exactly as reasonloop with schema version 2 created it (no boundary).
_V2_TRAJECTORIES = """
CREATE TABLE trajectories (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, problem_id TEXT NOT NULL,
    stage TEXT NOT NULL, sample_index INTEGER NOT NULL, settings TEXT NOT NULL, text TEXT NOT NULL,
    thought TEXT, solution TEXT, extracted TEXT, correct INTEGER, reason TEXT,
    verdict_extracted TEXT, tokens INTEGER NOT NULL, mean_logprob REAL, perplexity REAL,
    finish_reason TEXT, engine TEXT, model TEXT, round INTEGER, temperature REAL, top_p REAL,
    max_tokens INTEGER, seed INTEGER, role TEXT, parent TEXT, critic_scores TEXT, critique TEXT,
    meta TEXT, created_at TEXT NOT NULL
)"""

CODE = Problem("code/1", "code", "def f(): ...", "", tests="assert f() == 1", entry_point="f")


def _make_v2(path):
    """A version-2 store holding one graded math row, its trajectories table built from the
    version-2 DDL above (not from today's schema with a column dropped)."""
    with Store(path) as store:
        store.add_problems([*PROBLEMS, CODE])
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE trajectories")
    conn.execute(_V2_TRAJECTORIES)
    conn.execute(
        "INSERT INTO trajectories (id, problem_id, stage, sample_index, settings, text, correct, "
        "reason, verdict_extracted, tokens, created_at) VALUES "
        "('old', 'math/1', 's', 0, 'k', '\\boxed{42}', 1, 'correct', '42', 3, '2026-01-01')"
    )
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()


def _columns(path):
    with sqlite3.connect(path) as conn:
        return [row[1] for row in conn.execute("PRAGMA table_info(trajectories)")]


def test_a_version_2_store_gains_the_boundary_column_and_keeps_its_rows(tmp_path):
    path = tmp_path / "v2.sqlite"
    _make_v2(path)
    with Store(path, readonly=True) as store:  # read-only: unchanged, boundary reads as None
        assert store.meta()["schema_version"] == "2"
        (old,) = store.trajectories()
        assert old.verdict == Verdict(True, "42", "correct", boundary=None)
    assert "boundary" not in _columns(path)
    graded = [
        Trajectory("code/1", "x", verdict=Verdict(True, "def f", "correct", boundary="bwrap")),
        Trajectory("code/1", "y", verdict=Verdict(False, "def f", "wrong", boundary="none")),
        Trajectory("math/1", "z", verdict=Verdict(False, "41", "wrong")),
    ]
    with Store(path) as store:  # writable: migrated in place
        assert store.meta()["schema_version"] == "3"
        assert store.add_trajectories(graded, stage="t", sample_indices=[0, 1, 2]).inserted == 3
    assert _columns(path)[-1] == "boundary"  # added by the migration, at the end
    with Store(path, readonly=True) as store:
        got = {t.text: t.verdict for t in store.trajectories()}
        assert got == {
            "\\boxed{42}": Verdict(True, "42", "correct", boundary=None),
            "x": Verdict(True, "def f", "correct", boundary="bwrap"),
            "y": Verdict(False, "def f", "wrong", boundary="none"),
            "z": Verdict(False, "41", "wrong", boundary=None),
        }
        exported = {row["text"]: row["boundary"] for row in trajectory_rows(store)}
        assert exported == {"\\boxed{42}": None, "x": "bwrap", "y": "none", "z": None}
    with Store(path) as store:  # migrating is done once
        assert store.meta()["schema_version"] == "3"


def test_a_new_store_declares_the_boundary_where_the_columns_say():
    assert STORED_COLUMNS.index("boundary") == STORED_COLUMNS.index("verdict_extracted") + 1
    assert tuple(c.name for c in TRAJECTORY_COLUMNS if c.exported) == EXPORTED_COLUMNS
    assert "settings" not in EXPORTED_COLUMNS and "scores" not in STORED_COLUMNS


def test_a_boundary_that_is_not_a_string_is_refused_before_writing(tmp_path):
    bad = Trajectory("math/1", "x", verdict=Verdict(True, "1", "correct", boundary=1))  # type: ignore[arg-type]
    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(DataError, match="verdict.boundary"):
            store.add_trajectories([bad], stage="t")
        assert len(store) == 0
