"""`reasonloop train sft|dpo` through the real entry point on a tiny saved model."""

import json
import subprocess
import sys

import pytest

from reasonloop.format import render

pytestmark = pytest.mark.slow


def cli(*args):
    return subprocess.run(
        [sys.executable, "-c", "from reasonloop.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_train_sft_then_dpo_from_the_command_line(tmp_path, make_tiny, write_jsonl):
    model, tok = make_tiny()
    model.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    sft = write_jsonl(
        tmp_path / "sft.jsonl",
        [
            {
                "messages": [
                    {"role": "user", "content": f"add {i} and 1"},
                    {"role": "assistant", "content": render(f"{i}+1", f"answer {i + 1}")},
                ]
            }
            for i in range(4)
        ],
    )
    r = cli(
        "train",
        "sft",
        "--model",
        str(tmp_path / "base"),
        "--data",
        str(sft),
        "--out",
        str(tmp_path / "sft"),
        "--max-steps",
        "2",
        "--batch-size",
        "2",
        "--lr",
        "1e-2",
        "--max-length",
        "128",
    )
    assert r.returncode == 0, r.stderr
    assert "sft: 2 steps" in r.stdout and (tmp_path / "sft" / "config.json").exists()
    pairs = write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            {
                "prompt": [{"role": "user", "content": "add 1 and 1"}],
                "chosen": [{"role": "assistant", "content": render("1+1", "answer 2")}],
                "rejected": [{"role": "assistant", "content": render("1+1", "answer 3")}],
            }
        ]
        * 2,
    )
    r = cli(
        "train",
        "dpo",
        "--model",
        str(tmp_path / "sft"),
        "--data",
        str(pairs),
        "--out",
        str(tmp_path / "dpo"),
        "--align",
        "thought",
        "--sft-weight",
        "0.5",
        "--max-steps",
        "1",
        "--batch-size",
        "2",
        "--max-length",
        "128",
    )
    assert r.returncode == 0, r.stderr
    assert "dpo (thought, sft weight 0.5): 1 steps" in r.stdout
    bad = cli(
        "train",
        "dpo",
        "--model",
        str(tmp_path / "sft"),
        "--data",
        str(pairs),
        "--out",
        str(tmp_path / "x"),
        "--align",
        "solution",
    )
    assert (
        bad.returncode == 2
        and bad.stderr == "error: align must be one of thought, full, got 'solution'\n"
    )
    json.loads((tmp_path / "dpo" / "reasonloop_train.json").read_text())
