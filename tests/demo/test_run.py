"""The CPU demo end to end at toy sizes: every phase runs, the report is written, a rerun resumes."""

import json
from contextlib import contextmanager

import pytest

pytest.importorskip("trl")

from reasonloop.demo import run as demo  # noqa: E402
from reasonloop.demo.run import DemoConfig  # noqa: E402
from reasonloop.recipe.demo import run_demo  # noqa: E402

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


class Recorder:
    """A Reporter that keeps every line, every task and every progress update."""

    def __init__(self):
        self.lines, self.tasks, self.updates = [], [], {}

    def line(self, text):
        self.lines.append(text)

    @contextmanager
    def task(self, description, total):
        self.tasks.append(description)
        seen = self.updates.setdefault(description, [])

        def update(done, tokens=0, *, total=None, note=None):
            seen.append((done, total, note))

        yield update


def test_demo_runs_every_phase_writes_the_report_and_resumes(tmp_path, monkeypatch):
    cfg = DemoConfig(out=str(tmp_path / "run"), **TOY)
    rec = Recorder()
    final = run_demo(cfg, rec)
    root = tmp_path / "run"
    assert set(final) == {"backbone", "imitate", "improved", "minutes", "table"}
    report = (root / "report.md").read_text()
    assert "| backbone (untrained) |" in report and "control: answer-only SFT" in report
    # what cleaning dropped, from the teacher's traces and from the explored rollouts
    cleaning = report[report.index("## Cleaning") :].splitlines()
    assert [x.split(" | ")[0] for x in cleaning if x.startswith("| D_")] == [
        "| D_0: teacher traces",
        "| D_1 seed 0: correct explored rollouts",
    ]
    # one seed: the report says the seed spread was not measured, and never prints one
    assert "seed spread not measured (one seed: run with --seeds 3 to measure it)" in report
    assert "seed spread (sd" not in report and "than both" not in report
    assert final["table"]["header"][0] == "model"
    assert [row[0] for row in final["table"]["rows"]][:3] == [
        "backbone (untrained)",
        "imitate (SFT on distilled)",
        "explore + RS-SFT (from backbone)",
    ]
    # one progress task per phase, then one summary line naming it
    phases = [
        "distill", "curate", "control-data", "backbone", "eval-backbone-k1", "sft-imitate-s0",
        "eval-imitate-s0-k1", "explore-s0", "rs-data-s0", "sft-rs-sft-s0", "eval-rs-sft-s0-k1",
        "dpo-data-s0",
    ]  # fmt: skip
    assert rec.tasks[: len(phases)] == phases
    assert [line.split(":")[0] for line in rec.lines] == rec.tasks
    assert rec.lines[0].startswith("distill: 24 teacher traces, ")
    # training reports its optimizer steps, out of the total, with the loss once it is logged
    done, total, note = rec.updates["sft-imitate-s0"][-1]
    assert (done, total) == (2, 2) and note.startswith("loss ")
    # evaluation counts problems over all three held-out sets (3 + 3 + 5)
    assert rec.updates["eval-backbone-k1"][-1][0] == 11
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

    # the demo's own names for them (it imports both at module level)
    monkeypatch.setattr("reasonloop.recipe.demo.train_sft", no_training)
    monkeypatch.setattr("reasonloop.recipe.demo.train_dpo", no_training)
    rerun = Recorder()
    again = run_demo(cfg, rerun)
    assert again["imitate"] == final["imitate"] and again["improved"] == final["improved"]
    assert rerun.tasks == [] and all(": done before; " in line for line in rerun.lines)
    assert len(rerun.lines) == len(rec.lines)
    summary = json.loads((root / "summary.json").read_text())
    assert summary["backbone"] == final["backbone"]


def test_grpo_budget_names_a_method():
    from reasonloop.errors import ConfigError

    with pytest.raises(ConfigError, match="grpo_budget must be one of \\['dpo', 'rs-sft'\\]"):
        DemoConfig(grpo_budget="sft")
    with pytest.raises(ConfigError, match="got 'sft'"):
        DemoConfig(grpo_budget=("dpo", "sft"))
    with pytest.raises(ConfigError, match="grpo_budget needs one or more distinct budgets"):
        DemoConfig(grpo_budget=("dpo", "dpo"))
    assert DemoConfig(grpo_budget=("rs-sft", "dpo")).grpo_budgets == ("rs-sft", "dpo")
    assert demo.grpo_name("dpo") == "grpo" and demo.grpo_name("rs-sft") == "grpo-rs-sft"


def test_sampling_error_of_a_difference_of_two_accuracies():
    # 1.96 * sqrt(0.1 * 0.9 / 100 + 0.2 * 0.8 / 100) = 1.96 * 0.05, in points
    assert demo.sampling_error(10.0, 20.0, 100) == pytest.approx(9.8)
    assert demo.sampling_error(0.0, 0.0, 300) == 0.0


def test_paired_error_weighs_only_the_problems_the_two_models_disagree_on(tmp_path):
    from reasonloop.comparison import eval_scores, paired_error
    from reasonloop.evaluate.report import write_report
    from reasonloop.evaluate.summary import Outcome, summarize
    from reasonloop.records import Problem

    # per-problem differences 0, 1, 0, 0: mean 0.25, sample variance 0.25, so
    # 1.96 * sqrt(0.25 / 4) = 0.49, in points
    base = {"a": 1.0, "b": 0.0, "c": 0.0, "d": 0.0}
    assert paired_error(base, {**base, "b": 1.0}) == pytest.approx(49.0)
    assert paired_error(base, base) == 0.0  # full agreement: no error at all
    assert demo.sampling_error(25.0, 50.0, 4) > 49.0  # the unpaired bound is wider
    # two of four samples right: the problem's score is 0.5
    assert paired_error(base, {**base, "b": 0.5}) == pytest.approx(24.5)
    assert paired_error(base, {"a": 1.0, "b": 0.0, "c": 0.0}) is None  # other problems
    assert paired_error({"a": 1.0}, {"a": 0.0}) is None  # one problem: no variance
    # an eval run keeps each problem's score in metrics.json; older runs kept none
    problems = [Problem(id=i, problem=i, answer="1", domain="math") for i in "abc"]
    outcomes = {
        "a": [Outcome("a", "1", True, 3)],
        "b": [Outcome("b", "1", True, 3), Outcome("b", "2", False, 3)],
        "c": [Outcome("c", "2", False, 3), Outcome("c", "2", False, 3)],
    }
    result = summarize("set", "m", "sample", problems, outcomes)
    assert result.scores == {"a": 1.0, "b": 0.5, "c": 0.0}
    write_report(tmp_path, result, outcomes)
    assert eval_scores(tmp_path) == {"a": 1.0, "b": 0.5, "c": 0.0}
    assert eval_scores(tmp_path / "missing") == {}


IMITATION = "- Imitation vs backbone on hard: 10.0% vs 0.0% (imitation helps)."


def test_with_one_seed_the_verdict_says_the_spread_was_not_measured():
    # ±6.2 = 1.96 * sqrt(0.1 * 0.9 / 300 + 0.3 * 0.7 / 300) in points
    assert demo._verdicts({"h": 0.0}, (10.0, 0.0), (30.0, 0.0), {}, ["h"], 300, 1) == (
        f"{IMITATION}\n"
        "- Explore + RS-SFT vs imitation on hard: +20.0 points; sampling error of the difference "
        "on 300 puzzles ±6.2 (95%); seed spread not measured (one seed: run with --seeds 3 to "
        "measure it). Larger than the sampling error: self-improvement helps on this seed."
    )
    # ±5.1: 1.96 * sqrt((0.1 * 0.9 + 0.13 * 0.87) / 300)
    assert demo._verdicts({"h": 0.0}, (10.0, 0.0), (13.0, 0.0), {}, ["h"], 300, 1) == (
        f"{IMITATION}\n"
        "- Explore + RS-SFT vs imitation on hard: +3.0 points; sampling error of the difference "
        "on 300 puzzles ±5.1 (95%); seed spread not measured (one seed: run with --seeds 3 to "
        "measure it). Not larger than the sampling error: no measurable gain from "
        "self-improvement here."
    )


def test_with_several_seeds_the_verdict_weighs_the_gain_against_their_spread():
    assert demo._verdicts({"h": 0.0}, (10.0, 1.0), (30.0, 2.5), {}, ["h"], 300, 3) == (
        f"{IMITATION}\n"
        "- Explore + RS-SFT vs imitation on hard: +20.0 points (mean of 3 seeds); seed spread (sd "
        "over seeds) 2.5, sampling error of the difference on 300 puzzles ±6.2 (95%). Larger "
        "than both: self-improvement helps."
    )
    # +8.0 beats the sampling error (±5.5) but not the seed spread (9.0)
    assert demo._verdicts({"h": 0.0}, (10.0, 9.0), (18.0, 1.0), {}, ["h"], 300, 2) == (
        f"{IMITATION}\n"
        "- Explore + RS-SFT vs imitation on hard: +8.0 points (mean of 2 seeds); seed spread (sd "
        "over seeds) 9.0, sampling error of the difference on 300 puzzles ±5.5 (95%). Not "
        "larger than both: no measurable gain from self-improvement here."
    )


def test_grpo_runs_at_the_cost_of_rs_sft_and_the_report_compares_the_methods(tmp_path):
    """With ``grpo``: GRPO from the imitated student, stopped by a token budget equal to what
    explore + RS-SFT of the same seed spent (``grpo_budget``); the matched-cost table and plot.
    Resumed with a second budget, only that GRPO run (and its eval) is added, under its own name,
    and the report shows both."""
    from dataclasses import replace

    from reasonloop.recipe.demo import DemoRun
    from reasonloop.recipe.steps import marker
    from reasonloop.store import open_store

    cfg = DemoConfig(
        out=str(tmp_path / "run"),
        **{**TOY, "control": False, "maj_k": 1},
        grpo=True,
        grpo_group_size=2,
        grpo_prompts_per_step=2,
        grpo_max_steps=50,
        grpo_budget="rs-sft",
    )
    rec = Recorder()
    run_demo(cfg, rec)
    root = tmp_path / "run"
    assert rec.tasks.index("grpo-rs-sft-s0") > rec.tasks.index("eval-rs-sft-s0-k1")
    assert rec.tasks[rec.tasks.index("grpo-rs-sft-s0") + 1] == "eval-grpo-rs-sft-s0-k1"
    assert "grpo-s0" not in rec.tasks
    costs = DemoRun(cfg).costs(0)
    explore = marker(root, "explore-s0")["generated_tokens"]
    rs = marker(root, "sft-rs-sft-s0")["tokens"]
    assert explore > 0 and rs > 0 and costs["rs-sft"] == explore + rs
    g = marker(root, "grpo-rs-sft-s0")
    assert g["budget"] == costs["rs-sft"]
    assert costs["grpo-rs-sft"] == g["generated_tokens"] + g["trained_tokens"] >= g["budget"]
    assert 1 <= g["steps"] < cfg.grpo_max_steps  # the budget ended it, not the step bound
    # every GRPO rollout is in the demo's store under the run's stage
    with open_store(root / "store.db") as st:
        assert st.count(stage="grpo-rs-sft-s0") == g["rollouts"] == 2 * 2 * g["steps"]
    report = (root / "report.md").read_text()
    assert "| GRPO (from imitate, at RS-SFT's cost) |" in report
    assert "GRPO stops at the step where it has spent what explore + RS-SFT of its seed" in report
    section = report[
        report.index("## Self-improvement at matched cost") : report.index("## Cleaning")
    ]
    rows = [x.split(" | ") for x in section.splitlines() if x.startswith("| ") and "---" not in x]
    by = {r[0].removeprefix("| "): r for r in rows[1:]}
    assert set(by) - {"thought-only DPO"} == {"explore + RS-SFT", "GRPO at RS-SFT's cost"}
    assert by["GRPO at RS-SFT's cost"][2] == f"{costs['grpo-rs-sft'] / 1e6:.2f}"
    assert "GRPO at RS-SFT's cost beats imitation on hard by more than the sampling error in " in (
        section
    )
    # the paired error, from the two evaluations' per-puzzle scores
    from reasonloop.comparison import eval_scores, paired_error

    hard = root / "evals" / "{}-k1" / "test-hard"
    paired = paired_error(
        eval_scores(str(hard).format("imitate-s0")), eval_scores(str(hard).format("grpo-rs-sft-s0"))
    )
    assert paired is not None and by["GRPO at RS-SFT's cost"][5] == f"± {paired:.1f} |"
    assert "; by more than the paired error in " in section
    assert (root / "cost.png").stat().st_size > 0

    both = replace(cfg, grpo_budget=("dpo", "rs-sft"))
    again = Recorder()
    final = run_demo(both, again)
    assert again.tasks == ["grpo-s0", "eval-grpo-s0-k1"]  # the rest was done before
    d = marker(root, "grpo-s0")
    assert d["budget"] == DemoRun(both).costs(0)["dpo"] < g["budget"]
    with open_store(root / "store.db") as st:
        assert st.count(stage="grpo-s0") == d["rollouts"]
        assert st.count(stage="grpo-rs-sft-s0") == g["rollouts"]  # untouched
    report = (root / "report.md").read_text()
    assert "| GRPO (from imitate, at DPO's cost) |" in report
    assert "| GRPO (from imitate, at RS-SFT's cost) |" in report
    section = report[report.index("## Self-improvement at matched cost") :]
    assert "| GRPO at DPO's cost | 0 |" in section and "| GRPO at RS-SFT's cost | 0 |" in section
    assert {"grpo", "grpo-rs-sft"} <= set(final)
