from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reasonloop.errors import ConfigError, DataError
from reasonloop.problems import iter_problems, load_problems
from reasonloop.records import Problem

ROWS = [
    {"id": "p1", "domain": "math", "problem": "1+1?", "answer": "2", "solution": "1+1=2",
     "source": "toy", "level": "1", "subject": "Algebra"},
    {"id": "p2", "domain": "science", "problem": "Pick", "answer": "B", "choices": ["x", "y"]},
    {"id": "p3", "domain": "code", "problem": "def f():\n", "answer": "    return 1\n",
     "tests": "def check(c):\n    assert c() == 1\n", "entry_point": "f"},
]  # fmt: skip

EXPECTED = [
    Problem(id="p1", domain="math", problem="1+1?", answer="2", solution="1+1=2", source="toy",
            level="1", subject="Algebra"),
    Problem(id="p2", domain="science", problem="Pick", answer="B", choices=("x", "y")),
    Problem(id="p3", domain="code", problem="def f():\n", answer="    return 1\n",
            tests="def check(c):\n    assert c() == 1\n", entry_point="f"),
]  # fmt: skip


def columns(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Rows with every key (None where absent): Arrow takes its columns from the first row."""
    keys = {k: None for row in rows for k in row}
    return [{**keys, **row} for row in rows]


def write_jsonl(path: Path, lines: list[object]) -> Path:
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines),
        encoding="utf-8",
    )
    return path


def test_jsonl_round_trip(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "data.jsonl", ROWS)
    assert load_problems(path) == EXPECTED
    assert load_problems(str(path)) == EXPECTED


def test_extra_columns_are_ignored_and_blank_lines_skipped(tmp_path: Path) -> None:
    rows = [{**ROWS[0], "unique_id": "x", "url": "http://e"}, "", "   ", ROWS[1]]
    assert load_problems(write_jsonl(tmp_path / "d.jsonl", rows)) == EXPECTED[:2]


def test_numeric_answers_ids_and_levels_become_strings(tmp_path: Path) -> None:
    rows = [
        {"id": 7, "domain": "math", "problem": "q", "answer": 42, "level": 5},
        {"id": "b", "domain": "math", "problem": "q", "answer": 27.0},
        {"id": "c", "domain": "math", "problem": "q", "answer": -1},
    ]
    got = load_problems(write_jsonl(tmp_path / "d.jsonl", rows))
    assert [(p.id, p.answer, p.level) for p in got] == [
        ("7", "42", "5"),
        ("b", "27", None),
        ("c", "-1", None),
    ]


BAD_LINES = [
    # (second line, field, message after "file:2: ")
    ({"id": "x", "domain": "math", "problem": "q"}, "answer",
     "field 'answer': missing required field for Problem"),
    ({"id": "x", "domain": "math", "problem": "q", "answer": ["1"]}, "answer",
     "field 'answer': expected a string, got list ['1']"),
    ({"id": "x", "domain": "math", "problem": "q", "answer": 0.5}, "answer",
     "field 'answer': non-integral number 0.5; store a non-integer answer as a string"),
    ({"id": "x", "domain": "math", "problem": "q", "answer": True}, "answer",
     "field 'answer': expected a string, got bool True"),
    ({"id": "x", "domain": "algebra", "problem": "q", "answer": "1"}, "domain",
     "field 'domain': 'algebra' is not one of ['math', 'science', 'code', 'puzzle']"),
    ({"id": "x", "domain": "math", "problem": 3, "answer": "1"}, "problem",
     "field 'problem': expected a string, got int 3"),
    ({"id": "x", "domain": "math", "problem": "q", "answer": "1", "choices": "AB"}, "choices",
     "field 'choices': expected a list, got str"),
    ('{"id": "x", "domain": "math",', None, "invalid JSON (Expecting property name enclosed in "
     "double quotes at column 30)"),
    ("[1, 2]", None, "expected an object, got list"),
]  # fmt: skip


def test_a_code_row_may_omit_its_answer_or_set_it_to_null(tmp_path: Path) -> None:
    code = {"domain": "code", "problem": "def f():\n", "tests": "def check(c): ...\n",
            "entry_point": "f"}  # fmt: skip
    rows = [{"id": "c1", **code}, {"id": "c2", "answer": None, **code}, ROWS[2]]
    assert [p.answer for p in load_problems(write_jsonl(tmp_path / "c.jsonl", rows))] == [
        "",
        "",
        "    return 1\n",
    ]
    # ... and so may a code row whose domain comes from the argument, but not a math row.
    no_domain = {k: v for k, v in code.items() if k != "domain"}
    assert load_problems(write_jsonl(tmp_path / "d.jsonl", [{"id": "c", **no_domain}]),
                         domain="code")[0].answer == ""  # fmt: skip
    path = write_jsonl(tmp_path / "m.jsonl", [{"id": "m", "domain": "math", "problem": "q",
                                                "answer": None}])  # fmt: skip
    with pytest.raises(DataError) as info:
        load_problems(path)
    assert str(info.value) == f"{path}:1: field 'answer': expected a string, got NoneType None"


@pytest.mark.parametrize(("line", "field", "message"), BAD_LINES)
def test_bad_jsonl_line_names_file_line_and_field(
    tmp_path: Path, line: object, field: str | None, message: str
) -> None:
    path = write_jsonl(tmp_path / "data.jsonl", [ROWS[0], line, ROWS[1]])
    with pytest.raises(DataError) as info:
        load_problems(path)
    assert str(info.value) == f"{path}:2: {message}"
    assert info.value.where == f"{path}:2"
    assert info.value.field == field


def test_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "data.jsonl", [ROWS[0], "", "", {"id": "x"}])
    with pytest.raises(DataError, match=r"data\.jsonl:4: field 'domain'"):
        load_problems(path)


def test_missing_domain_is_filled_from_the_argument_never_overridden(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "problem": "q", "answer": "1"},
        {"id": "b", "problem": "q", "answer": "1", "domain": None},
        {"id": "c", "problem": "q", "answer": "1", "domain": "science"},
    ]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    assert [p.domain for p in load_problems(path, domain="puzzle")] == [
        "puzzle",
        "puzzle",
        "science",
    ]
    with pytest.raises(DataError) as info:
        load_problems(path)
    assert str(info.value) == (
        f"{path}:1: field 'domain': missing required field "
        "(or pass domain=, --domain, to set it for the whole file)"
    )


def test_bad_domain_argument(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    with pytest.raises(ConfigError) as info:
        load_problems(path, domain="algebra")
    assert str(info.value) == (
        "domain must be one of ['math', 'science', 'code', 'puzzle'], got 'algebra'"
    )


def test_duplicate_id_names_both_lines(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [ROWS[0], ROWS[1], ROWS[0]])
    with pytest.raises(DataError) as info:
        load_problems(path)
    assert str(info.value) == f"{path}:3: field 'id': duplicate id 'p1' (first at {path}:1)"


def test_iter_problems_yields_rows_before_a_bad_one(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [ROWS[0], "not json"])
    it = iter_problems(path)
    assert next(it) == EXPECTED[0]
    with pytest.raises(DataError, match=r"d\.jsonl:2: invalid JSON"):
        next(it)


def test_jsonl_gz(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in ROWS)
    assert load_problems(path) == EXPECTED


def test_non_utf8_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"id": "\xff"}\n')
    with pytest.raises(DataError, match=r"d\.jsonl: not UTF-8 text"):
        load_problems(path)


def test_json_list_and_json_lines_named_json(tmp_path: Path) -> None:
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps(ROWS), encoding="utf-8")
    assert load_problems(listed) == EXPECTED
    lines = write_jsonl(tmp_path / "lines.json", ROWS)
    assert load_problems(lines) == EXPECTED


def test_bad_json_list_item_and_shape(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text(json.dumps([ROWS[0], {"id": "x", "domain": "math", "problem": "q"}]))
    with pytest.raises(DataError) as info:
        load_problems(path)
    assert str(info.value) == f"{path}:item 1: field 'answer': missing required field for Problem"
    path.write_text(json.dumps({"problems": ROWS}))
    with pytest.raises(DataError, match="expected a JSON list of problems, got dict"):
        load_problems(path)


def test_parquet_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(columns(ROWS)), path)
    assert load_problems(path) == EXPECTED


def test_parquet_integer_answer_column(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    table = pa.table({"id": ["a", "b"], "problem": ["q", "r"], "answer": [204, 25]})
    pq.write_table(table, path)
    got = load_problems(path, domain="math")
    assert [(p.id, p.answer, p.domain) for p in got] == [("a", "204", "math"), ("b", "25", "math")]


def test_bad_parquet_row_names_file_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    rows = [ROWS[0], {**ROWS[0], "id": "p9", "answer": None}]
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(DataError) as info:
        load_problems(path)
    assert str(info.value) == f"{path}:row 1: field 'answer': expected a string, got NoneType None"
    assert info.value.field == "answer"


def test_not_a_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    path.write_text("hello")
    with pytest.raises(DataError, match=r"d\.parquet: cannot read parquet"):
        load_problems(path)


def test_directory_of_files_in_name_order(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "b.jsonl", [ROWS[1]])
    write_jsonl(tmp_path / "a.jsonl", [ROWS[0]])
    pq.write_table(pa.Table.from_pylist([ROWS[2]]), tmp_path / "c.parquet")
    (tmp_path / "notes.txt").write_text("ignored")
    assert load_problems(tmp_path) == EXPECTED


def test_duplicate_ids_across_files_of_a_directory(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [ROWS[0]])
    write_jsonl(tmp_path / "b.jsonl", [ROWS[0]])
    with pytest.raises(DataError, match=r"b\.jsonl:1: field 'id': duplicate id 'p1' \(first at "):
        load_problems(tmp_path)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.jsonl", "no such file or directory"),
        ("data.csv", "unknown problem file type 'data.csv'"),
    ],
)
def test_missing_or_unknown_file(tmp_path: Path, name: str, message: str) -> None:
    if name.endswith(".csv"):
        (tmp_path / name).write_text("id,problem\n")
    with pytest.raises(DataError, match=message):
        load_problems(tmp_path / name)


def test_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="directory holds no problem files"):
        load_problems(tmp_path)


def test_hf_datasets_save_to_disk(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets", reason="HF datasets not installed (train extra)")
    ds = datasets.Dataset.from_list(columns(ROWS))
    ds.save_to_disk(str(tmp_path / "one"))
    assert load_problems(tmp_path / "one") == EXPECTED
    # a selection is saved flattened; rows come back in the selected order
    ds.select([2, 0]).save_to_disk(str(tmp_path / "picked"))
    assert load_problems(tmp_path / "picked") == [EXPECTED[2], EXPECTED[0]]
    datasets.DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "dict1"))
    assert load_problems(tmp_path / "dict1") == EXPECTED
    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(str(tmp_path / "dict2"))
    with pytest.raises(DataError, match=r"DatasetDict with splits \['train', 'test'\]; name one"):
        load_problems(tmp_path / "dict2")
    assert load_problems(tmp_path / "dict2" / "test") == EXPECTED


def test_hf_datasets_bad_row(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets", reason="HF datasets not installed (train extra)")
    rows = [{"id": "a", "problem": "q", "answer": "1"}, {"id": "b", "problem": "q", "answer": "2"}]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(DataError) as info:
        load_problems(tmp_path / "ds")
    assert info.value.where == f"{tmp_path / 'ds'}:row 0"
    assert info.value.field == "domain"
    assert [p.id for p in load_problems(tmp_path / "ds", domain="math")] == ["a", "b"]
