"""ORM / PRM / GenRM training on tiny models from a store, and the saved dirs as scorers."""

import json
import math
import subprocess
import sys

import pytest
import torch

from reasonloop.errors import ConfigError
from reasonloop.format import render
from reasonloop.records import Problem, StepLabel, Trajectory, Verdict
from reasonloop.search import RewardModelScorer, make_scorer
from reasonloop.search.steps import response_steps
from reasonloop.store import open_store
from reasonloop.store.export import stepwise_rows
from reasonloop.train.rm import (
    RMSettings,
    held_out_problems,
    outcome_pairs,
    prm_features,
    prm_loss,
    train_rm,
    verification_rows,
)
from reasonloop.train.rmcontract import ORM, PRM, GenRM, prm_ids, question_for
from reasonloop.train.sft import LoraSettings

PROBLEMS = [Problem(f"p{i}", "math", f"add {i} and 2", str(i + 2)) for i in range(3)]


def traj(pid, text, correct, i=0):
    return Trajectory(
        pid,
        text,
        verdict=Verdict(correct, None, "correct" if correct else "wrong"),
        id=f"{pid}-{i}",
    )


def response(i, answer):
    return render(f"{i} plus 2.\n\nso {answer}", f"\\boxed{{{answer}}}")


def trajectories():
    out = []
    for k, p in enumerate(PROBLEMS):
        i = int(p.answer) - 2
        out.append(traj(p.id, response(i, i + 2), True, 0))
        out.append(traj(p.id, response(i, i + 3), False, 1))
        if k == 0:
            out.append(traj(p.id, response(i, i + 4), False, 2))
    return out


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "pool.db"
    with open_store(path) as st:
        st.add_problems(PROBLEMS)
        ts = trajectories()
        st.add_trajectories(ts, stage="explore")
        labels = []
        for t in ts:
            steps = response_steps(t.text)
            for k in range(len(steps)):
                good = t.verdict.correct or k == 0
                labels.append(StepLabel(t.problem_id, t.id, k, steps[: k + 1], 4, 3 if good else 0))
        st.add_step_labels(labels, labeler="test")
    return path


@pytest.fixture
def base(tmp_path, make_tiny):
    model, tok = make_tiny()
    path = tmp_path / "base"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path, model


def settings(kind, store_path, base_path, out, **kw):
    return RMSettings(
        kind=kind,
        model=str(base_path),
        store=str(store_path),
        output_dir=str(out),
        max_steps=2,
        batch_size=2,
        learning_rate=1e-2,
        max_length=256,
        logging_steps=1,
        **kw,
    )


# --- data -----------------------------------------------------------------------------------------


def test_outcome_pairs_use_every_trajectory_once_and_never_repeat():
    ts = trajectories()
    pairs = outcome_pairs(ts)
    assert [(a.id, b.id) for a, b in pairs] == [
        ("p0-0", "p0-1"),
        ("p0-0", "p0-2"),
        ("p1-0", "p1-1"),
        ("p2-0", "p2-1"),
    ]
    assert [(a.id, b.id) for a, b in outcome_pairs(ts, 1)] == [
        ("p0-0", "p0-1"),
        ("p1-0", "p1-1"),
        ("p2-0", "p2-1"),
    ]
    only_right = [t for t in ts if t.verdict.correct]
    assert outcome_pairs(only_right) == []


def test_held_out_problems_are_a_seeded_share_of_the_distinct_ids():
    ids = [f"p{i}" for i in range(10)]
    assert held_out_problems(ids, 0.1, 0) == {"p6"}
    assert held_out_problems(ids, 0.1, 1) == {"p2"}
    assert held_out_problems(ids, 0.25, 0) == {"p0", "p6", "p9"}  # 2.5 rounds up to 3
    # the split depends on the ids and the seed, not on their order or repeats
    assert held_out_problems(ids[::-1] + ids, 0.1, 0) == {"p6"}
    # the store's three problems: which one each seed holds out
    assert [held_out_problems(["p2", "p1", "p0"], 0.1, seed) for seed in range(4)] == [
        {"p1"},
        {"p0"},
        {"p0"},
        {"p0"},
    ]
    # at least one of two or more; never all; none of one, or with fraction 0
    assert held_out_problems(["a", "b"], 0.01, 0) == {"b"}
    assert held_out_problems(["a", "b", "c"], 0.9, 0) == {"b", "c"}
    assert held_out_problems(["a"], 0.5, 0) == set()
    assert held_out_problems(ids, 0.0, 0) == set()


def test_eval_fraction_must_be_a_share():
    with pytest.raises(ConfigError, match="eval_fraction must be >= 0 and < 1, got 1.0"):
        RMSettings(kind="orm", model="m", store="s", output_dir="o", eval_fraction=1.0)


def test_verification_rows_answer_yes_for_correct_and_no_for_incorrect():
    ts = trajectories()[:2]
    problems = {p.id: p for p in PROBLEMS}
    sft = verification_rows(ts, problems, "sft")
    assert [r["messages"][1]["content"] for r in sft] == ["Yes", "No"]
    assert sft[0]["messages"][0]["content"].startswith("add 0 and 2\n\nProposed response:\n")
    assert sft[0]["messages"][0]["content"].endswith("Is the answer correct? Answer Yes or No.")
    dpo = verification_rows(ts, problems, "dpo")
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in dpo] == [
        ("Yes", "No"),
        ("No", "Yes"),
    ]


def test_balanced_verification_rows_come_from_outcome_pairs():
    ts = trajectories() + [traj("p9", response(7, 9), False, 0)]  # a problem never solved
    problems = {p.id: p for p in PROBLEMS} | {"p9": Problem("p9", "math", "add 7 and 2", "9")}
    assert len(verification_rows(ts, problems, "sft")) == 8
    rows = verification_rows(ts, problems, "sft", balance_pairs=4)
    # p0's one correct trajectory is paired with both wrong ones, so it says Yes twice
    assert [r["messages"][1]["content"] for r in rows] == ["Yes", "No"] * 4
    assert [r["messages"][0]["content"].split("\n")[0] for r in rows] == [
        "add 0 and 2", "add 0 and 2", "add 0 and 2", "add 0 and 2",
        "add 1 and 2", "add 1 and 2", "add 2 and 2", "add 2 and 2",
    ]  # fmt: skip
    one = verification_rows(ts, problems, "dpo", balance_pairs=1)
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in one] == [
        ("Yes", "No"),
        ("No", "Yes"),
    ] * 3


def test_prm_inputs_put_each_label_on_the_last_separator_token(tiny):
    _, tok = tiny
    ids, ends = prm_ids(tok, "q?", ["ab", "c"], 100)
    # the character tokenizer: q ? \n \n a b \n \n c \n \n
    assert tok.convert_ids_to_tokens(ids) == list("q?\n\nab\n\nc\n\n")
    assert ends == [7, 10]
    cut, cut_ends = prm_ids(tok, "q?", ["ab", "c"], 5)  # the start is cut
    assert tok.convert_ids_to_tokens(cut) == list("b\n\nc\n\n")[-5:]
    assert cut_ends == [1, 4]
    (feat,) = prm_features(
        tok, [{"prompt": "q?", "completions": ["ab", "c"], "labels": [True, False]}], 100
    )
    assert feat["labels"] == [-100.0] * 7 + [1.0, -100.0, -100.0, 0.0]
    (soft,) = prm_features(
        tok, [{"prompt": "q?", "completions": ["ab", "c"], "labels": [0.25, 1.0]}], 5
    )
    assert soft["labels"] == [-100.0, 0.25, -100.0, -100.0, 1.0]


def test_prm_loss_is_bce_on_labelled_positions_only():
    logits = torch.tensor([[[0.0], [2.0], [-1.0]]])
    labels = torch.tensor([[-100.0, 1.0, 0.25]])
    expected = (
        -math.log(1 / (1 + math.exp(-2.0)))
        - (0.25 * math.log(1 / (1 + math.exp(1.0))) + 0.75 * math.log(1 - 1 / (1 + math.exp(1.0))))
    ) / 2
    assert prm_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)


# --- training -------------------------------------------------------------------------------------


def q_proj(model):
    for name, p in model.named_parameters():
        if "layers.0.self_attn.q_proj" in name and "lora" not in name:
            return p.detach()
    raise AssertionError("no q_proj")


def lora_b_nonzero(model):
    bs = [p for n, p in model.named_parameters() if "lora_B" in n]
    return bool(bs) and any(p.abs().sum() > 0 for p in bs)


@pytest.mark.slow
@pytest.mark.parametrize("lora", [False, True])
def test_orm_two_steps_then_scores_as_a_scorer(store_path, base, tmp_path, lora):
    base_path, base_model = base
    out = tmp_path / "orm"
    s = settings(
        "orm",
        store_path,
        base_path,
        out,
        lora=LoraSettings(r=4, alpha=8) if lora else None,
        seed=1,  # holds out p0, the problem with two pairs
    )
    m = train_rm(s)
    assert m["global_step"] == 2 and math.isfinite(m["train_loss"])
    scorer = make_scorer(f"orm:{out}")
    assert isinstance(scorer, ORM)
    # trained on p1's and p2's pairs; measured on p0's two pairs with the saved model
    assert json.loads((out / "reasonloop_train.json").read_text())["pairs"] == 2
    p0 = {p.id: p for p in PROBLEMS}
    held = [(a, b) for a, b in outcome_pairs(trajectories()) if a.problem_id == "p0"]
    assert [(a.id, b.id) for a, b in held] == [("p0-0", "p0-1"), ("p0-0", "p0-2")]
    right = sum(
        scorer.logit(question_for(p0["p0"]), a.text) > scorer.logit(question_for(p0["p0"]), b.text)
        for a, b in held
    )
    assert m["heldout"] == {
        "unit": "pairs",
        "problems": 1,
        "total": 2,
        "correct": right,
        "accuracy": right / 2,
    }
    if lora:
        assert lora_b_nonzero(scorer.model)
    else:
        assert not torch.equal(q_proj(scorer.model), q_proj(base_model))
    p = PROBLEMS[0]
    a = scorer.score(p, None, response(0, 2))
    assert 0.0 < a < 1.0 and a == scorer.score(p, None, response(0, 2))
    assert a != scorer.score(p, None, response(0, 3))
    with pytest.raises(Exception, match="holds a 'orm' model"):
        make_scorer(f"prm:{out}")


@pytest.mark.slow
@pytest.mark.parametrize("lora,labels", [(False, "hard"), (True, "soft")])
def test_prm_two_steps_then_scores_every_step(store_path, base, tmp_path, lora, labels):
    base_path, base_model = base
    out = tmp_path / "prm"
    s = settings(
        "prm",
        store_path,
        base_path,
        out,
        labels=labels,
        lora=LoraSettings(r=4, alpha=8) if lora else None,
    )
    m = train_rm(s)
    assert m["global_step"] == 2 and math.isfinite(m["train_loss"])
    scorer = make_scorer(f"prm:{out}", aggregate="last")
    assert isinstance(scorer, RewardModelScorer) and isinstance(scorer.model, PRM)
    prm = scorer.model
    # held out: seed 0's share of the three problems (told apart by their prompt); its steps
    # measured with the saved model, against the labels on the same side of 0.5
    with open_store(store_path) as st:
        rows = list(stepwise_rows(st, soft=labels == "soft"))
    held = held_out_problems([r["prompt"] for r in rows], 0.1, 0)
    assert len(held) == 1
    test = [r for r in rows if r["prompt"] in held]
    pairs = [
        (p, y)
        for r in test
        for p, y in zip(prm.step_scores(r["prompt"], r["completions"]), r["labels"], strict=True)
    ]
    right = sum((p > 0.5) == (float(y) > 0.5) for p, y in pairs)
    assert m["heldout"] == {
        "unit": "steps",
        "problems": 1,
        "total": len(pairs),
        "correct": right,
        "accuracy": right / len(pairs),
    }
    assert len(pairs) == sum(len(r["labels"]) for r in test) > 0
    saved = json.loads((out / "reasonloop_train.json").read_text())
    assert saved["trajectories"] == len(rows) - len(test)
    if lora:
        assert lora_b_nonzero(prm.model)
    else:
        assert not torch.equal(q_proj(prm.model), q_proj(base_model))
    text = response(0, 2)
    steps = response_steps(text)
    per_step = prm(PROBLEMS[0], None, steps)
    assert len(per_step) == len(steps) == 3 and all(0 < x < 1 for x in per_step)
    assert scorer.score(PROBLEMS[0], None, text) == pytest.approx(per_step[-1])
    assert prm.step_scores(question_for(PROBLEMS[0]), steps[:2]) == pytest.approx(per_step[:2])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sft", "dpo"])
def test_genrm_two_steps_then_p_yes(store_path, base, tmp_path, method):
    base_path, base_model = base
    out = tmp_path / "genrm"
    m = train_rm(settings("genrm", store_path, base_path, out, method=method))
    assert m["global_step"] == 2 and math.isfinite(m["train_loss"])
    scorer = make_scorer(f"genrm:{out}")
    assert isinstance(scorer, GenRM)
    # seed 0 holds out p1: its two trajectories are judged by the saved model, not trained on
    held = [t for t in trajectories() if t.problem_id == "p1"]
    right = sum((scorer.score(PROBLEMS[1], None, t.text) > 0.5) == t.verdict.correct for t in held)
    assert m["heldout"] == {
        "unit": "answers",
        "problems": 1,
        "total": 2,
        "correct": right,
        "accuracy": right / 2,
    }
    assert json.loads((out / "reasonloop_train.json").read_text())["rows"] == 5
    assert not torch.equal(q_proj(scorer.engine.lm), q_proj(base_model))
    a = scorer.score(PROBLEMS[0], None, response(0, 2))
    assert 0.0 < a < 1.0


@pytest.mark.slow
def test_train_prm_from_the_command_line(store_path, base, tmp_path):
    base_path, _ = base
    args = ["train", "prm", "--store", str(store_path), "--model", str(base_path)]
    args += ["--out", str(tmp_path / "cli-prm"), "--max-steps", "1", "--batch-size", "2"]
    r = subprocess.run(
        [sys.executable, "-c", "from reasonloop.cli import main; main()", *args]
        + ["--eval-fraction", "0"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert "prm: 1 steps" in r.stdout and (tmp_path / "cli-prm" / "config.json").exists()
    assert "no held-out steps (nothing to measure accuracy on: see --eval-fraction)" in r.stdout
    saved = json.loads((tmp_path / "cli-prm" / "reasonloop_train.json").read_text())
    assert saved["metrics"]["heldout"]["accuracy"] is None
    assert saved["trajectories"] == 7  # every labelled trajectory was trained on
    bad = subprocess.run(
        [
            sys.executable,
            "-c",
            "from reasonloop.cli import main; main()",
            *args[:-4],
            "--out",
            str(tmp_path / "x"),
            "--labels",
            "fuzzy",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert (
        bad.returncode == 2
        and bad.stderr == "error: labels must be one of hard, soft, got 'fuzzy'\n"
    )


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["orm", "genrm"])
def test_train_orm_and_genrm_from_the_command_line(kind, store_path, base, tmp_path):
    base_path, _ = base
    out = tmp_path / f"cli-{kind}"
    args = ["train", kind, "--store", str(store_path), "--model", str(base_path), "--out", str(out)]
    args += ["--pairs-per-problem", "1"] + (["--balance"] if kind == "genrm" else [])
    r = subprocess.run(
        [sys.executable, "-c", "from reasonloop.cli import main; main()", *args]
        + ["--max-steps", "1", "--batch-size", "2", "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert f"{kind}: 1 steps" in r.stdout
    saved = json.loads((out / "reasonloop_train.json").read_text())
    assert saved["settings"]["seed"] == 3 and saved["settings"]["store"] == str(store_path)
    assert saved["settings"]["pairs_per_problem"] == 1
    assert saved["settings"]["eval_fraction"] == 0.1
    h = saved["metrics"]["heldout"]
    unit, name = ("pairs", "pair") if kind == "orm" else ("answers", "Yes/No")
    # seed 3 holds out p0: its one pair (--pairs-per-problem 1), or that pair's two answers
    assert (h["unit"], h["problems"], h["total"]) == (unit, 1, 1 if kind == "orm" else 2)
    assert (
        f"held-out {name} accuracy {h['accuracy']:.3f} ({h['correct']} of {h['total']} {unit}, "
        "1 problem)" in r.stdout
    )
    if kind == "genrm":  # --balance: one Yes and one No row per problem's first pair
        assert saved["settings"]["balance"] is True and saved["rows"] == 4
