"""The CPU demo end to end at toy sizes: every phase runs, the report is written, a rerun resumes."""

import json

import pytest

pytest.importorskip("trl")

from reasonloop.demo import run as demo  # noqa: E402
from reasonloop.demo.run import DemoConfig, run_demo  # noqa: E402

TOY = dict(
    seeds=(0,),
    train_problems=24,
    explore_problems=4,
    test_problems=3,
    hard_test_problems=5,
    hidden_size=16,
    layers=1,
    heads=2,
    max_length=160,
    sft_steps=2,
    batch_size=4,
    dpo_steps=1,
    max_rollouts=2,
    explore_batch=2,
    max_new_tokens=24,
    maj_k=2,
)


def test_demo_runs_every_phase_writes_the_report_and_resumes(tmp_path, monkeypatch):
    cfg = DemoConfig(out=str(tmp_path / "run"), **TOY)
    lines = []
    final = run_demo(cfg, say=lines.append)
    root = tmp_path / "run"
    assert set(final) == {"backbone", "imitate", "improved", "minutes"}
    report = (root / "report.md").read_text()
    assert "| backbone (untrained) |" in report and "control: answer-only SFT" in report
    assert (root / "phases.png").stat().st_size > 0
    steps = {p.stem for p in (root / "steps").glob("*.json")}
    assert {
        "distill",
        "curate",
        "backbone",
        "sft-imitate-s0",
        "explore-s0",
        "sft-rs-sft-s0",
    } <= steps
    assert any(line.startswith("distill:") for line in lines)
    # every held-out set is whole: none of its puzzles is in the training or explore pools
    sets = demo.task_sets(cfg)
    held = {p.problem for k, v in sets.items() if k.startswith("test-") for p in v}
    assert [len(sets[f"test-{k}"]) for k in ("easy", "medium", "hard")] == [3, 3, 5]
    assert "and 5 (hard = 5)" in report and "hard: its first 3 puzzles" in report
    spend = json.loads(
        (root / "evals" / "imitate-s0-k2" / "test-hard" / "metrics.json").read_text()
    )
    greedy = json.loads(
        (root / "evals" / "imitate-s0-k1" / "test-hard" / "metrics.json").read_text()
    )
    assert (spend["n_problems"], greedy["n_problems"]) == (
        3,
        5,
    )  # maj@k on the first test_problems hard puzzles
    assert not held & {p.problem for p in sets["train"] + sets["explore"]}

    # the store holds the training problems with the teacher's traces, as the CLI expects
    from reasonloop.store import open_store

    with open_store(root / "store.db") as st:
        assert st.n_problems() == len(sets["train"]) + len(sets["explore"])

    # a rerun on the same directory redoes nothing: training would fail if it were called
    def no_training(*a, **k):
        raise AssertionError("a finished phase ran again")

    monkeypatch.setattr("reasonloop.train.sft.train_sft", no_training)
    monkeypatch.setattr("reasonloop.train.dpo.train_dpo", no_training)
    again = run_demo(cfg, say=lambda line: None)
    assert again["imitate"] == final["imitate"] and again["improved"] == final["improved"]
    summary = json.loads((root / "summary.json").read_text())
    assert summary["backbone"] == final["backbone"]


def test_sampling_error_of_a_difference_of_two_accuracies():
    # 1.96 * sqrt(0.1 * 0.9 / 100 + 0.2 * 0.8 / 100) = 1.96 * 0.05, in points
    assert demo.sampling_error(10.0, 20.0, 100) == pytest.approx(9.8)
    assert demo.sampling_error(0.0, 0.0, 300) == 0.0
    assert "Larger than both" in demo._verdicts(
        {"h": 0.0}, (10.0, 0.0), (30.0, 0.0), {}, ["h"], 300
    )
    assert "Not larger than both" in demo._verdicts(
        {"h": 0.0}, (10.0, 0.0), (13.0, 0.0), {}, ["h"], 300
    )
