"""GRPO on reasonloop's graders: the reward rule as an exact table, real TRL steps on a tiny Llama,
every rollout in the store, dynamic sampling, LoRA, and a SIGKILLed run resumed from its checkpoint."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reasonloop.errors import ConfigError
from reasonloop.format import BEGIN_SOLUTION, BEGIN_THOUGHT, END_SOLUTION, END_THOUGHT
from reasonloop.problems import resolve_problems
from reasonloop.records import Problem
from reasonloop.store import open_store
from reasonloop.train.grpo import (
    GRPOSettings,
    StoreRewards,
    format_reward,
    keep_rows,
    overlong_penalty,
    train_grpo,
)
from reasonloop.verify import grade
from reasonloop.verify.sandbox import bwrap_problem

pytest.importorskip("trl")

SRC = str(Path(__file__).resolve().parents[2] / "src")
HERE = str(Path(__file__).resolve().parent)

COUNTDOWN = resolve_problems("countdown-easy", limit=1)[0]  # Reach 10 using the numbers 1 2 8
MATH = Problem(id="m1", domain="math", problem="What is 2+3?", answer="5")
CHOICE = Problem(
    id="c1", domain="science", problem="Pick two.", answer="B", choices=("1", "2", "3", "4")
)
CODE = Problem(
    id="k1",
    domain="code",
    problem="def add(a, b):\n",
    answer="",
    tests="def check(f):\n    assert f(2, 3) == 5\n",
    entry_point="add",
)


def fmt(thought: str, solution: str) -> str:
    return f"{BEGIN_THOUGHT}{thought}{END_THOUGHT}{BEGIN_SOLUTION}{solution}{END_SOLUTION}"


# (problem, response, tokens, correct, reason, format, overlong, total) with format_weight=0.5,
# max_completion_length=20, overlong_buffer=8: the penalty ramps from 0 at 12 tokens to -1 at 20.
TABLE = [
    (COUNTDOWN, fmt("8+2 is 10", "\\boxed{8+2}"), 10, True, "correct", 1.0, 0.0, 1.5),
    (COUNTDOWN, fmt("try", "\\boxed{8-2}"), 12, False, "wrong", 1.0, 0.0, 0.5),
    (COUNTDOWN, "\\boxed{8+2}", 5, True, "correct", 0.0, 0.0, 1.0),  # right, no markers
    (COUNTDOWN, f"{BEGIN_THOUGHT}8+2 is", 20, False, "thought_unfinished", 0.0, -1.0, -1.0),
    (COUNTDOWN, fmt("x", "\\boxed{5+5}"), 16, False, "wrong", 1.0, -0.5, 0.0),  # 5 not given
    (COUNTDOWN, fmt("x", "\\boxed{9**9**9**9**9}"), 14, False, "unparseable", 1.0, -0.25, 0.25),
    (COUNTDOWN, fmt("x", "\\boxed{8 + 2 = 10}"), 18, True, "correct", 1.0, -0.75, 0.75),
    (COUNTDOWN, fmt("", "\\boxed{8+2}"), 25, True, "correct", 0.0, -1.0, 0.0),  # empty thought
    (MATH, fmt("2+3=5", "\\boxed{5}"), 3, True, "correct", 1.0, 0.0, 1.5),
    (MATH, fmt("2+3=6", "\\boxed{6}"), 3, False, "wrong", 1.0, 0.0, 0.5),
    (MATH, "", 0, False, "no_answer", 0.0, 0.0, 0.0),
    (CHOICE, fmt("two", "Answer: B"), 4, True, "correct", 1.0, 0.0, 1.5),
    (CHOICE, fmt("two", "Answer: C"), 4, False, "wrong", 1.0, 0.0, 0.5),
]


def settings(tmp_path, **kw) -> GRPOSettings:
    base = dict(
        model="tiny",
        problems="countdown-easy",
        output_dir=str(tmp_path / "out"),
        store=str(tmp_path / "store.db"),
        system_prompt=False,  # the char-level test model has a 512-token context
        group_size=4,
        prompts_per_step=2,
        max_completion_length=16,
        overlong_buffer=15,  # every length gets its own reward: groups differ
        max_steps=2,
        learning_rate=1e-2,
        limit=4,
    )
    base.update(kw)
    return GRPOSettings(**base)


def call_rewards(s, store, rows, step=0):
    """Run the TRL reward function as TRL calls it, on hand-written completions."""

    class State:
        global_step = step

    fn = StoreRewards(s, {p.id: p for p, *_ in rows}, store, eos_ids={0})
    store.add_problems({p.id: p for p, *_ in rows}.values())
    out = fn(
        prompts=[[{"role": "user", "content": p.problem}] for p, *_ in rows],
        completions=[[{"role": "assistant", "content": r}] for _, r, *_ in rows],
        completion_ids=[[5] * (n - 1) + [0] if n else [] for _, _, n, *_ in rows],
        problem_id=[p.id for p, *_ in rows],
        trainer_state=State(),
    )
    return fn, out


def test_rewards_are_the_graders_verdicts_exactly(tmp_path):
    s = settings(tmp_path, max_completion_length=20, overlong_buffer=8, format_weight=0.5)
    with open_store(s.store) as store:
        fn, rewards = call_rewards(s, store, [(p, r, n) for p, r, n, *_ in TABLE], step=6)
        assert rewards == [row[-1] for row in TABLE]
        stored = sorted(store.stored(stage="grpo"), key=lambda x: x.trajectory.text)
        assert len(stored) == len(TABLE)
        by_text = {x.trajectory.text: x for x in stored}
        for p, response, n, correct, reason, f, over, total in TABLE:
            assert grade(p, response).correct is correct
            x = by_text[response]
            assert (x.trajectory.verdict.correct, x.trajectory.verdict.reason) == (correct, reason)
            assert x.trajectory.generator.round == 7  # the step these rollouts train
            assert x.trajectory.tokens == n
            assert x.trajectory.finish_reason == ("stop" if n else "length")
            assert x.meta["step"] == 7
            mine = x.meta["rewards"][x.sample_index]
            assert (mine["format"], mine["overlong"], mine["total"]) == (f, over, total)
        assert fn.correct == sum(row[3] for row in TABLE)
        # the same batch again (a resumed step): no new row
        fn2, _ = call_rewards(s, store, [(p, r, n) for p, r, n, *_ in TABLE], step=6)
        assert fn2.new_rows == 0 and len(store) == len(TABLE)


@pytest.mark.skipif(bwrap_problem() is not None, reason=f"no code sandbox: {bwrap_problem()}")
def test_code_rewards_run_in_the_sandbox(tmp_path):
    good = "```python\ndef add(a, b):\n    return a + b\n```"
    forge = "```python\nimport os\nos._exit(0)  # exit 'passed' before the tests run\ndef add(a, b):\n    return 0\n```"
    forever = "```python\ndef add(a, b):\n    while True: pass\n```"
    s = settings(tmp_path, overlong_buffer=0)
    rows = [(CODE, good, 10), (CODE, forge, 10), (CODE, forever, 10)]
    with open_store(s.store) as store:
        _, rewards = call_rewards(s, store, rows)
    assert rewards == [1.0, 0.0, 0.0]
    assert [grade(CODE, r).correct for _, r, _ in rows] == [True, False, False]


def test_format_and_overlong_rules():
    assert [format_reward(fmt("a", "b")), format_reward(fmt("a", "")), format_reward("b")] == [
        1.0,
        0.0,
        0.0,
    ]
    assert format_reward(f"{BEGIN_THOUGHT}a{END_THOUGHT}{BEGIN_SOLUTION}b") == 0.0  # unclosed
    assert [overlong_penalty(n, 20, 8) for n in (0, 12, 13, 16, 19, 20, 99)] == [
        0.0,
        0.0,
        -0.125,
        -0.5,
        -0.875,
        -1.0,
        -1.0,
    ]
    assert overlong_penalty(99, 20, 0) == 0.0
    assert overlong_penalty(16, 20, 8, penalty=2.0) == -1.0


def test_keep_rows_drops_all_equal_groups():
    assert keep_rows([1, 1, 0, 1, 0, 0, 0.5, 0.5, 1, 1, 1, 1], 2) == [2, 3]
    assert keep_rows([0, 0, 0, 0], 2) == []
    assert keep_rows([0, 1, 0, 1, 1, 1], 3) == [0, 1, 2]


@pytest.mark.parametrize(
    "bad",
    [
        {"loss_type": "ppo"},
        {"group_size": 1},
        {"overlong_buffer": 16},
        {"beta": -0.1},
        {"max_steps": 0},
        {"scale_rewards": "yes"},
    ],
)
def test_bad_settings_name_the_field(tmp_path, bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        settings(tmp_path, **bad)


def allowed_only(tok, keep="128+=\\{}boxed"):
    """Sampling limited to a few characters and the end of turn, so lengths (and rewards) vary."""
    allowed = {tok.convert_tokens_to_ids(c) for c in keep} | {tok.eos_token_id}
    return {
        "generation_kwargs": {"suppress_tokens": [i for i in range(len(tok)) if i not in allowed]}
    }


def params(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


@pytest.mark.slow
def test_two_steps_change_parameters_and_store_every_rollout(tmp_path, make_tiny):
    import torch

    model, tok = make_tiny()
    s = settings(tmp_path, extra=allowed_only(tok))
    before = None
    summary = None

    def snapshot(step, *_, **__):
        nonlocal before
        if before is None:  # at train begin, after the format tokens were added
            before = params(model)

    summary = train_grpo(s, model=model, tokenizer=tok, on_progress=snapshot)
    after = params(model)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) == len(before)  # every weight moved
    assert summary.steps == 2 and summary.rollouts == 16 and summary.new_rows == 16
    assert summary.train_loss == summary.train_loss  # finite, not NaN
    with open_store(s.store) as store:
        rows = list(store.stored(stage="grpo"))
        assert len(rows) == 2 * 2 * 4
        assert sorted(r.trajectory.generator.round for r in rows) == [1] * 8 + [2] * 8
        for r in rows:
            t = r.trajectory
            n = t.tokens
            expected = overlong_penalty(n, 16, 15) + (1.0 if t.verdict.correct else 0.0)
            assert r.meta["rewards"][r.sample_index]["total"] == expected
        assert {store.stats().stages[0].stage} == {"grpo"}
    saved = json.loads((tmp_path / "out" / "reasonloop_train.json").read_text())
    assert saved["kind"] == "grpo" and saved["summary"]["rollouts"] == 16


@pytest.mark.slow
def test_dynamic_sampling_drops_all_equal_groups(tmp_path, make_tiny):
    model, tok = make_tiny()
    # without a length penalty every reward of a random model is 0: every group is all-equal
    s = settings(tmp_path, overlong_buffer=0, dynamic_sampling=True, extra=allowed_only(tok))
    before = None

    def snapshot(step, *_, **__):
        nonlocal before
        if before is None:
            before = params(model)

    summary = train_grpo(s, model=model, tokenizer=tok, on_progress=snapshot)
    assert summary.dropped_groups == 2 * 2  # both groups of both steps
    assert summary.correct == 0 and summary.rollouts == 16
    after = params(model)
    import torch

    assert all(torch.equal(before[k], after[k]) for k in before)  # zero update
    with open_store(s.store) as store:
        assert store.count(stage="grpo") == 16  # dropped groups are still stored


@pytest.mark.slow
def test_dynamic_sampling_trains_on_the_groups_that_differ(tmp_path, make_tiny, monkeypatch):
    """The first group of each step is made all-equal (its rule is swapped for a constant), the
    second keeps a reward per length: one group of each step leaves the batch, the other trains."""
    import torch

    from reasonloop.train import grpo

    real = grpo.rollout_reward
    calls = []

    def first_group_constant(verdict, text, tokens, s):
        calls.append(tokens)
        parts = real(verdict, text, tokens, s)
        if (len(calls) - 1) % 8 < 4:
            return grpo.RewardParts(0.0, 0.0, 0.0, 0.0)
        return parts

    monkeypatch.setattr(grpo, "rollout_reward", first_group_constant)
    model, tok = make_tiny()
    s = settings(tmp_path, dynamic_sampling=True, extra=allowed_only(tok))
    before = None

    def snapshot(step, *_, **__):
        nonlocal before
        if before is None:
            before = params(model)

    summary = train_grpo(s, model=model, tokenizer=tok, on_progress=snapshot)
    assert len(calls) == 16
    assert len(set(calls[4:8])) > 1 and len(set(calls[12:16])) > 1  # the second groups differ
    assert summary.dropped_groups == 2
    after = params(model)
    assert any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.slow
def test_lora_run_saves_an_adapter(tmp_path, make_tiny):
    from reasonloop.train.sft import LoraSettings

    model, tok = make_tiny()
    s = settings(tmp_path, lora=LoraSettings(r=4, alpha=8), max_steps=1, extra=allowed_only(tok))
    summary = train_grpo(s, model=model, tokenizer=tok)
    out = tmp_path / "out"
    assert summary.steps == 1
    assert (out / "adapter_config.json").is_file()
    assert (out / "adapter_model.safetensors").is_file()
    assert not (out / "model.safetensors").exists()


@pytest.mark.slow
def test_token_budget_stops_at_the_step_that_reaches_it(tmp_path, make_tiny):
    """One prompt per step, one problem: every row holds the same prompt P, so the tokens trained
    on are P per rollout plus its completion, and a run stops at the step its budget is reached."""
    from reasonloop.train.grpo import prompt_messages

    def run(name, **kw):
        model, tok = make_tiny()
        s = settings(
            tmp_path / name, limit=1, prompts_per_step=1, seed=3, extra=allowed_only(tok), **kw
        )
        return train_grpo(s, model=model, tokenizer=tok), tok

    one, tok = run("one", max_steps=1)
    problem = resolve_problems("countdown-easy", limit=1)[0]
    prompt = tok.apply_chat_template(
        prompt_messages(problem, False), add_generation_prompt=True, tokenize=True
    )
    prompt = prompt if isinstance(prompt, list) else prompt["input_ids"]
    assert one.rollouts == 4
    assert one.trained_tokens == 4 * len(prompt) + one.generated_tokens
    assert one.cost == one.generated_tokens + one.trained_tokens
    exactly, _ = run("exactly", max_steps=5, token_budget=one.cost)
    assert exactly.steps == 1 and exactly.cost == one.cost  # the same first step, then stop
    past, _ = run("past", max_steps=5, token_budget=one.cost + 1)
    assert past.steps == 2 and past.cost >= one.cost + 1
    unbounded, _ = run("unbounded", max_steps=3)
    assert unbounded.steps == 3


CHILD = """
import os, signal, sys
sys.path[:0] = [{src!r}, {here!r}]
from reasonloop.train.grpo import GRPOSettings, train_grpo
from test_grpo import allowed_only, settings
from pathlib import Path
from transformers import AutoTokenizer

tok = AutoTokenizer.from_pretrained({model!r})
s = settings(Path({tmp!r}), model={model!r}, max_steps=4, save_steps=2, resume=True,
             extra=allowed_only(tok))

def die_at_3(step, *a, **k):
    if step == 3 and os.environ.get("KILL_AT_3"):
        os.kill(os.getpid(), signal.SIGKILL)  # after step 3's rollouts are stored

train_grpo(s, on_progress=die_at_3)
"""


@pytest.mark.slow
def test_killed_run_resumes_without_doubling_rows(tmp_path, make_tiny):
    import torch
    from safetensors.torch import load_file

    from reasonloop.train.sft import add_format_tokens

    model, tok = make_tiny()
    add_format_tokens(tok, model)
    base = tmp_path / "base"
    model.save_pretrained(base)
    tok.save_pretrained(base)
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(src=SRC, here=HERE, model=str(base), tmp=str(tmp_path)))
    env = {**os.environ, "KILL_AT_3": "1", "PYTHONPATH": SRC}
    killed = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, timeout=300
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert (tmp_path / "out" / "checkpoint-2").is_dir()
    assert not (tmp_path / "out" / "checkpoint-4").exists()
    with open_store(tmp_path / "store.db") as store:
        first = {r.trajectory.id: r.trajectory.text for r in store.stored(stage="grpo")}
    assert len(first) == 3 * 8  # steps 1-3 stored before the kill

    env.pop("KILL_AT_3")
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    with open_store(tmp_path / "store.db") as store:
        rows = list(store.stored(stage="grpo"))
    assert len(rows) == 4 * 8  # every step exactly once
    rounds = sorted(r.trajectory.generator.round for r in rows)
    assert rounds == [1] * 8 + [2] * 8 + [3] * 8 + [4] * 8
    assert {r.trajectory.id: r.trajectory.text for r in rows if r.trajectory.id in first} == first
    # the token counts went on from the checkpoint's: every rollout of the 4 steps counted once
    assert json.loads((tmp_path / "out" / "checkpoint-2" / "reasonloop_tokens.json").read_text())[
        "generated"
    ] == sum(r.trajectory.tokens for r in rows if r.trajectory.generator.round <= 2)
    summary = json.loads((tmp_path / "out" / "reasonloop_train.json").read_text())["summary"]
    assert summary["generated_tokens"] == sum(r.trajectory.tokens for r in rows)
    report = json.loads((tmp_path / "out" / "reasonloop_train.json").read_text())
    assert report["summary"]["steps"] == 4
    assert report["summary"]["rollouts"] == 2 * 8  # the resumed run scored steps 3 and 4
    assert report["summary"]["new_rows"] == 8  # step 3 was already stored
    start = load_file(str(base / "model.safetensors"))
    end = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert any(not torch.equal(start[k], end[k]) for k in start)


def cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-c", "from reasonloop.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": SRC},
    )


@pytest.mark.slow
def test_train_grpo_from_the_command_line(tmp_path, make_tiny):
    model, tok = make_tiny()
    model.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    common = ["train", "grpo", "--model", "base", "--problems", "countdown-easy", "--limit", "4"]
    common += ["--store", "s.db", "--out", "out", "--no-system-prompt", "--max-tokens", "8"]
    bad = cli(*common, "--loss", "ppo", cwd=tmp_path)
    assert bad.returncode == 2 and "loss_type" in bad.stderr + bad.stdout
    assert not (tmp_path / "s.db").exists()  # refused before anything was written
    r = cli(
        *common, "--max-steps", "1", "--group-size", "2", "--prompts-per-step", "2", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "grpo (dapo): 1 steps, 4 rollouts (4 new in s.db, stage grpo)" in r.stdout
    with open_store(tmp_path / "s.db") as store:
        assert store.count(stage="grpo") == 4


# -- vLLM: passed through to TRL on a GPU, refused on a CPU --------------------------------------

VLLM = {"use_vllm": True, "vllm_mode": "server", "vllm_server_port": 8002}


def test_vllm_options_pass_through_to_trls_grpo_config(tmp_path):
    from dataclasses import fields as dc_fields

    from trl import GRPOConfig

    from reasonloop.train.grpo import TRL_VLLM_HOST, TRL_VLLM_PORT

    assert settings(tmp_path).vllm() == {}  # off: TRL's defaults, nothing passed
    server = settings(tmp_path, **VLLM, vllm_server_host="10.0.0.7")
    assert server.vllm() == {**VLLM, "vllm_server_host": "10.0.0.7"}
    colocate = dict(use_vllm=True, vllm_mode="colocate", vllm_gpu_memory_utilization=0.4)
    colocate["vllm_tensor_parallel_size"] = 2
    assert settings(tmp_path, **colocate).vllm() == colocate
    # the same names in the installed TRL, and the defaults the recipe waits on are TRL's
    trl = {f.name: f for f in dc_fields(GRPOConfig)}
    assert set(server.vllm()) | set(colocate) <= set(trl)
    assert (trl["vllm_server_host"].default, trl["vllm_server_port"].default) == (
        TRL_VLLM_HOST,
        TRL_VLLM_PORT,
    )
    args = GRPOConfig(output_dir=str(tmp_path / "o"), use_cpu=True, **server.vllm())
    assert (args.use_vllm, args.vllm_mode, args.vllm_server_port) == (True, "server", 8002)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"vllm_mode": "server"}, "vllm_mode is a vLLM option: set use_vllm too, or leave it out"),
        (
            {"use_vllm": True, "vllm_mode": "colocate", "vllm_server_port": 8002},
            "vllm_server_port does not apply in vllm_mode colocate (TRL would ignore it); "
            "leave it out",
        ),
        (
            {"use_vllm": True, "vllm_mode": "server", "vllm_gpu_memory_utilization": 0.5},
            "vllm_gpu_memory_utilization does not apply in vllm_mode server (TRL would ignore "
            "it); leave it out",
        ),
        ({"use_vllm": True, "vllm_mode": "remote"}, "vllm_mode must be one of server, colocate"),
        ({"use_vllm": True, "vllm_server_port": 0}, "vllm_server_port must be in [1, 65535]"),
    ],
)
def test_vllm_options_out_of_place_name_the_field(tmp_path, bad, message):
    with pytest.raises(ConfigError) as err:
        settings(tmp_path, **bad)
    assert str(err.value).startswith(message)


NO_GPU = "use_vllm needs a CUDA GPU (vLLM generates on GPUs only) and none is visible here; "
NO_GPU += "leave it off to generate with transformers on this machine"


def test_vllm_is_refused_on_cpu_before_anything_is_loaded(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible: the refusal is for CPU machines")
    with pytest.raises(ConfigError) as err:
        train_grpo(settings(tmp_path, model=str(tmp_path / "missing"), **VLLM))
    assert str(err.value) == NO_GPU
    assert not (tmp_path / "store.db").exists()


@pytest.mark.slow
def test_vllm_on_cpu_is_one_line_from_the_command_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible: the refusal is for CPU machines")
    args = ["train", "grpo", "--model", "base", "--problems", "countdown-easy", "--limit", "4"]
    args += ["--store", "s.db", "--out", "out", "--use-vllm", "--vllm-mode", "colocate"]
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 2
    assert NO_GPU in r.stdout + r.stderr
    assert len((r.stdout + r.stderr).strip().splitlines()) == 1
    assert not (tmp_path / "s.db").exists()
