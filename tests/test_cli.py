"""The CLI through its real entry point (a subprocess), on small inputs."""

import json
import subprocess
import sys

import pytest


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-c", "from reasonloop.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_grade_keeps_order_reports_bad_lines_and_exits_2(tmp_path):
    lines = [
        {"id": "m1", "domain": "math", "answer": "\\frac{1}{2}", "response": "So \\boxed{0.5}."},
        {"id": "m2", "domain": "math", "answer": "18", "response": "The answer is $18."},
        "this is not json",
        {
            "id": "c1",
            "domain": "science",
            "answer": "B",
            "choices": ["1", "2", "3", "4"],
            "response": "Answer: (B)",
        },
        {"id": "bad", "domain": "math", "response": "no answer field"},
        {"id": "p1", "domain": "puzzle", "answer": "10", "response": "\\boxed{3}"},
        {
            "id": "m3",
            "domain": "math",
            "answer": "3",
            "response": "<|begin_of_thought|>\nstill thinking",
        },
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    dest = tmp_path / "out.jsonl"
    r = run("grade", str(src), "-o", str(dest), "--workers", "2")
    assert r.returncode == 2, r.stderr
    out = [json.loads(x) for x in dest.read_text().splitlines()]
    assert [(o["id"], o["correct"], o["reason"]) for o in out] == [
        ("m1", True, "correct"),
        ("m2", True, "correct"),
        ("c1", True, "correct"),
        ("p1", False, "wrong"),
        ("m3", False, "thought_unfinished"),
    ]
    assert f"{src}:3: invalid JSON" in r.stderr
    assert f"{src}:5: field 'answer': missing required field" in r.stderr
    assert "2 malformed line(s) skipped" in r.stderr


def test_grade_all_good_exits_0_and_a_missing_file_exits_2(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"id": "a", "domain": "math", "answer": "4", "response": "\\boxed{4}"}) + "\n"
    )
    assert run("grade", str(src), "-o", str(tmp_path / "o.jsonl")).returncode == 0
    r = run("grade", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "o.jsonl"))
    assert r.returncode == 2 and "file not found" in r.stderr


def test_unknown_engine_spec_lists_the_valid_forms(tmp_path):
    r = run(
        "generate",
        "--engine",
        "bogus:x",
        "--problems",
        "countdown-easy",
        "--limit",
        "1",
        "--store",
        str(tmp_path / "s.db"),
    )
    assert r.returncode == 2
    assert "unknown engine spec 'bogus:x'" in r.stderr and "openai:URL#MODEL" in r.stderr


def test_problems_show_reads_the_data_dir(bench_data):
    r = run("problems", "show", "gsm8k", "--limit", "1", "--data-dir", str(bench_data))
    assert r.returncode == 0, r.stderr
    assert "gsm8k-test-0000" in r.stdout and "Mia buys 3 packs of pencils" in r.stdout
    assert r.stdout.rstrip().endswith("10 problems in gsm8k")


@pytest.mark.slow
def test_annotate_steps_then_export_stepwise_resumes(tmp_path):
    from reasonloop.format import render
    from reasonloop.records import Problem, Trajectory, Verdict
    from reasonloop.store import open_store

    store = tmp_path / "pool.db"
    problem = Problem("m1", "math", "What is 6*7?", "42")
    text = render("six times seven\n\nis forty-two", "\\boxed{42}")
    with open_store(store) as st:
        st.add_problems([problem])
        st.add_trajectories(
            [Trajectory("m1", text, verdict=Verdict(True, "42", "correct"))], stage="x"
        )
    args = ["annotate-steps", "--store", str(store), "-m", "2", "--max-tokens", "4"]
    r = run(*args)
    assert r.returncode == 0, r.stderr
    assert "labeller s-" in r.stdout
    with open_store(store, readonly=True) as st:
        ((_, labels),) = list(st.step_labels())
    # two thought steps sampled (2 completions each), the finished answer step graded as is
    assert [(x.step_index, x.n) for x in labels] == [(0, 2), (1, 2), (2, 1)]
    assert labels[-1].n_correct == 1
    again = run(*args)
    assert (
        again.returncode == 0 and "│            1 │              0 │            3 │" in again.stdout
    )
    out = tmp_path / "stepwise.jsonl"
    r = run("export", "--store", str(store), "--format", "stepwise", "--out", str(out))
    assert r.returncode == 0 and "wrote 1 stepwise rows" in r.stdout
    (row,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert row["prompt"] == "What is 6*7?"
    assert row["completions"] == ["six times seven", "is forty-two", "\\boxed{42}"]
    assert row["labels"] == [x.hard for x in labels]


@pytest.mark.slow
def test_eval_with_a_search_strategy_reports_tokens_spent(tmp_path):
    out = tmp_path / "ev"
    r = run(
        "eval", "--benchmark", "countdown-easy", "--limit", "1", "--out", str(out),
        "--strategy", "majority", "-k", "2", "--max-tokens", "4",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    spend = json.loads((out / "spend.json").read_text())
    assert spend["strategy"] == "majority k=2" and spend["tokens_per_problem"] == 8
    assert "tokens spent per problem 8" in r.stdout
    bad = run(
        "eval", "--benchmark", "countdown-easy", "--out", str(out), "--strategy", "majority",
        "--scorer", "confidence",
    )  # fmt: skip
    assert bad.returncode == 2 and "strategy 'majority' uses no scorer" in bad.stderr
    missing = run(
        "eval", "--benchmark", "countdown-easy", "--limit", "1", "--out", str(out),
        "--strategy", "best-of-n", "--scorer", f"orm:{tmp_path / 'nothing'}",
    )  # fmt: skip
    assert missing.returncode == 2 and "no such model directory" in missing.stderr
