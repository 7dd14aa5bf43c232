"""V-STaR: the solution pairs, the likelihood score by hand, a real training run, the recipe step."""

import json
import math
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from reasonloop.engines.hf import HFEngine
from reasonloop.errors import ConfigError, DataError
from reasonloop.format import SYSTEM_PROMPT, render
from reasonloop.records import Problem, Trajectory, Verdict
from reasonloop.search import make_scorer
from reasonloop.store import open_store
from reasonloop.train.vstar import (
    VStar,
    VStarSettings,
    load_solutions,
    read_solutions,
    train_vstar,
    verifier_prompt,
    vstar_pairs,
)

PROBLEMS = [Problem(f"p{i}", "math", f"add {i} and 2", str(i + 2)) for i in range(4)]


def traj(pid, name, correct):
    verdict = None if correct is None else Verdict(correct, None, "correct" if correct else "wrong")
    return Trajectory(pid, f"{pid} {name}", verdict=verdict, id=f"{pid}-{name}")


def ids(pairs):
    return [(a.id, b.id) for a, b in pairs]


# --- pairs ----------------------------------------------------------------------------------------


def two_right_three_wrong(pid="p0"):
    # interleaved as a store returns them, with an ungraded one that never pairs
    return [
        traj(pid, "w0", False),
        traj(pid, "c0", True),
        traj(pid, "w1", False),
        traj(pid, "u", None),
        traj(pid, "c1", True),
        traj(pid, "w2", False),
    ]


def test_pairs_are_the_product_of_correct_and_incorrect():
    ts = two_right_three_wrong()
    product = [
        ("p0-c0", "p0-w0"), ("p0-c0", "p0-w1"), ("p0-c0", "p0-w2"),
        ("p0-c1", "p0-w0"), ("p0-c1", "p0-w1"), ("p0-c1", "p0-w2"),
    ]  # fmt: skip
    assert ids(vstar_pairs(ts, None, 0)) == product
    assert ids(vstar_pairs(ts, 6, 0)) == product  # a cap at the product's size takes it all
    assert ids(vstar_pairs(ts, 100, 7)) == product


def test_pairs_over_the_cap_are_drawn_with_the_seed_in_product_order():
    ts = two_right_three_wrong()
    # random.Random("0:p0").sample(range(6), 4) is {0, 1, 2, 4}; seed 1 draws {0, 1, 3, 5}
    assert ids(vstar_pairs(ts, 4, 0)) == [
        ("p0-c0", "p0-w0"), ("p0-c0", "p0-w1"), ("p0-c0", "p0-w2"), ("p0-c1", "p0-w1"),
    ]  # fmt: skip
    assert ids(vstar_pairs(ts, 4, 1)) == [
        ("p0-c0", "p0-w0"), ("p0-c0", "p0-w1"), ("p0-c1", "p0-w0"), ("p0-c1", "p0-w2"),
    ]  # fmt: skip
    assert ids(vstar_pairs(ts, 1, 0)) == [("p0-c0", "p0-w2")]  # index 2
    assert ids(vstar_pairs(ts, 1, 1)) == [("p0-c0", "p0-w0")]  # index 0
    # a problem's draw depends on its id and the seed, not on the other problems
    others = [traj("p1", "c", True), traj("p1", "w", False), traj("p2", "c", True)]
    both = vstar_pairs(others + ts, 4, 0)
    assert ids(both) == [("p1-c", "p1-w")] + ids(vstar_pairs(ts, 4, 0))


# --- the score ------------------------------------------------------------------------------------


def hand_logprobs(model, tok, question, response):
    """log π(response | question) per response token, from the model's raw logits: the chat
    template's text, one token per character, each token's logit minus the log-sum-exp of its
    row (computed with math, not torch)."""
    prompt = f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"  # the tiny template
    full = tok(prompt + response, add_special_tokens=False)["input_ids"]
    n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
    assert len(full) == n_prompt + len(response)  # the character tokenizer
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([full])).logits[0].tolist()
    out = []
    for pos in range(n_prompt, len(full)):
        row = logits[pos - 1]
        top = max(row)
        lse = top + math.log(sum(math.exp(x - top) for x in row))
        out.append(row[full[pos]] - lse)
    return out


def test_the_score_is_the_summed_or_mean_log_prob_of_the_response(make_tiny):
    model, tok = make_tiny(seed=3)
    model.eval()
    engine = HFEngine("tiny", model=model, tokenizer=tok)
    problem = PROBLEMS[1]
    response = "1 plus 2 is 3."
    hand = hand_logprobs(model, tok, "add 1 and 2", response)
    assert len(hand) == 14 and all(x < 0 for x in hand)
    summed = VStar(engine=engine, system_prompt=False)
    mean = VStar(engine=engine, aggregate="mean", system_prompt=False)
    assert summed.score(problem, None, response) == pytest.approx(sum(hand), rel=1e-5)
    assert mean.score(problem, None, response) == pytest.approx(sum(hand) / 14, rel=1e-5)
    assert summed.with_aggregate("mean").score(problem, None, response) == pytest.approx(
        sum(hand) / 14, rel=1e-5
    )
    # the prompt is rebuilt from the problem, whatever the strategy sampled with
    assert summed.score(problem, "anything", response) == summed.score(problem, None, response)
    # an empty response never outranks a real one
    assert summed.score(problem, None, "") == -math.inf == mean.score(problem, None, "")
    with pytest.raises(ConfigError, match="aggregate must be one of"):
        VStar(engine=engine, aggregate="min")


def test_the_prompt_is_the_generators():
    assert [(m.role, m.content) for m in verifier_prompt("q?", False)] == [("user", "q?")]
    assert [(m.role, m.content) for m in verifier_prompt("q?", True)] == [
        ("system", SYSTEM_PROMPT),
        ("user", "q?"),
    ]


# --- data from JSONL ------------------------------------------------------------------------------


def test_jsonl_solutions_and_their_errors(tmp_path, write_jsonl):
    good = write_jsonl(
        tmp_path / "ok.jsonl",
        [
            {"problem_id": "p0", "prompt": "add 0 and 2", "response": "a", "correct": True},
            {"problem_id": "p0", "prompt": "add 0 and 2", "response": "b", "correct": False},
        ],
    )
    trajs, questions = read_solutions(good)
    assert [(t.problem_id, t.text, t.verdict.correct, t.id) for t in trajs] == [
        ("p0", "a", True, f"{good}:1"),
        ("p0", "b", False, f"{good}:2"),
    ]
    assert questions == {"p0": "add 0 and 2"}
    cases = [
        ({"problem_id": "p0", "prompt": "q", "response": "a", "correct": "yes"}, "correct"),
        ({"problem_id": "p0", "prompt": "q", "correct": True}, "response"),
        ({"problem_id": "p0", "prompt": "other", "response": "a", "correct": True}, "prompt"),
    ]
    first = {"problem_id": "p0", "prompt": "q", "response": "a", "correct": True}
    for row, field in cases:
        path = write_jsonl(tmp_path / "bad.jsonl", [first, row])
        with pytest.raises(DataError) as err:
            read_solutions(path)
        assert (err.value.where, err.value.field) == (f"{path}:2", field)
    with pytest.raises(ConfigError, match="either --store"):
        load_solutions(VStarSettings("m", "o"))
    with pytest.raises(ConfigError, match="either --store"):
        load_solutions(VStarSettings("m", "o", store="s", data=str(good)))


# --- training -------------------------------------------------------------------------------------


def response(i, answer):
    return render(f"{i} plus 2.\n\nso {answer}", f"\\boxed{{{answer}}}")


def stored_trajectories():
    """p0: 2 correct x 3 wrong (6 pairs); p1..p3: 1 x 1 each."""
    out = []
    for p in PROBLEMS:
        i = int(p.answer) - 2
        right = [i + 2] if p.id != "p0" else [i + 2, f"{i + 2}.0"]
        wrong = [i + 3] if p.id != "p0" else [i + 3, i + 4, i + 5]
        for k, a in enumerate(right):
            v = Verdict(True, str(a), "correct")
            out.append(Trajectory(p.id, response(i, a), verdict=v, id=f"{p.id}-c{k}"))
        for k, a in enumerate(wrong):
            v = Verdict(False, str(a), "wrong")
            out.append(Trajectory(p.id, response(i, a), verdict=v, id=f"{p.id}-w{k}"))
    return out


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "pool.db"
    with open_store(path) as st:
        st.add_problems(PROBLEMS)
        ts = stored_trajectories()
        st.add_trajectories(ts[:7], stage="explore-r1")  # p0's five, p1's two
        st.add_trajectories(ts[7:], stage="explore-r2")  # p2's and p3's
    return path


def q_proj(model):
    for name, p in model.named_parameters():
        if "layers.0.self_attn.q_proj" in name and "lora" not in name:
            return p.detach().clone()
    raise AssertionError("no q_proj")


@pytest.mark.slow
def test_train_vstar_changes_the_model_and_measures_held_out_pairs(store_path, base, tmp_path):
    base_path, base_model = base
    out = tmp_path / "vstar"
    s = VStarSettings(
        model=str(base_path),
        output_dir=str(out),
        store=str(store_path),
        stages=("explore-r1", "explore-r2"),
        pairs_per_problem=4,
        eval_fraction=0.25,
        system_prompt=False,
        max_steps=2,
        batch_size=2,
        learning_rate=1e-2,
        max_length=256,
        logging_steps=1,
        seed=1,
    )
    m = train_vstar(s)
    assert m["global_step"] == 2 and math.isfinite(m["train_loss"])
    # p0's 6 pairs capped at 4 (seed 1: indices 0, 1, 3, 5) + one pair each of p1, p2, p3 = 7;
    # seed 1 holds out one of the four problems
    with open_store(store_path) as st:
        everything = list(st.trajectories())
    pairs = vstar_pairs(everything, 4, 1)
    assert len(pairs) == 7
    from reasonloop.train.rm import held_out_problems

    held = held_out_problems({a.problem_id for a, _ in pairs}, 0.25, 1)
    assert len(held) == 1
    test = [(a, b) for a, b in pairs if a.problem_id in held]
    train = [(a, b) for a, b in pairs if a.problem_id not in held]
    rows = [json.loads(x) for x in (out / "vstar_pairs.jsonl").read_text().splitlines()]
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows] == [
        (a.text, b.text) for a, b in train
    ]
    assert rows[0]["prompt"] == [
        {"role": "user", "content": f"add {rows[0]['problem_id'][1]} and 2"}
    ]
    # the saved verifier, loaded as --scorer vstar:OUT loads it, measured on the held-out pairs
    scorer = make_scorer(f"vstar:{out}")
    assert isinstance(scorer, VStar) and scorer.system_prompt is False
    problems = {p.id: p for p in PROBLEMS}

    def right(sc):
        return sum(
            sc.score(problems[a.problem_id], None, a.text)
            > sc.score(problems[b.problem_id], None, b.text)
            for a, b in test
        )

    n = len(test)
    assert m["heldout"] == {
        "unit": "pairs",
        "problems": 1,
        "total": n,
        "correct": right(scorer),
        "accuracy": right(scorer) / n,
    }
    mean = make_scorer(f"vstar-mean:{out}")
    assert mean.aggregate == "mean" and m["heldout_mean"]["correct"] == right(mean)
    info = json.loads((out / "reasonloop_train.json").read_text())
    assert info["kind"] == "vstar" and info["pairs"] == len(train) == 7 - n
    assert info["settings"]["stages"] == ["explore-r1", "explore-r2"]
    assert info["metrics"]["heldout"] == m["heldout"]
    assert not torch.equal(q_proj(scorer.engine.lm), q_proj(base_model))
    with pytest.raises(ConfigError, match="holds a 'vstar' model"):
        make_scorer(f"orm:{out}")
    # one stage only: V-STaR's first iteration sees round 1's solutions only
    with open_store(store_path) as st:
        from reasonloop.train.vstar import store_solutions

        r1, questions = store_solutions(st, ["explore-r1"])
    assert {t.problem_id for t in r1} == {"p0", "p1"} and set(questions) == {"p0", "p1"}


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-c", "from reasonloop.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_train_vstar_from_the_command_line(base, tmp_path, write_jsonl):
    base_path, _ = base
    rows = []
    for p in PROBLEMS[:3]:
        i = int(p.answer) - 2
        for a, ok in ((i + 2, True), (i + 3, False), (i + 4, False)):
            rows.append(
                {"problem_id": p.id, "prompt": p.problem, "response": response(i, a), "correct": ok}
            )
    data = write_jsonl(tmp_path / "solutions.jsonl", rows)
    out = tmp_path / "cli-vstar"
    args = ["train", "vstar", "--data", str(data), "--model", str(base_path), "--out", str(out)]
    r = run_cli(*args, "--max-steps", "1", "--batch-size", "2", "--no-system-prompt")
    assert r.returncode == 0, r.stderr
    # 3 problems, 2 pairs each; --eval-fraction 0.1 holds out one problem
    assert "vstar: 1 steps" in r.stdout
    assert "held-out pair accuracy" in r.stdout and "(score with --scorer vstar:" in r.stdout
    assert "of 2 pairs, 1 problem) by summed log-prob" in r.stdout
    info = json.loads((out / "reasonloop_train.json").read_text())
    assert info["pairs"] == 4 and info["settings"]["system_prompt"] is False
    assert info["metrics"]["heldout"]["total"] == 2
    bad = write_jsonl(tmp_path / "bad.jsonl", [{**rows[0], "correct": "yes"}])
    r = run_cli(
        "train",
        "vstar",
        "--data",
        str(bad),
        "--model",
        str(base_path),
        "--out",
        str(tmp_path / "x"),
    )
    assert r.returncode == 2
    assert r.stderr == f"error: {bad}:1: field 'correct': expected true or false\n"


# --- the recipe -----------------------------------------------------------------------------------


def vstar_recipe(**improve):
    from reasonloop.recipe.config import parse_recipe

    return parse_recipe(
        {
            "teacher": {"problems": "countdown-medium", "engine": "countdown", "limit": 4},
            "student": {"model": "tiny"},
            "sft": {"max_steps": 2},
            "explore": {"problems": "countdown-hard", "limit": 3},
            "improve": {"rounds": 2, "verifier": "vstar", **improve},
            "eval": {"benchmarks": ["countdown-easy"]},
            "system_prompt": False,
        }
    )


def test_the_recipe_trains_a_verifier_on_every_round_so_far(tmp_path):
    import typer

    from reasonloop import cli
    from reasonloop.recipe.runner import dry_run

    r = vstar_recipe(vstar={"max_steps": 1, "pairs_per_problem": 6, "beta": 0.5})
    d = str(tmp_path)
    lines = dry_run(r, tmp_path).splitlines()
    common = (
        "--pairs-per-problem 6 --eval-fraction 0.1 --no-system-prompt --beta 0.5 --epochs 1 "
        "--max-steps 1 --lr 5e-06 --batch-size 4 --grad-accum 1 --max-length 1024 --warmup 0 "
        "--seed 0"
    )
    r1 = (
        f"reasonloop train vstar --model {d}/models/imitate --out {d}/models/vstar-r1 "
        f"--store {d}/store.db --stage explore-r1 {common}"
    )
    r2 = (
        f"reasonloop train vstar --model {d}/models/imitate --out {d}/models/vstar-r2 "
        f"--store {d}/store.db --stage explore-r1 --stage explore-r2 {common}"
    )
    assert r1 in lines and r2 in lines
    # after round 1's evals, before round 2 explores; the generator is still RS-SFT from the backbone
    i = lines.index(r1)
    assert lines[i - 1] == "# -- vstar-r1: round 1: V-STaR verifier on rounds 1..1's rollouts"
    assert lines.index("# -- explore-r2: round 2: explore with round-1") > i
    assert any(x.startswith(f"reasonloop train sft --model {d}/models/backbone") for x in lines)
    # the line parses with the CLI into the settings the run uses
    cmd = typer.main.get_command(cli.app).commands["train"].commands["vstar"]
    params = cmd.make_context("vstar", r2.split()[3:]).params
    assert params["stages"] == ["explore-r1", "explore-r2"] and params["system_prompt"] is False
    assert params["beta"] == 0.5 and params["pairs_per_problem"] == 6
    # no verifier by default; a wrong one names the key
    plain = replace(r, improve=replace(r.improve, verifier="none"))
    assert "vstar" not in dry_run(plain, tmp_path / "plain")
    with pytest.raises(ConfigError, match="improve.verifier"):
        vstar_recipe(verifier="orm")
    with pytest.raises(ConfigError, match="improve.vstar.model: unknown key"):
        vstar_recipe(vstar={"model": "x"})


@pytest.mark.slow
def test_a_recipe_round_trains_its_verifier(tmp_path, half_right_student):
    """cpu-smoke with verifier: vstar: round 1's explored rollouts (a right and a wrong one per
    problem) train models/vstar-r1 from the imitated model, measured on a held-out problem."""
    from pathlib import Path

    import yaml

    from reasonloop.recipe import runner
    from reasonloop.recipe.config import parse_recipe

    data = yaml.safe_load((Path(__file__).parents[2] / "recipes" / "cpu-smoke.yaml").read_text())
    data["improve"] = {
        "rounds": 1,
        "verifier": "vstar",
        "vstar": {"max_steps": 1, "batch_size": 2, "max_length": 512, "learning_rate": 1e-3},
    }
    data["sft"].update(max_steps=1)
    root = tmp_path / "run"
    runner.run_recipe(parse_recipe(data), root)
    done = json.loads((root / "steps" / "vstar-r1.json").read_text())["value"]
    assert done["model"] == str(root / "models" / "vstar-r1")
    assert done["init"] == str(root / "models" / "imitate") and done["global_step"] == 1
    # 3 explored problems, one (right, wrong) pair each; one problem held out
    assert done["heldout"]["problems"] == 1 and done["heldout"]["total"] == 1
    info = json.loads((root / "models" / "vstar-r1" / "reasonloop_train.json").read_text())
    assert info["kind"] == "vstar" and info["pairs"] == 2
    assert info["settings"]["stages"] == ["explore-r1"]
    assert info["settings"]["system_prompt"] is False
    rows = (root / "models" / "vstar-r1" / "vstar_pairs.jsonl").read_text().splitlines()
    assert all(json.loads(x)["rejected"][0]["content"] == half_right_student for x in rows)
