"""A run as steps, each done once: the one loop every recipe (loop or demo) runs through.

A finished step leaves ``ROOT/steps/NAME.json`` (``{"value": its summary, "seconds": ...}``) and
is only summarised when the run is started again; a step killed half-way starts over (the stages
that keep their own progress, such as explore's store, continue where they stopped). Each step
says one line when it ends: ``NAME: SUMMARY [Ns]`` (or ``NAME: done before; SUMMARY``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonloop.progress import Reporter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """One step of a run: ``run()`` does the work and returns a JSON-able summary; ``summary``
    words it; ``commands`` are the command lines that do the same by hand (``--dry-run``)."""

    name: str
    title: str
    run: Callable[[], Any]
    summary: Callable[[Any], str]
    commands: Callable[[], list[str]]
    serve: Callable[[], Any] = lambda: None  # the server the step samples from, if any
    script_serve: Callable[[], Any] | None = None  # what its command lines need
    trains: bool = False


def marker(root: Path, name: str) -> Any:
    """The summary a finished step left (None while it has not finished)."""
    path = Path(root) / "steps" / f"{name}.json"
    return json.loads(path.read_text())["value"] if path.exists() else None


def seconds(root: Path, name: str) -> float | None:
    """How long a finished step took (None while it has not finished)."""
    path = Path(root) / "steps" / f"{name}.json"
    return json.loads(path.read_text()).get("seconds") if path.exists() else None


def _save(root: Path, name: str, value: Any, seconds: float) -> None:
    path = Path(root) / "steps" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"value": value, "seconds": seconds}, default=str))
    tmp.replace(path)


def run_steps(
    root: Path,
    steps: Iterable[Step],
    reporter: Reporter,
    *,
    before: Callable[[Step], None] | None = None,
) -> None:
    """Run ``steps`` in order, each once (see the module docstring). ``steps`` may be a
    generator: a step planned from an earlier one's outcome is asked for after that one ends.
    ``before(step)`` runs before a step that is not done yet (to start its server, free memory)."""
    current = None
    try:
        for step in steps:
            current = step.name
            done = marker(root, step.name)
            if done is not None:
                reporter.line(f"{step.name}: done before; {step.summary(done)}")
                continue
            if before is not None:
                before(step)
            t0 = time.perf_counter()
            value = step.run()
            seconds = time.perf_counter() - t0
            _save(root, step.name, value, seconds)
            log.info("%s done in %.1fs", step.name, seconds)
            value = json.loads(json.dumps(value, default=str))  # as a rerun will read it
            reporter.line(f"{step.name}: {step.summary(value)} [{seconds:.0f}s]")
        current = None
    except BaseException:
        if current is not None:
            reporter.line(f"{current}: failed; run the same command again to resume here")
        raise


__all__ = ["Step", "marker", "run_steps", "seconds"]
