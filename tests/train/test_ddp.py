"""SFT and DPO as two processes (``accelerate launch``, DDP over gloo on CPU) against one process
with the same global batch: both ranks finish, the saved model loads, and the loss and the weights
are the single-process run's; rank 0 alone writes ``reasonloop_train.json``.

Why ``--multi_gpu`` and not ``--cpu``: ``accelerate launch --cpu --num_processes 2`` starts ONE
process unless MPI is set up (its simple launcher); ``--multi_gpu`` starts the processes through
torchrun, and reasonloop's trainer makes them one CPU run over gloo where there is no CUDA.

The tolerance: the rows all have the same number of tokens, so the mean of the two ranks' losses
is the loss over the whole batch, and DDP's gradient is the single run's; what differs is float32
summation order (per-rank sums, then an all-reduce) — 1e-7 relative per step here, observed 3e-7
on the loss after 3 Adam steps. 1e-5 relative on the loss and 1e-6 absolute on the weights (which
the 3 steps move by ~2e-3) leave room for that and fail on any real difference (one rank's data
only, a missing gradient average: 1e-3 and more).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytestmark = pytest.mark.slow

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rows():
    from reasonloop.format import render

    rows = []
    for k in range(16):  # every row the same number of characters, hence tokens
        a, b = k % 10, (k * 7) % 10
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"add {a}+{b}"},
                    {
                        "role": "assistant",
                        "content": render(f"{a} plus {b}", f"Answer: \\boxed{{{(a + b) % 10}}}"),
                    },
                ]
            }
        )
    return rows


def _train(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _launch() -> list[str]:
    """``accelerate launch`` of ``python -m reasonloop.cli`` as 2 processes on this machine."""
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    assert accelerate, "accelerate's launcher is installed with the train extra"
    launch = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    launch += ["--mixed_precision", "no", "--dynamo_backend", "no"]
    return [*launch, "--main_process_port", str(_free_port()), "-m", "reasonloop.cli"]


def _base(tmp_path: Path, make_tiny):
    from reasonloop.train.sft import add_format_tokens

    model, tok = make_tiny()
    add_format_tokens(tok, model)  # before saving: no random embedding rows at train time
    model.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    return tok


def _one_and_two(tmp_path: Path, common: list[str], finished: str):
    """Train ``common`` as one process with batch 4 and as two with batch 2 each (the same global
    batch); both ranks of the second must finish (a stdout line starting ``finished``). Returns the
    two runs' train metrics; checks that their losses and weights agree and that training moved
    the weights."""
    from safetensors.torch import load_file

    one = _train(
        [sys.executable, "-m", "reasonloop.cli", *common, "--batch-size", "4", "--out", "one"],
        tmp_path,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    two = _train([*_launch(), *common, "--batch-size", "2", "--out", "two"], tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    done = [x for x in two.stdout.splitlines() if x.startswith(finished)]
    assert len(done) == 2, two.stdout  # both ranks ran to the end

    info = {
        d: json.loads((tmp_path / d / "reasonloop_train.json").read_text()) for d in ("one", "two")
    }
    assert info["one"]["kind"] == info["two"]["kind"] == common[1]
    m1, m2 = info["one"]["metrics"], info["two"]["metrics"]
    assert m2["global_step"] == m1["global_step"] == 3
    assert m2["train_loss"] == pytest.approx(m1["train_loss"], rel=1e-5)
    w1 = load_file(tmp_path / "one" / "model.safetensors")
    w2 = load_file(tmp_path / "two" / "model.safetensors")
    w0 = load_file(tmp_path / "base" / "model.safetensors")
    assert max((w1[k] - w0[k]).abs().max().item() for k in w1) > 1e-4  # training moved them
    assert max((w1[k] - w2[k]).abs().max().item() for k in w1) < 1e-6
    return m1, m2


def test_only_the_main_process_writes_the_train_info(tmp_path, monkeypatch):
    from reasonloop.train.sft import SFTSettings, is_main_process, write_train_info

    s = SFTSettings("m", "d", str(tmp_path))
    for rank, writes in (("1", False), ("0", True)):
        monkeypatch.setenv("RANK", rank)
        assert is_main_process() is writes
        write_train_info(tmp_path, "sft", s, {"train_loss": 1.0})
        assert (tmp_path / "reasonloop_train.json").exists() is writes
    monkeypatch.delenv("RANK")
    assert is_main_process()  # a lone process


def test_two_process_sft_matches_one_process_with_the_same_global_batch(
    tmp_path, make_tiny, write_jsonl
):
    import torch
    from transformers import AutoModelForCausalLM

    tok = _base(tmp_path, make_tiny)
    write_jsonl(tmp_path / "d.jsonl", _rows())
    common = ["train", "sft", "--model", "base", "--data", "d.jsonl", "--max-steps", "3"]
    common += ["--lr", "0.001"]
    m1, m2 = _one_and_two(tmp_path, common, "sft: 3 steps")
    # one run over the same data, not two lone runs over all of it
    assert m2["num_tokens"] == m1["num_tokens"] and m2["epoch"] == m1["epoch"] == 0.75

    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "two")
    ids = tok("add 1+2", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.isfinite(loaded(ids).logits).all()


def _pairs():
    from reasonloop.format import render

    rows = []
    for k in range(8):  # every row the same number of characters, hence tokens
        a, b = k % 10, (k * 3) % 10
        right, wrong = (a + b) % 10, (a + b + 1) % 10
        rows.append(
            {
                "prompt": [{"role": "user", "content": f"add {a}+{b}"}],
                "chosen": [{"role": "assistant", "content": render(f"{a}+{b}", f"{right}")}],
                "rejected": [{"role": "assistant", "content": render(f"{a}+{b}", f"{wrong}")}],
            }
        )
    return rows


def test_two_process_dpo_matches_one_process_with_the_same_global_batch(
    tmp_path, make_tiny, write_jsonl
):
    from transformers import AutoModelForCausalLM

    _base(tmp_path, make_tiny)
    write_jsonl(tmp_path / "p.jsonl", _pairs())
    # lr 1e-3 and the SFT term: steps large enough that the weights say whether the runs agree
    # (at DPO's default 5e-6 Adam's first steps are ~lr * sign(g), and float noise flips signs)
    common = ["train", "dpo", "--model", "base", "--data", "p.jsonl", "--max-steps", "3"]
    common += ["--align", "thought", "--max-length", "64", "--lr", "0.001", "--sft-weight", "1.0"]
    m1, m2 = _one_and_two(tmp_path, common, "dpo (thought, sft weight")
    assert m2["epoch"] == m1["epoch"] == 1.5  # one run over the 8 pairs, not two over all
    AutoModelForCausalLM.from_pretrained(tmp_path / "two")  # the saved model loads
