import json

import pytest

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
    with pytest.raises(ConfigError, match="select.by: 'random'"):
        load_recipe(bad)
    bad.write_text("mix: {domain: {math: 1}}\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['mix.domain'\]"):
        load_recipe(bad)
