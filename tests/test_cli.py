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
    # A scorer or a strategy option that cannot be used is refused before the output directory
    # (and its store) is made.
    fresh = tmp_path / "fresh"
    missing = run(
        "eval", "--benchmark", "countdown-easy", "--limit", "1", "--out", str(fresh),
        "--strategy", "best-of-n", "--scorer", f"orm:{tmp_path / 'nothing'}",
    )  # fmt: skip
    assert missing.returncode == 2 and "no such model directory" in missing.stderr
    unknown = run(
        "eval", "--benchmark", "countdown-easy", "--limit", "1", "--out", str(fresh),
        "--strategy", "majority", "-k", "2", "--option", "bogus=1",
    )  # fmt: skip
    assert unknown.returncode == 2 and "unexpected keyword argument 'bogus'" in unknown.stderr
    assert not fresh.exists()


# --- inputs that cannot hurt ----------------------------------------------------------------

MATH_LINE = {"id": "m", "domain": "math", "answer": "1", "response": "\\boxed{1}"}


def write_lines(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path.read_bytes()


def test_grade_refuses_to_write_over_its_input(tmp_path):
    src = tmp_path / "in.jsonl"
    before = write_lines(src, [MATH_LINE])
    (tmp_path / "link.jsonl").symlink_to(src)
    for dest in (src, tmp_path / "link.jsonl", tmp_path / "." / "in.jsonl"):
        r = run("grade", str(src), "-o", str(dest))
        assert r.returncode == 2
        assert r.stderr == (
            f"error: output {dest} is the input file; the verdicts would overwrite it: name "
            "another file\n"
        )
        assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "link.jsonl"]


def test_grade_into_a_directory_or_a_missing_one_leaves_nothing_behind(tmp_path):
    src = tmp_path / "in.jsonl"
    before = write_lines(src, [MATH_LINE])
    out_dir = tmp_path / "verdicts"
    out_dir.mkdir()
    r = run("grade", str(src), "-o", str(out_dir))
    assert r.returncode == 2
    assert r.stderr == (
        f"error: output {out_dir} is a directory; name a file in it, e.g. "
        f"{out_dir / 'verdicts.jsonl'}\n"
    )
    r = run("grade", str(src), "-o", str(tmp_path / "nope" / "v.jsonl"))
    assert r.returncode == 2
    assert r.stderr == (
        f"error: output {tmp_path / 'nope' / 'v.jsonl'}: no directory {tmp_path / 'nope'}; "
        "create it first\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "verdicts"]
    assert list(out_dir.iterdir()) == [] and src.read_bytes() == before
    # A good run leaves the verdicts and no temporary file.
    assert run("grade", str(src), "-o", str(out_dir / "v.jsonl")).returncode == 0
    assert [p.name for p in out_dir.iterdir()] == ["v.jsonl"]


def test_grade_code_rows_may_omit_the_answer_or_set_it_to_null(tmp_path):
    code = {
        "domain": "code",
        "response": "```python\ndef f():\n    return 1\n```",
        "tests": "def check(c):\n    assert c() == 1\n",
        "entry_point": "f",
    }
    src = tmp_path / "in.jsonl"
    write_lines(
        src,
        [
            {"id": "c1", **code},
            {"id": "c2", "answer": None, **code},
            {"id": "m1", "domain": "math", "answer": None, "response": "\\boxed{1}"},
        ],
    )
    dest = tmp_path / "out.jsonl"
    r = run("grade", str(src), "-o", str(dest), "--workers", "1")
    assert r.returncode == 2  # the math row without an answer is still an error
    assert [json.loads(x) for x in dest.read_text().splitlines()] == [
        {
            "id": "c1",
            "correct": True,
            "extracted": "def f():\n    return 1",
            "reason": "correct",
            "boundary": "bwrap",
        },
        {
            "id": "c2",
            "correct": True,
            "extracted": "def f():\n    return 1",
            "reason": "correct",
            "boundary": "bwrap",
        },
    ]
    assert r.stderr.splitlines() == [
        f"skipped {src}:3: field 'answer': expected a string, got NoneType None",
        "1 malformed line(s) skipped",
    ]


def test_file_names_and_messages_print_as_they_are(tmp_path):
    """No rich markup or emoji codes: line 100 once printed as ``in.jsonl💯``."""
    src = tmp_path / "[bold]in[red]:smile:.jsonl"
    bad = {"id": "bad", "domain": "math", "response": "no answer field"}
    write_lines(src, [MATH_LINE] * 99 + [bad])
    dest = tmp_path / "[red]out:100:.jsonl"
    r = run("grade", str(src), "-o", str(dest), "--workers", "1")
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        f"skipped {src}:100: field 'answer': missing required field for Problem",
        "1 malformed line(s) skipped",
    ]
    assert f"graded{src}" in "".join(r.stdout.split())  # the table's title wraps
    assert f"wrote 99 verdicts to {dest}\n" in r.stdout
    assert "💯" not in r.stdout + r.stderr and "😄" not in r.stdout + r.stderr
    missing = tmp_path / "[/x]:100:.jsonl"
    r = run("grade", str(missing), "-o", str(dest))
    assert (r.returncode, r.stderr) == (2, f"error: {missing}: file not found\n")


def test_problems_show_prints_ids_domains_and_answers_as_they_are(tmp_path):
    src = tmp_path / "p.jsonl"
    write_lines(src, [{"id": "q:100:", "domain": "math", "problem": "[b]x[/b]?", "answer": "[1]"}])
    r = run("problems", "show", str(src))
    assert r.returncode == 0, r.stderr
    assert "q:100:  [math]  answer: [1]" in r.stdout and "[b]x[/b]?" in r.stdout


LIMITED = {
    "generate": ["--problems", "countdown-easy", "--store", "{tmp}/s.db"],
    "explore": ["--problems", "countdown-easy", "--store", "{tmp}/s.db"],
    "distill": ["--problems", "countdown-easy", "--store", "{tmp}/s.db", "--teacher", "default"],
    "rel": ["--problems", "countdown-easy", "--store", "{tmp}/s.db"],
    "eval": ["--benchmark", "countdown-easy", "--out", "{tmp}/ev"],
    "annotate-steps": ["--store", "{tmp}/s.db"],
}


@pytest.mark.parametrize("command", [*LIMITED, "problems show"])
def test_a_negative_limit_is_refused_before_anything_is_made(tmp_path, command):
    args = [a.replace("{tmp}", str(tmp_path)) for a in LIMITED.get(command, ["countdown-easy"])]
    r = run(*command.split(), *args, "--limit", "-1")
    assert r.returncode == 2
    if command == "problems show":  # Typer's own range check
        assert (
            "Invalid value for '--limit'" in r.stderr and "greater than or equal to 0" in r.stderr
        )
    else:  # a stage config's: one line naming the field
        assert r.stderr == "error: limit must be >= 0, got -1\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "--engine", "bogus:x"], "unknown engine spec 'bogus:x'"),
        (["generate", "-n", "0"], "error: n must be >= 1, got 0"),
        (["generate", "--batch", "0"], "error: batch must be >= 1, got 0"),
        (["generate", "--max-tokens", "0"], "error: max_tokens must be >= 1, got 0"),
        (["explore", "--max-rollouts", "0"], "error: max_rollouts must be >= 1, got 0"),
        (["generate", "--top-p", "0"], "error: top_p must be > 0, got 0.0"),
        (["explore", "--engine", "llamacpp:"], "unknown engine spec 'llamacpp:'"),
        (
            ["distill", "--teacher", "default", "--style", "poem"],
            "error: style must be one of auto, unified, r1, qwq, got 'poem'",
        ),
        (["distill", "--teacher", "nope"], "unknown engine spec 'nope'"),
        (["rel", "--threshold", "2"], "error: threshold must be in [0, 1], got 2.0"),
        (["generate", "--problems", "countdown-hardest"], "is neither a benchmark"),
    ],
)
def test_rejected_engines_and_settings_create_no_store(tmp_path, args, message):
    store = tmp_path / "s.db"
    if "--problems" not in args:
        args = [*args, "--problems", "countdown-easy"]
    r = run(*args, "--store", str(store), "--limit", "1")
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_stats_counts_stages_and_behaviour_groups(tmp_path):
    from reasonloop.format import render
    from reasonloop.records import Generator, Problem, Trajectory, Verdict
    from reasonloop.store import open_store

    gen = Generator(engine="e", model="m")
    with open_store(tmp_path / "s.db") as st:
        st.add_problems([Problem(id="p", domain="math", problem="2+2?", answer="4")])
        st.add_trajectories(
            [
                Trajectory(
                    "p",
                    render("First, add. Wait, let me check.", "4"),
                    verdict=Verdict(True, "4", "correct"),
                    generator=gen,
                ),
                Trajectory(
                    "p", render("Guess.", "5"), verdict=Verdict(False, "5", "wrong"), generator=gen
                ),
            ],
            stage="distill",
            sample_indices=range(2),
        )
    r = run("stats", "--store", str(tmp_path / "s.db"))
    assert r.returncode == 0, r.stderr
    rows = [line.split("│")[1:-1] for line in r.stdout.splitlines() if line.count("│") > 3]
    cells = [[c.strip() for c in row] for row in rows]
    assert ["distill", "2", "1", "1", "1", "0"] in cells
    by_group = {row[0][:9]: row[1:] for row in cells}  # a narrow terminal cuts the group names
    assert by_group["source=m"] == ["2", "0.00", "0.50", "0.50", "0.50", "4"]  # median 3.5 → 4
    assert by_group["verdict=c"] == ["1", "0.00", "1.00", "1.00", "1.00", "6"]
    assert by_group["verdict=i"] == ["1", "0.00", "0.00", "0.00", "0.00", "1"]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["generate", "--ray"], ["generate", "--ray", "local"]),
        (["generate", "--ray", "-n", "2"], ["generate", "--ray", "local", "-n", "2"]),
        (["generate", "--ray", "10.0.0.1:6379"], ["generate", "--ray", "10.0.0.1:6379"]),
        (
            ["grade", "in.jsonl", "--ray", "auto", "-o", "o"],
            ["grade", "in.jsonl", "--ray", "auto", "-o", "o"],
        ),
        (["generate", "-n", "2"], ["generate", "-n", "2"]),
    ],
)
def test_ray_alone_means_a_local_cluster(argv, expected):
    from reasonloop.cli import bare_ray

    assert bare_ray(argv) == expected
