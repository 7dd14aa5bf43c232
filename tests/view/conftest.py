"""A small store and runs dir for the viewer tests, and a running viewer on a free port."""

from __future__ import annotations

import json
import struct
import threading
import types
import zlib
from pathlib import Path

import pytest

from reasonloop.records import EvalResult, Generator, Problem, Trajectory, Verdict, to_dict
from reasonloop.store import Store
from reasonloop.view import make_server

HOSTILE = (
    '<script>window.__pwned = 1; alert("xss")</script><img src=x onerror="window.__pwned = 2">'
)
PROBLEMS = [
    Problem(id="p1", domain="math", problem="What is 2 + 2?", answer="4", source="toy", level="1"),
    Problem(id="p2", domain="math", problem="What is 3 + 4?", answer="7", source="toy", level="2"),
    Problem(
        id="rel/p3",
        domain="math",
        problem="What is 6 * 7?",
        answer="42",
        solution="6 * 7 = 42.",
        source="toy",
        level="3",
    ),
]
SAMPLER = Generator(engine="scripted", model="tiny", temperature=0.7, role="sample")
EXPLORER = Generator(engine="scripted", model="tiny", temperature=1.0, role="explore")


def fmt(thought: str, solution: str) -> str:
    return (
        f"<|begin_of_thought|>\n{thought}\n<|end_of_thought|>\n\n"
        f"<|begin_of_solution|>\n{solution}\n<|end_of_solution|>"
    )


def traj(pid: str, thought: str, solution: str, answer: str | None, correct: bool | None, **kw):
    verdict = (
        None if correct is None else Verdict(correct, answer, "correct" if correct else "wrong")
    )
    return Trajectory(
        problem_id=pid,
        text=fmt(thought, solution),
        thought=thought,
        solution=solution,
        extracted=answer,
        verdict=verdict,
        **kw,
    )


def rel_round(r: int, parent: str | None, answer: str, correct: bool, scores, critique: str):
    return traj(
        "rel/p3",
        f"Round {r} thinking. First, plan. Let me check 6*7. Wait, recompute.",
        f"6 * 7 = {answer}. \\boxed{{{answer}}}",
        answer,
        correct,
        tokens=50 + r,
        generator=Generator(
            engine="scripted",
            model="rel-gen",
            round=r,
            role="rel-generator" if r == 0 else "rel-revision",
        ),
        parent=parent,
        critic_scores=scores,
        critique=critique,
        id=f"rel-r{r}",
    )


def build_store(path: Path) -> Path:
    with Store(path) as s:
        s.add_problems(PROBLEMS)
        s.add_trajectories(
            [
                traj(
                    "p1",
                    "First, add 2 and 2. Let me check: 2 + 2 = 4. Alternatively count on fingers.",
                    "2 + 2 = 4. \\boxed{4}",
                    "4",
                    True,
                    tokens=30,
                    perplexity=1.25,
                    generator=SAMPLER,
                    id="t-p1-right",
                ),
                traj(
                    "p1",
                    "Wait, maybe 2 + 2 = 5? That is wrong. Hmm, an unusual zebra word.",
                    "2 + 2 = 5. \\boxed{5}",
                    "5",
                    False,
                    tokens=25,
                    perplexity=3.5,
                    generator=SAMPLER,
                    id="t-p1-wrong",
                ),
                traj(
                    "p2",
                    "Thinking about 3 + 4. " + HOSTILE,
                    "The answer is 7. " + HOSTILE + " \\boxed{7}",
                    "7",
                    True,
                    tokens=40,
                    generator=SAMPLER,
                    id="t-hostile",
                ),
                traj("p2", "An ungraded draft.", "Maybe 7.", None, None, id="t-ungraded"),
            ],
            stage="sample",
        )
        chain = [
            rel_round(
                0, None, "41", False, {"planning": 0.4, "reasoning": 0.5}, "Arithmetic slip."
            ),
            rel_round(1, "rel-r0", "42", True, {"planning": 0.6, "reasoning": 0.7}, "Better plan."),
            rel_round(2, "rel-r1", "42", True, {"planning": 0.9, "reasoning": 0.95}, "Excellent."),
        ]
        s.add_trajectories(chain, stage="rel")
        s.add_trajectories(
            [
                traj(
                    "p1",
                    f"try {i}",
                    f"\\boxed{{{4 if i == 0 else 3}}}",
                    "4",
                    i == 0,
                    generator=EXPLORER,
                    id=f"x-p1-{i}",
                )
                for i in range(2)
            ]
            + [
                traj("p2", f"try {i}", "\\boxed{1}", "1", False, generator=EXPLORER, id=f"x-p2-{i}")
                for i in range(4)
            ],
            stage="explore",
            sample_indices=[0, 1, 0, 1, 2, 3],
            done={
                "p1": {
                    "attempts": 2,
                    "correct": 1,
                    "first_correct": 1,
                    "pass_rate": 0.5,
                    "bucket": "solved_at_once",
                },
                "p2": {
                    "attempts": 4,
                    "correct": 0,
                    "first_correct": None,
                    "pass_rate": 0.0,
                    "bucket": "unsolved",
                },
                "rel/p3": {
                    "attempts": 8,
                    "correct": 2,
                    "first_correct": 5,
                    "pass_rate": 0.25,
                    "bucket": "solved_with_search",
                },
            },
        )
        s.set_scores("ppl:round1", {"t-p1-right": 1.5, "t-p1-wrong": 2.25})
    return path


def tiny_png() -> bytes:
    """A valid 1x1 PNG, made without matplotlib."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


RESULTS = {
    "base": EvalResult(
        benchmark="toy",
        model="base",
        strategy="greedy",
        n_problems=3,
        metrics={"pass@1": 0.5, "maj@4": 0.6, "pass@4": 0.75},
        breakdown={"level=1": {"n": 1, "acc": 1.0}, "level=2": {"n": 2, "acc": 0.25}},
        mean_tokens=120.0,
    ),
    "round1/eval": EvalResult(
        benchmark="toy",
        model="round1",
        strategy="greedy",
        n_problems=3,
        metrics={"pass@1": 0.625, "maj@4": 0.7},
        mean_tokens=150.0,
    ),
}


def build_runs(root: Path, *, real_plots: bool = False) -> Path:
    """Two eval dirs (one nested) and one with a broken metrics.json."""
    for name, result in RESULTS.items():
        d = root / name
        if real_plots:
            from reasonloop.evaluate.report import write_report

            write_report(d, result, {})
        else:
            d.mkdir(parents=True)
            (d / "metrics.json").write_text(json.dumps(to_dict(result)))
            (d / "report.md").write_text(f"# {name} <b>report</b>\n")
            (d / "accuracy_vs_k.png").write_bytes(tiny_png())
    (root / "broken").mkdir()
    (root / "broken" / "metrics.json").write_text("{not json")
    (root / "secret.png").write_bytes(tiny_png())
    return root


class Viewer:
    def __init__(self, store: Path, runs: Path | None):
        self.server = make_server(store, runs, "127.0.0.1", 0)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.server.app.index.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("view")
    store = build_store(root / "pool.sqlite")
    runs = build_runs(root / "runs")
    v = Viewer(store, runs)
    v.store_path = store
    yield v
    v.close()


@pytest.fixture(scope="session")
def kit():
    """The builders above, for test modules (conftest is not importable under importlib mode)."""
    return types.SimpleNamespace(
        HOSTILE=HOSTILE, Viewer=Viewer, build_store=build_store, build_runs=build_runs, fmt=fmt
    )
