"""Exports of the store: JSONL, parquet and HF datasets, in TRL's conversational shapes."""

from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest

from reasonloop.errors import ConfigError, DataError
from reasonloop.problems.prompt import prompt_for
from reasonloop.records import Generator, PreferencePair, Problem, Trajectory, Verdict
from reasonloop.store import (
    Store,
    export_jsonl,
    export_parquet,
    preference_rows,
    rows,
    to_hf_dataset,
)

MATH = Problem("math/1", "math", "What is 6*7?", "42")
CHOICE = Problem("gpqa/1", "science", "Which is a noble gas?", "B", choices=("Oxygen", "Neon"))
GEN = Generator("llamacpp:m.gguf", "m", round=1, temperature=0.7, top_p=0.9, max_tokens=64, seed=5)

T_RIGHT = Trajectory(
    problem_id="math/1",
    text="<|begin_of_thought|>\nx\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\\boxed{42}\n"
    "<|end_of_solution|>",
    thought="x",
    solution="\\boxed{42}",
    extracted="42",
    verdict=Verdict(True, "42", "correct"),
    tokens=20,
    mean_logprob=-0.5,
    perplexity=1.6487212707001282,
    finish_reason="stop",
    generator=GEN,
    critic_scores={"planning": 0.9},
    critique="fine",
)
T_CHOICE = Trajectory("gpqa/1", "Neon is noble. Answer: B", verdict=Verdict(True, "B", "correct"))
T_WRONG = Trajectory("math/1", "It is 41.", verdict=Verdict(False, "41", "wrong"), tokens=4)
T_UNGRADED = Trajectory("math/1", "thinking...", finish_reason="length")

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "pool.sqlite") as s:
        s.add_problems([MATH, CHOICE])
        s.add_trajectories([T_RIGHT], stage="explore", sample_indices=[2], meta={"run": "r1"})
        s.add_trajectories(
            [T_CHOICE, T_WRONG, T_UNGRADED], stage="distill", sample_indices=[0, 1, 2]
        )
        s.set_score(ids(s)[0], "ppl:r1", 3.25)
        yield s


def ids(store: Store) -> list[str]:
    return [t.id for t in store.trajectories()]  # type: ignore[misc]


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def expected_trajectory_rows(store: Store) -> list[dict]:
    a, b, c, d = ids(store)
    common = {
        "thought": None,
        "solution": None,
        "extracted": None,
        "boundary": None,
        "tokens": 0,
        "mean_logprob": None,
        "perplexity": None,
        "finish_reason": None,
        "engine": None,
        "model": None,
        "round": None,
        "temperature": None,
        "top_p": None,
        "max_tokens": None,
        "seed": None,
        "role": None,
        "parent": None,
        "critic_scores": None,
        "critique": None,
        "scores": {},
        "meta": None,
        "stage": "distill",
    }
    return [
        {
            "id": a,
            "problem_id": "math/1",
            "stage": "explore",
            "sample_index": 2,
            "text": T_RIGHT.text,
            "thought": "x",
            "solution": "\\boxed{42}",
            "extracted": "42",
            "correct": True,
            "reason": "correct",
            "verdict_extracted": "42",
            "boundary": None,
            "tokens": 20,
            "mean_logprob": -0.5,
            "perplexity": 1.6487212707001282,
            "finish_reason": "stop",
            "engine": "llamacpp:m.gguf",
            "model": "m",
            "round": 1,
            "temperature": 0.7,
            "top_p": 0.9,
            "max_tokens": 64,
            "seed": 5,
            "role": "sample",
            "parent": None,
            "critic_scores": {"planning": 0.9},
            "critique": "fine",
            "scores": {"ppl:r1": 3.25},
            "meta": {"run": "r1"},
        },
        common
        | {
            "id": b,
            "problem_id": "gpqa/1",
            "sample_index": 0,
            "text": "Neon is noble. Answer: B",
            "correct": True,
            "reason": "correct",
            "verdict_extracted": "B",
        },
        common
        | {
            "id": c,
            "problem_id": "math/1",
            "sample_index": 1,
            "text": "It is 41.",
            "correct": False,
            "reason": "wrong",
            "verdict_extracted": "41",
            "tokens": 4,
        },
        common
        | {
            "id": d,
            "problem_id": "math/1",
            "sample_index": 2,
            "text": "thinking...",
            "correct": None,
            "reason": None,
            "verdict_extracted": None,
            "finish_reason": "length",
        },
    ]


def without_time(rows: list[dict]) -> list[dict]:
    for row in rows:
        assert ISO.match(row.pop("created_at"))
    return rows


def test_trajectories_jsonl_has_every_field(store, tmp_path):
    out = tmp_path / "dump.jsonl"
    assert export_jsonl(store, out) == 4
    got = without_time(read_jsonl(out))
    assert got == expected_trajectory_rows(store)
    assert list(got[0]) == [k for k in expected_trajectory_rows(store)[0]]  # column order
    assert export_jsonl(store, out, stage="distill", correct=False) == 1
    assert [r["text"] for r in read_jsonl(out)] == ["It is 41."]


def test_trajectories_parquet_has_every_field_with_json_object_columns(store, tmp_path):
    out = tmp_path / "dump.parquet"
    assert export_parquet(store, out, row_group_size=3) == 4
    table = pq.read_table(out)
    assert pq.ParquetFile(out).num_row_groups == 2
    expected = expected_trajectory_rows(store)
    for row in expected:
        for name in ("critic_scores", "scores", "meta"):
            if row[name] is not None:
                row[name] = json.dumps(row[name])
    assert without_time(table.to_pylist()) == expected
    assert str(table.schema.field("correct").type) == "bool"
    assert str(table.schema.field("seed").type) == "int64"


def test_sft_rows_are_trl_conversational_and_correct_only(store, tmp_path):
    out = tmp_path / "sft.jsonl"
    assert export_jsonl(store, out, kind="sft") == 2
    expected = [
        {
            "messages": [
                {"role": "user", "content": "What is 6*7?"},
                {"role": "assistant", "content": T_RIGHT.text},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": prompt_for(CHOICE)},
                {"role": "assistant", "content": "Neon is noble. Answer: B"},
            ]
        },
    ]
    assert read_jsonl(out) == expected
    assert "A) Oxygen\nB) Neon" in prompt_for(CHOICE)  # the options reach the student

    pq_out = tmp_path / "sft.parquet"
    assert export_parquet(store, pq_out, kind="sft") == 2
    assert pq.read_table(pq_out).to_pylist() == expected

    n = export_jsonl(
        store,
        out,
        kind="sft",
        stage="distill",
        correct=None,
        system="Think first.",
        prompt=lambda p: f"Q: {p.problem}",
    )
    assert n == 3
    assert [r["messages"] for r in read_jsonl(out)] == [
        [
            {"role": "system", "content": "Think first."},
            {"role": "user", "content": question},
            {"role": "assistant", "content": text},
        ]
        for question, text in [
            ("Q: Which is a noble gas?", "Neon is noble. Answer: B"),
            ("Q: What is 6*7?", "It is 41."),
            ("Q: What is 6*7?", "thinking..."),
        ]
    ]


PAIRS = [
    PreferencePair("math/1", "What is 6*7?", "... \\boxed{42}", "... \\boxed{41}", "t-a", "t-b"),
    PreferencePair("gpqa/1", "Which is a noble gas?", "Answer: B", "Answer: A"),
]


def test_preference_rows_are_trl_conversational(tmp_path):
    out = tmp_path / "pref.jsonl"
    assert export_jsonl(None, out, kind="preference", pairs=PAIRS) == 2
    expected = [
        {
            "prompt": [{"role": "user", "content": "What is 6*7?"}],
            "chosen": [{"role": "assistant", "content": "... \\boxed{42}"}],
            "rejected": [{"role": "assistant", "content": "... \\boxed{41}"}],
        },
        {
            "prompt": [{"role": "user", "content": "Which is a noble gas?"}],
            "chosen": [{"role": "assistant", "content": "Answer: B"}],
            "rejected": [{"role": "assistant", "content": "Answer: A"}],
        },
    ]
    assert read_jsonl(out) == expected
    pq_out = tmp_path / "pref.parquet"
    assert export_parquet(None, pq_out, kind="preference", pairs=PAIRS) == 2
    assert pq.read_table(pq_out).to_pylist() == expected
    with_system = list(preference_rows(PAIRS[:1], system="Be careful."))
    assert with_system[0]["prompt"] == [
        {"role": "system", "content": "Be careful."},
        {"role": "user", "content": "What is 6*7?"},
    ]


def test_bad_arguments_are_config_errors(store, tmp_path):
    with pytest.raises(ConfigError, match="unknown export kind 'dpo'; valid kinds: trajectories"):
        export_jsonl(store, tmp_path / "x.jsonl", kind="dpo")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs pairs="):
        export_jsonl(store, tmp_path / "x.jsonl", kind="preference")
    with pytest.raises(ConfigError, match="pairs= is only used by export kind 'preference'"):
        export_jsonl(store, tmp_path / "x.jsonl", kind="sft", pairs=PAIRS)
    with pytest.raises(DataError, match="pair 0: expected a PreferencePair"):
        export_jsonl(None, tmp_path / "x.jsonl", kind="preference", pairs=[{"prompt": "x"}])
    assert not (tmp_path / "x.jsonl").exists()


def test_a_failed_export_leaves_the_old_file_and_no_temp_file(store, tmp_path):
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    out = out_dir / "sft.jsonl"
    out.write_text("old\n")
    # A trajectory whose problem was never added: found only half-way through the rows.
    store.add_trajectories(
        [Trajectory("lost/1", "x", verdict=Verdict(True, "1", "correct"))], stage="z"
    )
    with pytest.raises(DataError, match=r"problem 'lost/1', which is not in the store"):
        export_jsonl(store, out, kind="sft")
    with pytest.raises(DataError, match=r"problem 'lost/1'"):
        export_parquet(store, out_dir / "sft.parquet", kind="sft")
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in out_dir.iterdir()) == ["sft.jsonl"]


def test_hf_dataset_has_the_same_rows(store):
    pytest.importorskip("datasets", reason="datasets (the train extra) is not installed")
    sft = to_hf_dataset(store, kind="sft")
    assert sft.column_names == ["messages"]
    assert sft.to_list() == list(rows(store, "sft"))
    pref = to_hf_dataset(None, kind="preference", pairs=PAIRS)
    assert pref.column_names == ["prompt", "chosen", "rejected"]
    assert pref.to_list() == list(preference_rows(PAIRS))
    dump = to_hf_dataset(store, stage="explore")
    assert dump.num_rows == 1 and dump[0]["scores"] == '{"ppl:r1": 3.25}'
    empty = to_hf_dataset(store, kind="sft", stage="no-such-stage")
    assert empty.num_rows == 0 and empty.column_names == ["messages"]


def test_stepwise_rows_are_trl_stepwise_supervision(store, tmp_path):
    from reasonloop.records import StepLabel

    right, _, wrong, _ = ids(store)
    steps = ("x", "\\boxed{42}")
    store.add_step_labels(
        [
            StepLabel("math/1", right, 0, steps[:1], 4, 1),
            StepLabel("math/1", right, 1, steps, 1, 1),
        ],
        labeler="L",
    )
    store.add_step_labels([StepLabel("math/1", wrong, 0, ("It is 41.",), 4, 0)], labeler="L")
    out = tmp_path / "stepwise.jsonl"
    assert export_jsonl(store, out, kind="stepwise") == 2
    got = [json.loads(x) for x in out.read_text().splitlines()]
    assert got == [
        {"prompt": prompt_for(MATH), "completions": ["x", "\\boxed{42}"], "labels": [True, True]},
        {"prompt": prompt_for(MATH), "completions": ["It is 41."], "labels": [False]},
    ]
    soft = list(rows(store, "stepwise", soft=True, stage="explore"))
    assert soft == [
        {"prompt": prompt_for(MATH), "completions": ["x", "\\boxed{42}"], "labels": [0.25, 1.0]}
    ]
    assert list(rows(store, "stepwise", labeler="other")) == []
    pq_path = tmp_path / "stepwise.parquet"
    assert export_parquet(store, pq_path, kind="stepwise", soft=True) == 2
    assert pq.read_table(pq_path).to_pylist()[0]["labels"] == [0.25, 1.0]
