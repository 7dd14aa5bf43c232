"""Thought-behaviour statistics: how often a thought switches strategy, verifies, backtracks, plans.

Counts of cue phrases per trajectory — the behaviours the slow-thinking papers describe — plus the
thought's length. They are features for curation and for reading runs, not a classifier: a cue
phrase is counted wherever it appears, and a behaviour written in other words is missed.
"""

from __future__ import annotations

import dataclasses
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from reasonloop.format import parse
from reasonloop.records import Trajectory

CUES: dict[str, tuple[str, ...]] = {
    "strategy_switch": (
        r"\balternatively\b",
        r"\banother (?:approach|way|method|idea)\b",
        r"\blet me try (?:a different|another)\b",
        r"\binstead\b",
    ),
    "verification": (
        r"\blet me (?:check|verify|double[- ]check|confirm)\b",
        r"\bto (?:check|verify)\b",
        r"\bchecking\b",
        r"\bsanity check\b",
    ),
    "backtracking": (
        r"\bwait\b",
        r"\bthat(?:'s| is) (?:wrong|not right|incorrect)\b",
        r"\bdead end\b",
        r"\bgo back\b",
        r"\bback\.",
        r"\bi made a mistake\b",
        r"\bovershoots?\b",
    ),
    "planning": (
        r"\bfirst,?\b",
        r"\bplan\b",
        r"\bstep \d\b",
        r"\bnext,?\b",
        r"\bthen\b",
        r"\bgoal\b",
    ),
}
_COMPILED = {k: [re.compile(p, re.IGNORECASE) for p in v] for k, v in CUES.items()}


@dataclass(frozen=True, slots=True)
class Behaviours:
    strategy_switch: int
    verification: int
    backtracking: int
    planning: int
    thought_words: int

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def count_behaviours(text: str) -> Behaviours:
    """Behaviour counts of a response's thought (the whole text when it has no thought part)."""
    p = parse(text if isinstance(text, str) else "")
    thought = p.thought if p.thought is not None else (p.solution or "")
    counts = {k: sum(len(rx.findall(thought)) for rx in rxs) for k, rxs in _COMPILED.items()}
    return Behaviours(**counts, thought_words=len(thought.split()))


BEHAVIOUR_KEYS = ("strategy_switch", "verification", "backtracking", "planning")


def behaviour_groups(trajectories: Iterable[Trajectory]) -> dict[str, dict[str, float]]:
    """Thought-behaviour statistics by group (``verdict=correct|incorrect|ungraded`` and
    ``source=MODEL``): ``n``, the mean count of each behaviour per trajectory, and the median
    ``thought_words``."""
    groups: dict[str, list[dict]] = {}
    for t in trajectories:
        b = count_behaviours(t.text).as_dict()
        verdict = (
            "ungraded" if t.verdict is None else ("correct" if t.verdict.correct else "incorrect")
        )
        source = t.generator.model if t.generator else "?"
        for key in (f"verdict={verdict}", f"source={source}"):
            groups.setdefault(key, []).append(b)
    return {
        name: {
            "n": len(rows),
            **{k: statistics.mean(r[k] for r in rows) for k in BEHAVIOUR_KEYS},
            "thought_words": statistics.median(r["thought_words"] for r in rows),
        }
        for name, rows in sorted(groups.items())
    }
