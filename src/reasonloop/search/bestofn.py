"""Best-of-N: sample ``n`` responses, return the one a scorer ranks highest.

Ties go to the earlier sample; NaN scores rank last. With :class:`~reasonloop.search.scorers.
VerifierScorer` this is oracle best-of-N (pass@N), flagged ``details["oracle"]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from reasonloop.engines.base import Engine, Prompt
from reasonloop.generate import Sampling
from reasonloop.options import check_options, include
from reasonloop.records import Problem
from reasonloop.search import Extract, SearchResult
from reasonloop.search.scorers import Scorer, is_oracle
from reasonloop.search.vote import chosen_result, draw, top_scored


@dataclass(frozen=True, slots=True)
@include(Sampling, n=8)
class BestOfN:
    """``n`` samples ranked by ``scorer``; the top one is the response."""

    scorer: Scorer
    extract: Extract | None = None

    def __post_init__(self) -> None:
        check_options(self)

    def run(self, problem: Problem, prompt: Prompt | None, engine: Engine) -> SearchResult:
        cands, spend = draw(self, problem, prompt, engine, self.scorer)
        best = top_scored(cands)
        chosen = cands[best]
        details = {
            "strategy": "best-of-n",
            "n": len(cands),
            "chosen": best,
            "best_score": chosen.score,
            "oracle": is_oracle(self.scorer),
        }
        return chosen_result(chosen, cands, spend, details)


__all__ = ["BestOfN"]
