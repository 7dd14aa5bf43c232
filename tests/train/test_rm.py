"""ORM / PRM / GenRM training on tiny models from a store, and the saved dirs as scorers."""

import json
import math
import subprocess
import sys
from collections import Counter

import pytest
import torch

from reasonloop.errors import ConfigError, DataError
from reasonloop.format import render
from reasonloop.problems.countdown import Puzzle, problem_text
from reasonloop.records import Problem, StepLabel, Trajectory, Verdict
from reasonloop.search import RewardModelScorer, make_scorer
from reasonloop.search.steps import response_steps
from reasonloop.store import open_store
from reasonloop.store.export import stepwise_rows
from reasonloop.train.rm import (
    RMSettings,
    generation_count,
    genrm_rows,
    held_out_problems,
    outcome_pairs,
    prm_features,
    prm_loss,
    train_rm,
    verification_rationale,
    verification_rows,
)
from reasonloop.train.rmcontract import (
    ORM,
    PRM,
    VERIFY_QUESTION,
    GenRM,
    GenRMCoT,
    prm_ids,
    question_for,
    rationale_prompt,
)
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


def genrm_settings(**kw):
    return RMSettings(kind="genrm", model="m", store="s", output_dir="o", **kw)


def test_generation_count_is_the_ratio_rounded_half_up():
    assert [generation_count(10, r) for r in (0, 0.3, 0.5, 1, 2.5)] == [0, 3, 5, 10, 25]
    assert generation_count(7, 0.5) == 4  # 3.5 rounds up
    assert generation_count(5, 0.1) == 1  # 0.5 rounds up
    assert generation_count(0, 3.0) == 0


@pytest.mark.parametrize(
    "ratio,held,verify,counts",
    [
        # 7 verification rows; the three correct trajectories (p0-0, p1-0, p2-0) are the pool
        (0.5, set(), 7, [2, 1, 1]),  # 3.5 -> 4 rows: each once, then one again
        (1.0, set(), 7, [3, 2, 2]),  # 7 rows
        (2.0, set(), 7, [5, 5, 4]),  # 14 rows
        (0.3, set(), 7, [1, 1]),  # 2.1 -> 2 rows
        (0.0, set(), 7, []),
        # p1 held out: its two trajectories give no row of either kind
        (0.5, {"p1"}, 5, [2, 1]),  # 2.5 -> 3 rows from p0-0 and p2-0
    ],
)
def test_genrm_mixture_holds_the_configured_ratio(ratio, held, verify, counts):
    problems = {p.id: p for p in PROBLEMS}
    texts = {t.text: t for t in trajectories()}
    rows, n_verify = genrm_rows(
        genrm_settings(generation_ratio=ratio), trajectories(), problems, held
    )
    assert n_verify == verify
    ver, gen = rows[:n_verify], rows[n_verify:]
    assert all(r["messages"][-1]["content"] in ("Yes", "No") for r in ver)
    assert len(gen) == generation_count(verify, ratio) == sum(counts)
    # a generation row: the problem's prompt answered with one of its correct trajectories
    used = [texts[r["messages"][1]["content"]] for r in gen]
    assert all(t.verdict.correct and t.problem_id not in held for t in used)
    assert [r["messages"][0] for r in gen] == [
        {"role": "user", "content": question_for(problems[t.problem_id])} for t in used
    ]
    assert sorted(Counter(t.id for t in used).values(), reverse=True) == counts
    # seeded: the same rows again
    assert (
        genrm_rows(genrm_settings(generation_ratio=ratio), trajectories(), problems, held)[0]
        == rows
    )


def test_genrm_mixture_needs_correct_solutions_and_is_sft_only():
    problems = {p.id: p for p in PROBLEMS}
    wrong_only = [t for t in trajectories() if not t.verdict.correct]
    with pytest.raises(DataError, match="no correct trajectory to make the 2 generation rows"):
        genrm_rows(genrm_settings(), wrong_only, problems, set())
    rows, n = genrm_rows(genrm_settings(generation_ratio=0), wrong_only, problems, set())
    assert len(rows) == n == 4
    dpo, n = genrm_rows(genrm_settings(method="dpo"), trajectories(), problems, set())
    assert len(dpo) == n == 7 and all("chosen" in r for r in dpo)  # preferences: no generation
    with pytest.raises(ConfigError, match="verification 'cot' needs method 'sft'"):
        genrm_settings(method="dpo", verification="cot")
    with pytest.raises(ConfigError, match="generation_ratio must be >= 0"):
        genrm_settings(generation_ratio=-1)


CD = Problem("cd", "puzzle", problem_text(Puzzle((2, 6, 7, 21), 55)), "55", source="countdown")


def test_cot_rows_teach_the_checkers_rationale_then_the_answer():
    def cd(i, answer, correct):
        verdict = Verdict(correct, None, "correct" if correct else "wrong")
        text = render("try", f"Answer: \\boxed{{{answer}}}")
        return Trajectory("cd", text, verdict=verdict, id=f"cd-{i}")

    right = cd(0, "2*21=42, 42+7=49, 49+6=55", True)
    wrong = cd(1, "2*21+7", False)
    stale = cd(2, "21+21+7+6", True)  # graded correct by an older checker: 21 is used twice
    problems = {"cd": CD, "p0": PROBLEMS[0]}
    rows = verification_rows([right, wrong, stale], problems, verification="cot")
    assert len(rows) == 4  # two per trajectory; the stale verdict (an older checker's) gives none
    q = question_for(CD)
    rationale = (
        "Check the answer step by step with 2 6 7 21, target 55.\n"
        "2*21=42: right.\n42+7=49: right.\n49+6=55: right.\nIt reaches 55."
    )
    ask = {"role": "user", "content": rationale_prompt(q, right.text)}
    said = {"role": "assistant", "content": rationale}
    assert rows[0] == {"messages": [ask, said]}
    assert rows[1] == {
        "messages": [
            ask,
            said,
            {"role": "user", "content": VERIFY_QUESTION},
            {"role": "assistant", "content": "Yes"},
        ]
    }
    assert rows[2]["messages"][1]["content"].endswith("42+7=49: right.\nIt ends at 49, not 55.")
    assert rows[3]["messages"][-1] == {"role": "assistant", "content": "No"}
    # other domains: the grader's finding in a fixed sentence (the named shortcut)
    math_wrong = Trajectory("p0", "x", verdict=Verdict(False, "3", "wrong"), id="m")
    assert verification_rationale(PROBLEMS[0], math_wrong) == (
        False,
        "The final answer is 3. It is not the right answer.",
    )
    none = Trajectory("p0", "x", verdict=Verdict(False, None, "no_answer"), id="n")
    assert verification_rationale(PROBLEMS[0], none) == (
        False,
        "The response gives no final answer.",
    )
    assert verification_rationale(CD, stale) is None


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
    # and as a pair: does p1's correct trajectory get the higher P(Yes)?
    good, bad = (scorer.score(PROBLEMS[1], None, t.text) for t in held)
    assert m["heldout_pairs"] == {
        "unit": "pairs",
        "problems": 1,
        "total": 1,
        "correct": int(good > bad),
        "accuracy": float(good > bad),
    }
    saved = json.loads((out / "reasonloop_train.json").read_text())
    # p0's three and p2's two trajectories; sft mixes in 0.5 generation rows per one (2.5 -> 3)
    expected = (8, 5, 3) if method == "sft" else (5, 5, 0)
    assert (saved["rows"], saved["verification_rows"], saved["generation_rows"]) == expected
    assert saved["verification"] == "direct"
    assert not torch.equal(q_proj(scorer.engine.lm), q_proj(base_model))
    a = scorer.score(PROBLEMS[0], None, response(0, 2))
    assert 0.0 < a < 1.0


@pytest.mark.slow
def test_genrm_cot_two_steps_then_averages_sampled_verifications(store_path, base, tmp_path):
    base_path, _ = base
    out = tmp_path / "genrm-cot"
    m = train_rm(settings("genrm", store_path, base_path, out, verification="cot"))
    assert m["global_step"] == 2 and math.isfinite(m["train_loss"])
    saved = json.loads((out / "reasonloop_train.json").read_text())
    # seed 0 holds out p1: p0's three and p2's two trajectories, two rows each; 0.5 -> 5 more
    assert (saved["verification_rows"], saved["generation_rows"]) == (10, 5)
    assert saved["verification"] == "cot"
    data = [json.loads(x) for x in (out / "genrm_data.jsonl").read_text().splitlines()]
    assert [len(r["messages"]) for r in data[:2]] == [2, 4]
    assert (
        data[0]["messages"][1]["content"] == "The final answer is unclear. It is the right answer."
    )
    scorer = make_scorer(f"genrm-cot:{out}")
    assert isinstance(scorer, GenRMCoT) and scorer.votes == 4
    held = [t for t in trajectories() if t.problem_id == "p1"]
    scores = [scorer.score(PROBLEMS[1], None, t.text) for t in held]
    votes = scorer.verifications(question_for(PROBLEMS[1]), held[0].text)
    assert len(votes) == 4 and scores[0] == pytest.approx(sum(p for _, p in votes) / 4)
    right = sum((p > 0.5) == t.verdict.correct for p, t in zip(scores, held, strict=True))
    assert m["heldout"] == {
        "unit": "answers",
        "problems": 1,
        "total": 2,
        "correct": right,
        "accuracy": right / 2,
    }
    with pytest.raises(ConfigError, match="score it with genrm-cot:"):
        make_scorer(f"genrm:{out}")


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
        assert saved["settings"]["balance"] is True and saved["verification_rows"] == 4
        assert saved["generation_rows"] == 2 and saved["rows"] == 6  # 0.5 per verification row
        hp = saved["metrics"]["heldout_pairs"]
        assert (hp["unit"], hp["total"]) == ("pairs", 1)
        assert f"held-out pair accuracy {hp['accuracy']:.3f} (" in r.stdout
