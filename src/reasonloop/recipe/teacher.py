"""The Countdown teacher behind the engine protocol (engine spec ``countdown`` in a recipe).

It narrates :func:`reasonloop.demo.teacher.solve`'s search for the puzzle in the request's last
message, so a loop recipe can distil from it like from any model: with no model, no network and
in milliseconds. Sample ``i`` of a request with seed ``s`` uses the random seed ``s + i`` (a
different order of tries, hence a different thought). It only knows Countdown: any other request
gets an empty reply (which grades as ``no_answer``). It cannot score texts.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from reasonloop.demo.countdown import parse_problem
from reasonloop.demo.teacher import solve
from reasonloop.engines.base import Prompt, Request, Result, Sample, Scored
from reasonloop.errors import EngineError

SPEC = "countdown"


class CountdownTeacher:
    """The programmatic Countdown teacher; ``quality`` is ``good`` or ``poor`` (see ``solve``)."""

    def __init__(self, *, quality: str = "good", max_lines: int = 8):
        self.spec = SPEC
        self.model = f"countdown-search-{quality}"
        self.quality = quality
        self.max_lines = max_lines

    def generate(self, requests: Sequence[Request]) -> list[Result]:
        out = []
        for req in requests:
            text = req.prompt if req.prompt is not None else (req.messages or ())[-1].content
            puzzle = parse_problem(text)
            samples = []
            for i in range(req.n):
                if puzzle is None:
                    samples.append(Sample("", 0, "stop"))
                    continue
                rng = random.Random((req.seed or 0) + i)
                trace = solve(puzzle, quality=self.quality, rng=rng, max_lines=self.max_lines)
                samples.append(Sample(trace.text, len(trace.text.split()), "stop"))
            out.append(Result(tuple(samples)))
        return out

    def score(self, prompt: Prompt, continuation: str) -> Scored:
        raise EngineError("the countdown teacher cannot score texts")

    def close(self) -> None:
        pass
