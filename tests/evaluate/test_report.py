import json

import pytest

from reasonloop.evaluate.report import compare_table, load_result, write_report
from reasonloop.evaluate.summary import Outcome, summarize
from reasonloop.records import Problem

PROBLEMS = [
    Problem("a", "math", "q", "1", level="1"),
    Problem("b", "math", "q", "2", level="1"),
    Problem("c", "math", "q", "3", level="2"),
    Problem("d", "math", "q", "4", level="2"),  # never sampled: not counted
]


def outs(pid, pattern, answers):
    return [
        Outcome(pid, a, c == "1", 10 * (i + 1))
        for i, (c, a) in enumerate(zip(pattern, answers, strict=False))
    ]


OUTCOMES = {
    "a": outs(
        "a", "1100", ["1", "1", "7", "8"]
    ),  # acc .5, maj@2 1, maj@4 1 (tie 1-1-... "1" has 2)
    "b": outs(
        "b", "0011", ["5", "5", "2", "2"]
    ),  # acc .5, maj@2 0, maj@4 0 (tie -> first group "5")
    "c": outs("c", "0000", ["9", None, None, "9"]),  # acc 0
}


def test_summarize_hand_computed():
    r = summarize("toy", "m", "sample", PROBLEMS, OUTCOMES)
    assert r.n_problems == 3
    m = r.metrics
    assert m["acc"] == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert m["pass@1"] == pytest.approx(1 / 3)
    # pass@2 per problem: 1 - C(2,2)/C(4,2) = 5/6 for a and b, 0 for c
    assert m["pass@2"] == pytest.approx((5 / 6 + 5 / 6) / 3)
    assert m["pass@4"] == pytest.approx(2 / 3)
    assert m["maj@2"] == pytest.approx(1 / 3)
    assert m["maj@4"] == pytest.approx(1 / 3)
    assert list(m)[:3] == ["acc", "pass@1", "pass@2"]
    assert r.breakdown["level=1"]["acc"] == pytest.approx(0.5)
    assert r.breakdown["level=2"]["acc"] == 0.0
    assert r.breakdown["level=1"]["n"] == 2
    assert "domain=math" not in r.breakdown  # a single group says nothing
    assert r.mean_tokens == pytest.approx(25.0)


def test_write_report_files_and_pngs(tmp_path):
    r = summarize("toy", "m", "sample", PROBLEMS, OUTCOMES)
    files = write_report(tmp_path, r, OUTCOMES)
    names = sorted(p.name for p in files)
    assert names == sorted(
        [
            "metrics.json",
            "report.md",
            "accuracy_vs_k.png",
            "accuracy_by_level.png",
            "length_hist.png",
        ]
    )
    for p in files:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load_result(tmp_path) == r
    md = (tmp_path / "report.md").read_text()
    assert "| pass@1 | 33.3 |" in md and "![accuracy_vs_k](accuracy_vs_k.png)" in md
    assert json.loads((tmp_path / "metrics.json").read_text())["benchmark"] == "toy"


def test_compare_gain_over_first_row():
    r1 = summarize("toy", "base", "greedy", PROBLEMS, {"a": OUTCOMES["c"][:1]})
    r2 = summarize("toy", "sft", "sample", PROBLEMS, OUTCOMES)
    header, rows = compare_table([r1, r2])
    assert header[-1] == "gain"
    assert rows[0][4] == "0.0" and rows[0][-1] == "+0.0"
    assert rows[1][4] == "33.3" and rows[1][-1] == "+33.3" and rows[1][5] == "33.3 (maj@4)"
