"""Test-time compute: accuracy against tokens spent, per strategy, on Countdown and GSM8K.

Usage::

    python benchmarks/tts_bench.py [--countdown N] [--gsm8k N] [--k K] [--max-tokens T]
        [--engine SPEC] [--orm DIR] [--prm DIR] [--genrm DIR] [--genrm-cot DIR] [--vstar DIR]
        [--out DIR]

Runs, through ``reasonloop.evaluate.run.evaluate`` (so every run is resumable and leaves its own
eval directory under ``OUT/<task>/``), on the same problems with the same engine (by default the
packaged SmolLM2-135M-Instruct, ``--engine default``):

- ``greedy``: one sample at temperature 0;
- ``majority``: maj@k (self-consistency over k samples);
- ``best-of-n``: k samples ranked by each available scorer: token ``confidence``, ``logprob``
  under the policy, the reward models given with ``--orm`` / ``--prm`` / ``--genrm`` /
  ``--genrm-cot`` (P(Yes); GenRM-CoT averages it over 4 sampled verifications), a V-STaR
  verifier given with ``--vstar`` (two rows from one loaded model: ``vstar``, the summed log-prob
  of the response, and ``vstar-mean``, its mean), and the ``oracle`` verifier (an upper bound,
  marked as such: it reads the gold answer);
- ``beam``: k beams over reasoning steps, ``--beam-expand`` continuations each, guided by token
  confidence, and once more by the PRM when one is given;
- ``mcts``: ``--mcts-iterations`` iterations (default 2k) with the Marco-o1 confidence reward, and
  once more with the PRM as its reward when one is given.

The demo's own student works too: ``--engine hf:runs/demo/models/rs-sft-s0 --no-system-prompt``
(any engine spec). Tasks: ``--countdown N`` generated Countdown puzzles (``countdown-LEVEL``, the demo's task) and
``--gsm8k N`` GSM8K test problems from ``--data-dir`` (default ``../shared/data``); 0 skips one.
Prints one table (accuracy %, tokens spent per problem, seconds) and writes ``OUT/results.json``
and ``OUT/tts_bench.png`` (accuracy against tokens spent, one panel per task, log-scale tokens).
Tokens spent count every generated token (all samples, expansions, rollouts), prompts excluded;
reward-model scoring is not counted as tokens (its time is in the seconds column; a resumed run
shows only the time this invocation took).
Runs share samples: the engine is wrapped in :class:`SharedSamples`, which answers a request it
has answered before (same prompt, n, temperature, seed, ...) from memory, so maj@k and best-of-k
with every scorer read the same k samples and pay for them once in time; each run still counts the
tokens it would have spent. ``--no-share`` samples afresh for every run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from reasonloop.evaluate.report import markdown_table  # noqa: E402
from reasonloop.evaluate.run import EvalSettings, evaluate, load_spend  # noqa: E402
from reasonloop.search.scorers import AGGREGATES  # noqa: E402


@dataclass(frozen=True)
class Run:
    name: str  # short label in the table and the plot
    settings: EvalSettings
    scorer: Any = None  # a built scorer object, or None (by name)
    oracle: bool = False


class SharedSamples:
    """An engine wrapper that remembers what it sampled: a request seen before (ignoring which
    log-probs it asks for) is answered with the same results. Every request is sent on asking for
    per-token log-probs and the top-5 alternatives, so that a later scorer that needs them finds
    them. Only sound for seeded requests on a deterministic engine (the same request gives the
    same samples anyway); ``score`` and everything else pass through."""

    def __init__(self, engine: Any, top: int = 5):
        self.engine, self.top = engine, top
        self.memo: dict[Any, Any] = {}
        self.hits = 0

    def generate(self, requests: list) -> list:
        from dataclasses import replace

        keys = [replace(r, logprobs=False, top_logprobs=0) for r in requests]
        todo = [
            replace(r, logprobs=True, top_logprobs=max(self.top, r.top_logprobs))
            for r, k in zip(requests, keys, strict=True)
            if k not in self.memo or r.seed is None
        ]
        fresh = iter(self.engine.generate(todo) if todo else [])
        out = []
        for r, k in zip(requests, keys, strict=True):
            if k in self.memo and r.seed is not None:
                self.hits += 1
                out.append(self.memo[k])
            else:
                res = next(fresh)
                if r.seed is not None:
                    self.memo[k] = res
                out.append(res)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


def build_runs(args: argparse.Namespace) -> list[Run]:
    from reasonloop.search import make_scorer

    k = args.k
    base = {"max_tokens": args.max_tokens, "system_prompt": args.system_prompt}
    common = {**base, "temperature": args.temperature}
    wanted = set(args.strategies.split(","))
    scorers: dict[str, Any] = {"confidence": None, "logprob": None}
    for kind in ("orm", "prm", "genrm", "genrm-cot"):
        path = getattr(args, kind.replace("-", "_"))
        if path:
            scorers[f"{kind}:{path}"] = make_scorer(f"{kind}:{path}", aggregate=args.aggregate)
    if args.vstar:
        vstar = make_scorer(f"vstar:{args.vstar}")
        scorers[f"vstar:{args.vstar}"] = vstar
        scorers[f"vstar-mean:{args.vstar}"] = vstar.with_aggregate("mean")  # type: ignore[attr-defined]
    runs: list[Run] = []
    if "greedy" in wanted:
        runs.append(Run("greedy", EvalSettings(**base)))
    if "majority" in wanted:
        runs.append(Run(f"maj@{k}", EvalSettings("majority", k=k, **common)))
    if "weighted" in wanted:
        s = EvalSettings("weighted", k=k, scorer="confidence", **common)
        runs.append(Run(f"weighted@{k} confidence", s))
    if "best-of-n" in wanted:
        for name, obj in scorers.items():
            s = EvalSettings("best-of-n", k=k, scorer=name, aggregate=args.aggregate, **common)
            short = name.split(":")[0]
            runs.append(Run(f"best-of-{k} {short}", s, obj))
        if args.oracle:
            s = EvalSettings("best-of-n", k=k, scorer="oracle", **common)
            runs.append(Run(f"best-of-{k} oracle", s, oracle=True))
    step = (("step_tokens", args.step_tokens),)
    # beam and MCTS guided by token confidence, and by the PRM too when one is given
    guides = ["confidence", *(n for n in scorers if n.startswith("prm:"))]
    for guide in guides if "beam" in wanted else ():
        s = EvalSettings(
            "beam",
            k=k,
            scorer=guide,
            aggregate=args.aggregate,
            options=(("expand", args.beam_expand), *step),
            **common,
        )
        runs.append(Run(f"beam {k}x{args.beam_expand} {guide.split(':')[0]}", s, scorers[guide]))
    iters = args.mcts_iterations or 2 * k
    for guide in guides if "mcts" in wanted else ():
        s = EvalSettings(
            "mcts", k=iters, scorer=guide, aggregate=args.aggregate, options=step, **common
        )
        runs.append(Run(f"mcts {iters} it {guide.split(':')[0]}", s, scorers[guide]))
    if "reflection" in wanted:
        runs.append(Run("reflection", EvalSettings("reflection", **base)))
    return runs


def tasks(args: argparse.Namespace) -> dict[str, list]:
    from reasonloop.problems import resolve_problems

    out = {}
    if args.countdown:
        name = f"countdown-{args.countdown_level}"
        out[name] = resolve_problems(name, limit=args.countdown, seed=args.seed)
    if args.gsm8k:
        out["gsm8k"] = resolve_problems("gsm8k", data_dir=args.data_dir, limit=args.gsm8k)
    return out


def slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_@." else "_" for c in text)


def plot(results: list[dict], path: Path) -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["task"] for r in results))
    fig, axes = plt.subplots(1, len(names), figsize=(6.5 * len(names), 4.5), squeeze=False)
    markers = {"greedy": "s", "maj": "D", "best": "o", "beam": "^", "mcts": "v", "weighted": "P"}
    for ax, task in zip(axes[0], names, strict=True):
        rows = [r for r in results if r["task"] == task and r["tokens"]]
        for r in rows:
            family = r["run"].replace("@", "-").split("-")[0].split(" ")[0]
            marker = "x" if r["oracle"] else markers.get(family, "*")
            ax.scatter(r["tokens"], 100 * r["accuracy"], marker=marker, s=40, label=r["run"])
        ax.set_xscale("log")
        ax.set_ylim(-3, 103)
        ax.set_xlabel("tokens spent per problem (log)")
        ax.set_ylabel("accuracy (%)")
        n = rows[0]["problems"] if rows else 0
        ax.set_title(f"{task} ({n} problems)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", default="default", help="Engine spec of the policy.")
    ap.add_argument("--countdown", type=int, default=20, help="Countdown puzzles (0: skip).")
    ap.add_argument("--countdown-level", default="easy", choices=("easy", "medium", "hard"))
    ap.add_argument("--gsm8k", type=int, default=20, help="GSM8K problems (0: skip).")
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--k", type=int, default=4, help="Samples / beams (mcts: 2k iterations).")
    ap.add_argument("--max-tokens", type=int, default=512, help="Tokens per response.")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--orm", help="An ORM directory (train orm).")
    ap.add_argument(
        "--prm", help="A PRM directory (train prm); also guides beam and MCTS (extra runs)."
    )
    ap.add_argument("--genrm", help="A GenRM directory (train genrm).")
    ap.add_argument("--genrm-cot", help="A GenRM-CoT directory (train genrm --verification cot).")
    ap.add_argument(
        "--vstar", help="A V-STaR verifier directory (train vstar): rows vstar and vstar-mean."
    )
    ap.add_argument("--aggregate", default="min", choices=AGGREGATES)
    ap.add_argument(
        "--no-share", dest="share", action="store_false", help="Sample afresh for every run."
    )
    ap.add_argument("--no-oracle", dest="oracle", action="store_false", help="Skip the oracle.")
    ap.add_argument("--beam-expand", type=int, default=2)
    ap.add_argument("--mcts-iterations", type=int, default=0, help="0: 2k.")
    ap.add_argument("--step-tokens", type=int, default=128, help="Token cap of one step.")
    ap.add_argument(
        "--strategies",
        default="greedy,majority,best-of-n,beam,mcts",
        help="Comma list of greedy, majority, weighted, best-of-n, beam, mcts, reflection.",
    )
    ap.add_argument(
        "--no-system-prompt",
        dest="system_prompt",
        action="store_false",
        help="No system prompt (a policy trained without one, e.g. the CPU demo's student).",
    )
    ap.add_argument("--seed", type=int, default=0, help="Countdown puzzle seed.")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "tts_bench")
    return ap


def main() -> None:
    args = parser().parse_args()

    from reasonloop.engines import load_engine

    engine = load_engine(args.engine)
    if args.share:
        engine = SharedSamples(engine)
    runs = build_runs(args)
    results = []
    for task, problems in tasks(args).items():
        for run in runs:
            out_dir = args.out / task / slug(run.settings.label())
            t0 = time.perf_counter()
            r = evaluate(engine, task, problems, out_dir, run.settings, scorer=run.scorer)
            seconds = time.perf_counter() - t0
            spend = load_spend(out_dir)
            row = {
                "task": task,
                "run": run.name,
                "strategy": r.strategy,
                "problems": r.n_problems,
                "accuracy": r.metrics.get("acc", 0.0),
                "tokens": spend.get("tokens_per_problem"),
                "seconds": seconds,
                "oracle": run.oracle,
            }
            results.append(row)
            print(
                f"{task:16s} {run.name:28s} acc {100 * row['accuracy']:5.1f}%  "
                f"tokens/problem {row['tokens'] or 0:8.0f}  {seconds:7.1f}s",
                flush=True,
            )
    engine.close()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    table = [
        [
            r["task"],
            r["run"],
            str(r["problems"]),
            f"{100 * r['accuracy']:.1f}",
            f"{r['tokens'] or 0:.0f}",
            f"{r['seconds']:.1f}",
        ]
        for r in results
    ]
    print()
    print(markdown_table(["task", "run", "n", "acc %", "tokens/problem", "seconds"], table))
    if results:
        plot(results, args.out / "tts_bench.png")
        print(f"\nwrote {args.out / 'results.json'} and {args.out / 'tts_bench.png'}")


if __name__ == "__main__":
    main()
