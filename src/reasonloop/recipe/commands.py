"""Each stage of a loop recipe as the ``reasonloop`` command line that does the same work.

These lines are what ``reasonloop run --dry-run`` prints and writes to ``commands.sh``; a run with
``launch.train`` executes the training lines themselves (under the launcher). The other stages run
in-process, through the same library calls these commands make. Where the CLI cannot say what the
run does (explored rollouts carry log-probs; a prompt without the system prompt), :func:`notes`
says so in a comment.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonloop.options import to_args
from reasonloop.recipe.config import CLUSTER, LoopRecipe


def slug(benchmark: str) -> str:
    """A directory name for a benchmark name or a problems file: ``math500``, ``hard``."""
    name = Path(benchmark).stem if ("/" in benchmark or "." in benchmark) else benchmark
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "problems"


@dataclass(frozen=True, slots=True)
class Layout:
    """Where everything of a run lives, under one directory."""

    root: Path

    @property
    def store(self) -> Path:
        return self.root / "store.db"

    @property
    def steps(self) -> Path:
        return self.root / "steps"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def model(self, name: str) -> Path:
        return self.root / "models" / name

    def eval_dir(self, model: str, benchmark: str) -> Path:
        return self.root / "evals" / model / slug(benchmark)

    @property
    def imitate_dir(self) -> Path:
        return self.root / "data" / "imitate"

    @property
    def imitate_data(self) -> Path:  # D_0
        return self.imitate_dir / "train.jsonl"

    @property
    def explore_pool(self) -> Path:  # the problems every round explores
        return self.root / "data" / "explore-pool.jsonl"

    def explored_dir(self, round_: int) -> Path:
        return self.root / "data" / f"explored-r{round_}"

    def rs_data(self, round_: int) -> Path:  # D_i
        return self.root / "data" / f"rs-r{round_}.jsonl"

    @property
    def control_data(self) -> Path:  # D_0's problems, answer-only
        return self.root / "data" / "control.jsonl"

    def gguf(self, name: str, kind: str) -> Path:  # a checkpoint exported for llama.cpp
        return self.root / "gguf" / f"{name}.{kind}.gguf"

    def dpo_data(self, round_: int) -> Path:
        return self.root / "data" / f"dpo-r{round_}.jsonl"

    def curate_recipe(self, which: str) -> Path:
        return self.root / "config" / f"curate-{which}.yaml"


def _data_dir(r: LoopRecipe) -> list[str]:
    return ["--data-dir", r.data_dir] if r.data_dir else []


def reasonloop(args: Sequence[str], launcher: str | None = None) -> str:
    """The shell line: ``reasonloop ARGS``, or ``LAUNCHER -m reasonloop.cli ARGS``."""
    if launcher:
        return f"{launcher} -m reasonloop.cli {shlex.join(args)}"
    return f"reasonloop {shlex.join(args)}"


def stage_args(command: str, config: Any) -> list[str]:
    """The command line of a stage config: ``command`` then every option, as declared (the
    flags come from the config's field declarations, as the CLI's do), less the Ray options: a
    recipe's stages run in its own process (:data:`~reasonloop.recipe.config.CLUSTER`)."""
    return [*command.split(), *to_args(config, skip=CLUSTER)]


def curate_args(
    r: LoopRecipe,
    store: Path,
    out: Path,
    recipe: Path,
    stages: Sequence[str],
    *,
    decontaminate: Sequence[str] = (),
    perplexity_engine: str | None = None,
) -> list[str]:
    args = ["curate", "--store", str(store), "--out", str(out), "--recipe", str(recipe)]
    for s in stages:
        args += ["--stage", s]
    for b in decontaminate:
        args += ["--decontaminate", b]
    if perplexity_engine:
        args += ["--perplexity-engine", perplexity_engine]
    return args + (_data_dir(r) if decontaminate else [])


def pairs_line(
    r: LoopRecipe, store: Path, stage: str, out: Path, perplexity_engine: str | None = None
) -> str:
    """DPO pairs have no ``reasonloop`` command: this module's own entry point writes them."""
    args = ["--store", str(store), "--stage", stage, "--out", str(out)]
    args += ["--pairs-per-problem", str(r.improve.pairs_per_problem)]
    if not r.system_prompt:
        args.append("--no-system-prompt")
    if perplexity_engine:
        args += ["--perplexity-engine", perplexity_engine]
    return f"python -m reasonloop.recipe.pairs {shlex.join(args)}"


def pool_line(resolved: Path, store: Path, out: Path, engine: str | None = None) -> str:
    """The explore pool has no ``reasonloop`` command: its module's entry point chooses it, every
    setting read from the run's resolved recipe."""
    args = ["--recipe", str(resolved), "--store", str(store), "--out", str(out)]
    if engine:
        args += ["--engine", engine]
    return f"python -m reasonloop.recipe.pool {shlex.join(args)}"


def concat_line(parts: Sequence[Path], out: Path) -> str:
    return f"cat {' '.join(shlex.quote(str(p)) for p in parts)} > {shlex.quote(str(out))}"


def notes(r: LoopRecipe, stage: str) -> list[str]:
    """Comments on what a stage's command line cannot express."""
    out = []
    if stage == "explore" and not r.system_prompt:
        out.append(
            "# note: the run leaves out the system prompt (system_prompt: false); the CLI has no flag for it"
        )
    if stage == "explore":
        out.append(
            "# note: the run also keeps each rollout's log-probs (its perplexity, for selection)"
        )
    return out


def server_lines(command: str, ready_url: str) -> list[str]:
    """Start a server in the background and wait until it answers."""
    return [
        f"{command} &",
        "SERVER_PID=$!",
        f"until curl -sf {shlex.quote(ready_url)} > /dev/null; do sleep 5; done",
    ]


STOP_SERVER = "kill $SERVER_PID; wait $SERVER_PID || true"


def script(recipe_path: str, out: Path, blocks: Sequence[tuple[str, Any, Sequence[str]]]) -> str:
    """``commands.sh``: ``blocks`` are ``(header, server or None, lines)`` in run order; one server
    start covers consecutive blocks that need the same server."""
    lines = [
        "#!/usr/bin/env bash",
        f"# reasonloop run {recipe_path} --out {out}: every stage as a command line",
        "set -euo pipefail",
    ]
    current = None
    for header, server, body in blocks:
        if server != current and current is not None:
            lines.append(STOP_SERVER)
        lines += ["", f"# -- {header}"]
        if server is not None and server != current:
            lines += server_lines(server.command, server.ready_url)
        current = server
        lines += list(body)
    if current is not None:
        lines.append(STOP_SERVER)
    return "\n".join(lines) + "\n"
