"""Benchmark GRPO on CPU: ``reasonloop train grpo`` against TRL's plain ``GRPOTrainer``.

Usage::

    python benchmarks/grpo_bench.py [--model DIR] [--steps N] [--repeats R] [--max-tokens T] [--threads N]

Both arms train the same model (``--model``, e.g. the demo's imitated student; by default a
demo-architecture student built untrained from a config, saved to a temporary directory) on the
same Countdown problems for ``--steps`` optimizer steps with the same TRL settings (group size,
prompts per step, sampling, loss ``dr_grpo``, seed). The TRL arm rewards with a plain Python
function calling :func:`reasonloop.verify.grade`; the reasonloop arm is
:func:`reasonloop.train.grpo.train_grpo` (grading, storing every rollout in a SQLite store,
checking the format). Each run is timed from loading the model to saving it. The arms alternate
(ABBA...) ``--repeats`` times; medians are reported.

The last line is ``rl_steps_per_s=A trl_steps_per_s=B rl_tokens_per_s=C trl_tokens_per_s=D
vs_trl=R`` with ``R = A / B`` (below 1: the overhead reasonloop adds).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from reasonloop.problems import resolve_problems  # noqa: E402
from reasonloop.train.grpo import GRPOSettings, prompt_messages, train_grpo  # noqa: E402
from reasonloop.verify import grade  # noqa: E402


def untrained_student(problems, out: Path) -> str:
    from reasonloop.demo.student import make_student, make_task_tokenizer

    tok = make_task_tokenizer([p.problem for p in problems])
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    model = make_student(tok, hidden_size=64, layers=2, max_position_embeddings=512)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def run_reasonloop(s: GRPOSettings, problems) -> tuple[float, int]:
    t0 = time.perf_counter()
    r = train_grpo(s, problems=problems)
    return time.perf_counter() - t0, r.generated_tokens


def run_trl(s: GRPOSettings, problems) -> tuple[float, int]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    by_id = {p.id: p for p in problems}
    tokens = 0

    def reward(completions, completion_ids, problem_id, **_):
        nonlocal tokens
        tokens += sum(len(ids) for ids in completion_ids)
        return [
            float(grade(by_id[pid], c[-1]["content"]).correct)
            for pid, c in zip(problem_id, completions, strict=True)
        ]

    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(s.model)
    model = AutoModelForCausalLM.from_pretrained(s.model, dtype=torch.float32)
    args = GRPOConfig(
        output_dir=s.output_dir,
        max_steps=s.max_steps,
        learning_rate=s.learning_rate,
        per_device_train_batch_size=s.prompts_per_step * s.group_size,
        num_generations=s.group_size,
        steps_per_generation=1,
        temperature=s.temperature,
        max_completion_length=s.max_completion_length,
        loss_type=s.loss_type,
        beta=s.beta,
        seed=s.seed,
        bf16=False,
        gradient_checkpointing=False,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        logging_steps=1,
    )
    rows = [{"prompt": prompt_messages(p, False), "problem_id": p.id} for p in problems]
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
    )
    trainer.train()
    trainer.save_model(s.output_dir)
    return time.perf_counter() - t0, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="A transformers model dir (default: an untrained student).")
    ap.add_argument("--problems", default="countdown-medium")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--prompts-per-step", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)."
    )
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    problems = resolve_problems(a.problems, limit=100)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model = a.model or untrained_student(problems, tmp_path / "student")
        times: dict[str, list[tuple[float, int]]] = {"reasonloop": [], "trl": []}
        for r in range(a.repeats):
            order = ("reasonloop", "trl") if r % 2 == 0 else ("trl", "reasonloop")
            for arm in order:
                s = GRPOSettings(
                    model=model,
                    problems=a.problems,
                    output_dir=str(tmp_path / f"{arm}-{r}"),
                    store=str(tmp_path / f"{arm}-{r}.db"),
                    system_prompt=False,
                    group_size=a.group_size,
                    prompts_per_step=a.prompts_per_step,
                    max_completion_length=a.max_tokens,
                    loss_type="dr_grpo",
                    max_steps=a.steps,
                    learning_rate=1e-4,
                )
                fn = run_reasonloop if arm == "reasonloop" else run_trl
                seconds, tokens = fn(s, problems)
                times[arm].append((seconds, tokens))
                print(f"repeat {r} {arm}: {seconds:.2f} s, {tokens} generated tokens", flush=True)
    steps = {k: statistics.median(a.steps / t for t, _ in v) for k, v in times.items()}
    tps = {k: statistics.median(n / t for t, n in v) for k, v in times.items()}
    print(
        f"rl_steps_per_s={steps['reasonloop']:.4f} trl_steps_per_s={steps['trl']:.4f} "
        f"rl_tokens_per_s={tps['reasonloop']:.1f} trl_tokens_per_s={tps['trl']:.1f} "
        f"vs_trl={steps['reasonloop'] / steps['trl']:.3f}"
    )


if __name__ == "__main__":
    main()
