import json
import random
import zlib
from collections import Counter

import pytest

from reasonloop.curate import run
from reasonloop.curate.run import CurateConfig, MixConfig, SelectConfig, curate, load_recipe
from reasonloop.errors import ConfigError
from reasonloop.format import render
from reasonloop.records import Problem, Trajectory, Verdict

OK = Verdict(True, "1", "correct")
BAD = Verdict(False, "2", "wrong")


def thought(tag: str, n: int) -> str:
    return f"Plan for {tag}: " + " ".join(f"step{tag}{i} check{i}" for i in range(n))


def rows():
    probs = {
        "a": Problem("a", "math", "Compute a.", "1", level="1"),
        "b": Problem("b", "math", "Compute b.", "1", level="5"),
        "c": Problem("c", "science", "Pick c.", "A", choices=("x", "y"), level="5"),
    }
    data = [
        ("a", render(thought("a1", 20), "\\boxed{1}"), OK, 5.0),
        ("a", render(thought("a2", 30), "\\boxed{1}"), OK, 2.0),  # longer, lower perplexity
        ("a", render(thought("a1", 20), "\\boxed{1}"), OK, 5.0),  # exact duplicate
        ("b", render(thought("b1", 25), "\\boxed{2}"), BAD, 3.0),  # wrong answer
        ("b", render(thought("b2", 25), "\\boxed{1}"), OK, 9.0),
        ("b", render(thought("b2", 25) + " extra", "\\boxed{1}"), OK, 1.0),  # near duplicate
        ("c", render("too short", "Answer: A"), OK, 1.0),  # short thought
        ("c", render(thought("c1", 22), "Answer: A"), OK, 4.0),
    ]
    for i, (pid, text, v, ppl) in enumerate(data):
        yield (
            probs[pid],
            Trajectory(pid, text, verdict=v, perplexity=ppl, finish_reason="stop", id=f"t{i}"),
        )


def read(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_pipeline_counts_reasons_and_writes_trl_rows(tmp_path):
    report = curate(rows(), tmp_path, CurateConfig(near_dup_threshold=0.7))
    assert report.seen == 8
    assert dict(report.dropped) == {
        "exact_duplicate": 1,
        "wrong_answer": 1,
        "near_duplicate": 1,
        "short_thought": 1,
        "not_selected": 1,  # problem a keeps 1 of its 2 survivors
    }
    train = read(tmp_path / "train.jsonl")
    assert [r["trajectory_id"] for r in train] == ["t1", "t4", "t7"]  # a: the longer one
    assert [m["role"] for m in train[0]["messages"]] == ["system", "user", "assistant"]
    assert train[0]["messages"][2]["content"].startswith("<|begin_of_thought|>")
    rejects = {r["id"]: r["reason"] for r in read(tmp_path / "rejects.jsonl")}
    assert rejects == {
        "t2": "exact_duplicate",
        "t3": "wrong_answer",
        "t5": "near_duplicate",
        "t6": "short_thought",
    }
    assert json.loads((tmp_path / "report.json").read_text())["by_domain"] == {
        "math": 2,
        "science": 1,
    }


def test_worker_processes_give_the_same_output(tmp_path):
    curate(rows(), tmp_path / "one", CurateConfig(near_dup_threshold=0.7))
    curate(rows(), tmp_path / "two", CurateConfig(near_dup_threshold=0.7), workers=2)
    for name in ("train.jsonl", "rejects.jsonl", "report.json"):
        assert (tmp_path / "one" / name).read_text() == (tmp_path / "two" / name).read_text()


def test_selection_by_perplexity(tmp_path):
    cfg = CurateConfig(near_dup_threshold=0.7, select=SelectConfig(by="perplexity_high"))
    curate(rows(), tmp_path, cfg)
    assert [r["trajectory_id"] for r in read(tmp_path / "train.jsonl")][0] == "t0"  # ppl 5 > 2


def test_mixing_by_domain(tmp_path):
    cfg = CurateConfig(near_dup_threshold=0.7, mix=MixConfig(domains={"math": 1.0}, total=10))
    report = curate(rows(), tmp_path, cfg)
    assert dict(report.by_domain) == {"math": 2}


def test_decontamination(tmp_path):
    report = curate(
        rows(), tmp_path, CurateConfig(decontaminate_n=2), benchmark_texts=["please compute b now"]
    )
    assert report.dropped["contaminated"] == 2  # both of b's rows that passed the filters


def test_recipe_loading_rejects_unknown_keys(tmp_path):
    good = tmp_path / "mix.yaml"
    good.write_text(
        "select: {by: perplexity_high, per_problem: 2}\nmix: {domains: {math: 0.7, science: 0.3}, total: 100}\n"
    )
    cfg = load_recipe(good)
    assert cfg.select.per_problem == 2 and cfg.mix.domains == {"math": 0.7, "science": 0.3}
    bad = tmp_path / "bad.yaml"
    bad.write_text("select: {by: random}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: select\.by must be one of .*, got 'random'"):
        load_recipe(bad)
    bad.write_text("mix: {domain: {math: 1}}\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['mix.domain'\]"):
        load_recipe(bad)


# A fixed synthetic stream with every kind of row the pipeline drops, for the exact-report test.
VOCAB = [
    "let",
    "me",
    "try",
    "the",
    "sum",
    "first",
    "then",
    "check",
    "each",
    "term",
    "carefully",
    "since",
    "the",
    "product",
    "grows",
    "quickly",
    "so",
    "we",
    "subtract",
    "and",
    "divide",
    "again",
    "wait",
    "that",
    "overshoots",
    "the",
    "target",
    "alternatively",
    "use",
    "other",
    "pair",
]


def synthetic(n: int = 700, seed: int = 7):
    rng = random.Random(seed)
    earlier: list[str] = []
    for i in range(n):
        q = i // 3
        problem = Problem(
            f"q{q}",
            "math" if q % 5 else "science",
            f"Question {q}: combine the numbers {q} and {q % 7} to reach the target.",
            "1",
            level=str(1 + q % 4),
        )
        words = [
            rng.choice(VOCAB) + (str(rng.randint(0, 99)) if rng.random() < 0.3 else "")
            for _ in range(rng.randint(25, 90))
        ]
        thought, solution, verdict, finish = " ".join(words), "\\boxed{1}", OK, "stop"
        kind = rng.random()
        if kind < 0.04:
            thought = "so the answer is one " * 20
        elif kind < 0.07:
            thought = " ".join(rng.choice(["bcdfgh", "xqzkvb", "trkpln"]) for _ in range(40))
        elif kind < 0.09:
            thought += " 我们需要计算这个数字的和并且检查每一个步骤" * 2
        elif kind < 0.12:
            finish = "length"
        elif kind < 0.22:
            verdict = BAD
        elif kind < 0.24:
            verdict = None
        elif kind < 0.26:
            thought = "too short to count"
        elif kind < 0.36 and earlier:
            thought = rng.choice(earlier)  # an exact duplicate
        elif kind < 0.46 and earlier:
            thought = rng.choice(earlier) + " done"  # a near duplicate
        if len(earlier) < 40:
            earlier.append(thought)
        text = render(thought, solution)
        if kind > 0.995:
            text = text.replace("<|end_of_thought|>", "")  # an unfinished thought
        yield (
            problem,
            Trajectory(
                problem.id,
                text,
                verdict=verdict,
                finish_reason=finish,
                perplexity=round(rng.uniform(1, 9), 2),
                id=f"s{i}",
            ),
        )


# The report on ``synthetic()``, as the pipeline gave it before the speed-ups (issue #5): a change
# to any filter, to the duplicate detection or to the selection shows up here.
SYNTHETIC_REPORT = {
    "seen": 700,
    "kept": 212,
    "dropped": {
        "not_selected": 181,
        "exact_duplicate": 85,
        "wrong_answer": 67,
        "gibberish": 30,
        "repetition": 26,
        "near_duplicate": 23,
        "mixed_language": 23,
        "short_thought": 19,
        "truncated": 14,
        "ungraded": 13,
        "contaminated": 4,
        "thought_unfinished": 3,
    },
    "by_domain": {"math": 168, "science": 44},
    "by_level": {"1": 50, "2": 55, "3": 53, "4": 54},
}
# Checksums of the kept trajectory ids (in order) and of rejects.jsonl, from the same run.
SYNTHETIC_KEPT_CRC, SYNTHETIC_REJECTS_CRC = 2297212277, 3343296227


def test_exact_report_on_a_fixed_synthetic_stream(tmp_path, monkeypatch):
    cfg = CurateConfig(near_dup_threshold=0.8, decontaminate_n=4)
    bench = ["Question 12: combine the", "see question 40 combine the numbers"]
    report = curate(synthetic(), tmp_path / "one", cfg, benchmark_texts=bench)
    assert report.as_dict() == SYNTHETIC_REPORT
    rejects = Counter(r["reason"] for r in read(tmp_path / "one" / "rejects.jsonl"))
    assert rejects == {k: v for k, v in SYNTHETIC_REPORT["dropped"].items() if k != "not_selected"}
    kept = " ".join(r["trajectory_id"] for r in read(tmp_path / "one" / "train.jsonl"))
    assert zlib.crc32(kept.encode()) == SYNTHETIC_KEPT_CRC
    rejects_text = (tmp_path / "one" / "rejects.jsonl").read_text().rstrip("\n")
    assert zlib.crc32(rejects_text.encode()) == SYNTHETIC_REJECTS_CRC
    # many small batches, a window of them in flight in two worker processes: the same files
    monkeypatch.setattr(run, "_BATCH", 16)
    report2 = curate(synthetic(), tmp_path / "two", cfg, benchmark_texts=bench, workers=2)
    assert report2.as_dict() == SYNTHETIC_REPORT
    for name in ("train.jsonl", "rejects.jsonl", "report.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
