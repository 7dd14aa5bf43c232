from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from reasonloop.errors import ConfigError, DataError
from reasonloop.problems import (
    BENCHMARKS,
    benchmark,
    check_problem_spec,
    load_benchmark,
    registry,
    resolve_problems,
)
from reasonloop.problems.registry import MATH_SUBJECTS, last_boxed
from reasonloop.records import Problem

COUNTS = {
    "math500": 500,
    "aime24": 30,
    "aime25": 30,
    "amc23": 40,
    "gsm8k": 1319,
    "gpqa": 198,
    "humaneval": 164,
    "math-train": 11998,
}

# name: (first id, first answer, last id, last answer, domain, source)
ENDS = {
    "math500": ("test/precalculus/807.json", r"\left( 3, \frac{\pi}{2} \right)",
                "test/geometry/615.json", r"106^\circ", "math", "MATH-500"),
    "aime24": ("aime2024-I-01", "204", "aime2024-II-15", "315", "math", "AIME-2024"),
    "aime25": ("aime2025-I-01", "70", "aime2025-II-15", "240", "math", "AIME-2025"),
    "amc23": ("amc2023-12A-01", "27", "amc2023-12B-24", "3", "math", "AMC-2023"),
    "gsm8k": ("gsm8k-test-0000", "18", "gsm8k-test-1318", "14", "math", "GSM8K"),
    "humaneval": ("HumanEval/0", "    for idx, elem in enumerate(numbers):\n",
                  "HumanEval/163", "    lower = max(2, min(a, b))\n", "code", "HumanEval"),
    "math-train": ("test/algebra/1.json", "2", "train/precalculus/8017.json", "92", "math",
                   "MATH-train-prm800k-12k"),
}  # fmt: skip


def test_benchmark_names() -> None:
    assert tuple(COUNTS) == BENCHMARKS
    assert {name: benchmark(name).rows for name in BENCHMARKS} == COUNTS


@pytest.mark.parametrize("name", [n for n in BENCHMARKS if n != "gpqa"])
def test_row_counts_and_ends(real_data: Path, name: str) -> None:
    problems = load_benchmark(name, data_dir=real_data)
    first_id, first_answer, last_id, last_answer, domain, source = ENDS[name]
    assert len(problems) == COUNTS[name]
    assert len({p.id for p in problems}) == COUNTS[name]
    assert problems[0].id == first_id
    assert problems[0].answer.startswith(first_answer)
    assert problems[-1].id == last_id
    assert problems[-1].answer.startswith(last_answer)
    assert {p.domain for p in problems} == {domain}
    assert {p.source for p in problems} == {source}
    if name == "humaneval":
        assert problems[0].entry_point == "has_close_elements"
        assert all(p.tests and "def check(candidate):" in p.tests for p in problems)
        assert all(p.solution == p.problem + p.answer for p in problems)


def test_real_math_train_is_disjoint_from_math500(real_data: Path) -> None:
    problems = load_benchmark("math-train", data_dir=real_data)
    subjects = [k for k, _ in itertools.groupby(p.id.split("/")[1] for p in problems)]
    assert subjects == list(MATH_SUBJECTS)
    assert sum(p.level is None for p in problems) == 2  # the two "Level ?" rows
    math500 = {p.problem for p in load_benchmark("math500", data_dir=real_data)}
    assert not math500 & {p.problem for p in problems}


# --- the same code paths on the miniature data dir (tests/benchdata.py) ---------------------


@pytest.mark.parametrize("name", [n for n in BENCHMARKS if n != "gpqa"])
def test_every_benchmark_loads_its_rows_as_written(
    bench_data: Path, bench_rows: dict[str, list[dict[str, Any]]], name: str
) -> None:
    assert load_benchmark(name, data_dir=bench_data) == [Problem(**r) for r in bench_rows[name]]


def test_humaneval_fields(bench_data: Path) -> None:
    first = load_benchmark("humaneval", data_dir=bench_data, limit=1)[0]
    assert (first.id, first.domain, first.entry_point) == ("HumanEval/0", "code", "count_below")
    assert first.tests is not None and first.tests.startswith("def check(candidate):")
    assert first.solution == first.problem + first.answer


def test_math_train_concatenates_subjects_in_fixed_order(bench_data: Path) -> None:
    problems = load_benchmark("math-train", data_dir=bench_data)
    subjects = [k for k, _ in itertools.groupby(p.id.split("/")[1] for p in problems)]
    assert subjects == list(MATH_SUBJECTS)
    assert [p.id for p in problems if p.level is None] == ["train/geometry/1.json"]
    math500 = {p.problem for p in load_benchmark("math500", data_dir=bench_data)}
    assert not math500 & {p.problem for p in problems}


def test_limit(bench_data: Path) -> None:
    assert [p.id for p in load_benchmark("aime25", data_dir=bench_data, limit=2)] == [
        "aime2025-I-01",
        "aime2025-I-02",
    ]
    assert load_benchmark("aime25", data_dir=bench_data, limit=0) == []
    # Five rows of math-train span its first four subject files.
    assert [p.id for p in load_benchmark("math-train", data_dir=bench_data, limit=5)] == [
        "train/algebra/1.json",
        "test/algebra/2.json",
        "train/counting_and_probability/1.json",
        "train/geometry/1.json",
        "train/intermediate_algebra/1.json",
    ]
    assert len(load_benchmark("gsm8k", data_dir=bench_data, limit=100)) == 10
    with pytest.raises(ConfigError, match="limit must be >= 0, got -1"):
        load_benchmark("aime25", data_dir=bench_data, limit=-1)


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load_benchmark("math501", data_dir="/nonexistent")
    message = str(info.value)
    assert message.startswith("unknown benchmark 'math501'; valid names: ")
    for name in BENCHMARKS:
        assert name in message


def test_aliases_and_case(bench_data: Path) -> None:
    assert load_benchmark("AIME2024", data_dir=bench_data) == load_benchmark(
        "aime24", data_dir=bench_data
    )
    assert load_benchmark(" Math-500 ", data_dir=bench_data, limit=1)[0].id == "test/algebra/1.json"
    assert benchmark("math_train").name == "math-train"


def test_env_var_is_honoured(bench_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REASONLOOP_DATA", str(bench_data))
    assert [p.id for p in load_benchmark("amc23", limit=2)] == ["amc2023-12A-01", "amc2023-12A-02"]


def test_argument_beats_env_var(
    bench_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REASONLOOP_DATA", str(tmp_path))
    assert len(load_benchmark("aime24", data_dir=bench_data)) == 3
    with pytest.raises(DataError) as info:
        load_benchmark("aime24")
    assert str(info.value) == (
        f"aime24: no aime2024/test.jsonl under data dir {tmp_path}; point --data-dir / "
        "REASONLOOP_DATA at a directory with that layout, or unset both to load from the HF hub"
    )


def test_data_dir_that_is_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data dir .*nope is not a directory; pass --data-dir"):
        load_benchmark("gsm8k", data_dir=tmp_path / "nope")


def test_local_bad_row_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_text(
        json.dumps({"id": "a", "problem": "q", "answer": "1"})
        + "\n"
        + json.dumps({"id": "b"})
        + "\n"
    )
    with pytest.raises(DataError) as info:
        load_benchmark("gsm8k", data_dir=tmp_path)
    assert str(info.value) == (
        f"{tmp_path / 'gsm8k' / 'test.jsonl'}:2: field 'problem': missing required field for Problem"
    )


# --- resolve_problems -------------------------------------------------------------------------


def test_resolve_name_and_path(bench_data: Path, tmp_path: Path) -> None:
    assert len(resolve_problems("aime25", data_dir=bench_data)) == 3
    assert len(resolve_problems("gsm8k", data_dir=bench_data, limit=4)) == 4
    path = tmp_path / "mine.jsonl"
    rows = [{"id": f"q{i}", "problem": "p", "answer": str(i)} for i in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = resolve_problems(str(path), limit=2, domain="puzzle")
    assert [(p.id, p.answer, p.domain) for p in got] == [
        ("q0", "0", "puzzle"),
        ("q1", "1", "puzzle"),
    ]
    with pytest.raises(ConfigError) as info:
        resolve_problems(str(tmp_path / "missing.jsonl"))
    assert "is neither a benchmark (math500, aime24" in str(info.value)


def test_check_problem_spec_and_negative_limits(tmp_path: Path) -> None:
    for spec in ("math500", "MATH-500", "aime2024", "gpqa-main", "countdown-hard", str(tmp_path)):
        check_problem_spec(spec)
    with pytest.raises(ConfigError) as info:
        check_problem_spec("countdown-harder", key="explore.problems:")
    assert str(info.value) == (
        "explore.problems: 'countdown-harder' is neither a benchmark (math500, aime24, aime25, "
        "amc23, gsm8k, gpqa, humaneval, math-train, countdown-easy|medium|hard) nor an existing "
        "file or directory"
    )
    for spec in ("countdown-easy", "gsm8k", str(tmp_path)):  # every kind of set, before loading
        with pytest.raises(ConfigError, match="limit must be >= 0, got -1"):
            resolve_problems(spec, data_dir=tmp_path / "nowhere", limit=-1)


def test_resolve_gpqa_zip_path(bench_data: Path, bench_gpqa: Any) -> None:
    got = resolve_problems(
        str(bench_data / "gpqa" / "dataset.zip"), gpqa_password=bench_gpqa.password, limit=2
    )
    assert [p.id for p in got] == ["gpqa-diamond-recFixture0001", "gpqa-diamond-recFixture0002"]


# --- the HF hub path, with the network call replaced ------------------------------------------

FAKE_HUB: dict[tuple[str, str | None, str], list[dict[str, Any]]] = {
    ("HuggingFaceH4/MATH-500", None, "test"): [
        {"unique_id": "test/algebra/1.json", "problem": "Held out?", "answer": "3",
         "solution": r"\boxed{3}", "level": 2, "subject": "Algebra"},
    ],
    ("HuggingFaceH4/aime_2024", None, "train"): [
        {"id": 60, "problem": "P", "answer": "033", "solution": "S",
         "url": "https://artofproblemsolving.com/wiki/index.php/2024_AIME_II_Problems/Problem_4"},
    ],
    ("math-ai/aime25", None, "test"): [
        {"problem": f"P{i}", "answer": str(i), "id": str(i)} for i in range(30)
    ],
    ("AI-MO/aimo-validation-amc", None, "train"): [
        {"id": 0, "problem": "old", "answer": 5.0,
         "url": "https://artofproblemsolving.com/wiki/index.php/2022_AMC_12A_Problems/Problem_3"},
        {"id": 1, "problem": "new", "answer": -1.0,
         "url": "https://artofproblemsolving.com/wiki/index.php/2023_AMC_12B_Problems/Problem_7"},
    ],
    ("openai/gsm8k", "main", "test"): [
        {"question": "How many?", "answer": "2,000 + 125 = <<2000+125=2125>>2125\n#### 2,125"},
    ],
    ("openai/openai_humaneval", None, "test"): [
        {"task_id": "HumanEval/0", "prompt": "def f():\n", "canonical_solution": "    return 1\n",
         "test": "def check(c):\n    assert c() == 1\n", "entry_point": "f"},
    ],
    ("Idavidrein/gpqa", "gpqa_diamond", "train"): [
        {"Record ID": "recX", "Question": " Q? ", "Correct Answer": "right",
         "Incorrect Answer 1": "w1", "Incorrect Answer 2": "w2", "Incorrect Answer 3": "w3",
         "Explanation": "because", "High-level domain": "Physics",
         "Writer's Difficulty Estimate": ""},
    ],
}  # fmt: skip
for _subject in MATH_SUBJECTS:
    for _split in ("train", "test"):
        FAKE_HUB[("EleutherAI/hendrycks_math", _subject, _split)] = []
FAKE_HUB[("EleutherAI/hendrycks_math", "algebra", "test")] = [
    {"problem": "Held out?", "solution": r"\boxed{3}", "level": "Level 2", "type": "Algebra"},
    {"problem": "Kept", "solution": r"So $\boxed{\frac{1}{2}}$.", "level": "Level 5",
     "type": "Algebra"},
    {"problem": "No answer", "solution": r"$\boxed{}$", "level": "Level 1", "type": "Algebra"},
    {"problem": "Odd level", "solution": r"\boxed 7", "level": "Level ?", "type": "Algebra"},
]  # fmt: skip


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REASONLOOP_DATA", raising=False)
    monkeypatch.setattr(
        registry, "_hub_rows", lambda ds, config, split: FAKE_HUB[(ds, config, split)]
    )


def _fields(problems: list[Any], *names: str) -> list[tuple[Any, ...]]:
    return [tuple(getattr(p, n) for n in names) for p in problems]


def test_hub_field_mappings(fake_hub: None) -> None:
    assert _fields(load_benchmark("math500"), "id", "answer", "level", "subject", "source") == [
        ("test/algebra/1.json", "3", "2", "Algebra", "MATH-500")
    ]
    assert _fields(load_benchmark("aime24"), "id", "answer", "solution") == [
        ("aime2024-II-04", "33", "S")
    ]
    aime25 = load_benchmark("aime25")
    assert _fields([aime25[0], aime25[14], aime25[15], aime25[29]], "id", "answer") == [
        ("aime2025-I-01", "0"),
        ("aime2025-I-15", "14"),
        ("aime2025-II-01", "15"),
        ("aime2025-II-15", "29"),
    ]
    assert _fields(load_benchmark("amc23"), "id", "problem", "answer") == [
        ("amc2023-12B-07", "new", "-1")
    ]
    assert _fields(load_benchmark("gsm8k"), "id", "problem", "answer") == [
        ("gsm8k-test-0000", "How many?", "2125")
    ]
    assert _fields(load_benchmark("humaneval"), "id", "domain", "solution", "entry_point") == [
        ("HumanEval/0", "code", "def f():\n    return 1\n", "f")
    ]
    assert _fields(load_benchmark("math-train"), "id", "answer", "level", "subject") == [
        ("hub/test/algebra/1", r"\frac{1}{2}", "5", "Algebra"),
        ("hub/test/algebra/3", "7", None, "Algebra"),
    ]
    (gp,) = load_benchmark("gpqa", seed=0)
    assert (gp.id, gp.problem, gp.source, gp.subject, gp.level) == (
        "gpqa-diamond-recX",
        "Q?",
        "GPQA-diamond",
        "Physics",
        None,
    )
    assert gp.choices is not None and gp.choices["ABCD".index(gp.answer)] == "right"


def test_hub_failure_says_how_to_use_a_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets", reason="HF datasets not installed (train extra)")
    monkeypatch.delenv("REASONLOOP_DATA", raising=False)

    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError) as info:
        load_benchmark("gsm8k")
    assert str(info.value) == (
        "could not load openai/gsm8k (main, test) from the HF hub: ConnectionError: no network; "
        "pass --data-dir DIR or set REASONLOOP_DATA to a local copy"
    )


def test_hub_without_datasets_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REASONLOOP_DATA", raising=False)
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(DataError, match=r"'datasets' package .* is not installed; pass --data-dir"):
        load_benchmark("humaneval")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so \boxed{2}", "2"),
        (r"\boxed{1} then \boxed{\frac{1}{2}}.", r"\frac{1}{2}"),
        (r"$\fbox{ 4 }$", "4"),
        (r"\boxed 5$", "5"),
        (r"\boxed{}", ""),
        (r"\boxed{\frac{1}{2}", None),
        ("no box", None),
    ],
)
def test_last_boxed(text: str, expected: str | None) -> None:
    assert last_boxed(text) == expected
