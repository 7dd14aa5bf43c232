"""The grading benchmark's workloads are held out: none of the table's rows is a unit-test row,
every generated "other form" has the gold's value and never its spelling, and every wrong value
differs from the gold."""

import importlib.util
import json
import sys
from pathlib import Path

from reasonloop.verify.extract import extract_from_solution

ROOT = Path(__file__).parents[2]
spec = importlib.util.spec_from_file_location("grade_bench", ROOT / "benchmarks" / "grade_bench.py")
grade_bench = importlib.util.module_from_spec(spec)
sys.modules["grade_bench"] = grade_bench  # its dataclasses look their module up
spec.loader.exec_module(grade_bench)

cases_spec = importlib.util.spec_from_file_location(
    "data_math_cases", ROOT / "tests" / "verify" / "data_math_cases.py"
)
cases = importlib.util.module_from_spec(cases_spec)
cases_spec.loader.exec_module(cases)


def test_the_table_is_held_out_and_balanced() -> None:
    rows = grade_bench.table_rows()
    assert len(rows) >= 100
    assert 0.4 < sum(r.correct for r in rows) / len(rows) < 0.7
    unit_pairs = {(g, p) for g, p, _ in cases.EQUIV} | {(g, r) for g, r, _ in cases.RESPONSES}
    unit_texts = {p for _, p, _ in cases.EQUIV} | {r for _, r, _ in cases.RESPONSES}
    assert not [r for r in rows if (r.gold, r.solution) in unit_pairs]
    assert not [r for r in rows if r.solution in unit_texts]
    assert len({(r.gold, r.solution) for r in rows}) == len(rows)
    assert "$" not in {r.gold[:1] for r in rows}  # golds are read without their math delimiters


def test_other_forms_keep_the_value_and_change_the_spelling() -> None:
    assert grade_bench.other_forms(r"\frac{14}{3}") == [
        r"14/3",
        r"\dfrac{14}{3}",
        r"4\frac{2}{3}",
    ]
    assert grade_bench.other_forms(r"\frac{1}{4}")[:2] == ["0.25", "1/4"]
    assert grade_bench.other_forms("1296") == [r"1296 \text{ units}", "x = 1296", "1,296"]
    assert grade_bench.other_forms(r"10,\!080") == ["10080"]
    assert grade_bench.other_forms(r"3\sqrt{13}") == [r"\sqrt{117}"]  # not \sqrt 13: that is √1·3
    assert grade_bench.other_forms(r"2\sqrt{5}") == [r"\sqrt{20}", r"2\sqrt 5"]
    assert grade_bench.other_forms("3, 5, 7") == ["7, 5, 3"]
    assert grade_bench.other_forms("58,500") == ["58500"]  # a thousands separator, not a list
    assert grade_bench.other_forms(r"\text{(C)}") == ["(C)", "C"]
    assert grade_bench.other_forms(r"90^\circ") == ["90", r"90^{\circ}"]


def test_wrong_values_and_other_problems_differ(tmp_path: Path) -> None:
    assert grade_bench.wrong_form(r"\frac{14}{3}") == r"\frac{24}{3}"
    assert grade_bench.wrong_form(r"\text{(C)}") == r"\text{(D)}"
    assert grade_bench.wrong_form(r"\text{even}") == r"\text{odd}"
    golds = ["5", r"\frac{10}{2}", "5.0", r"\frac{1}{2}", r"\text{east}"]
    path = tmp_path / "math500" / "test.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps({"answer": a}) + "\n" for a in golds))
    rows = grade_bench.math500_rows(path, seed=3)
    assert {r.shape for r in rows} == {"other form", "wrong value", "other problem", "hedged"}
    assert [r.correct for r in rows] == [r.shape == "other form" for r in rows]
    assert sum(r.shape == "hedged" for r in rows) == 1  # every fifth problem
    five = {"5", r"\frac{10}{2}", "5.0"}  # one value, three spellings
    for r in rows:
        if r.shape == "other problem" and r.gold in five:  # never another spelling of 5
            assert r"\frac{1}{2}" in r.solution or r"\text{east}" in r.solution
        if r.shape == "other form":  # never the gold's own spelling: no string-equality shortcut
            assert extract_from_solution(r.solution) != r.gold
