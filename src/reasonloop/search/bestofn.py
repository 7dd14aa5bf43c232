"""Best-of-N: sample ``n`` responses, return the one a scorer ranks highest.

Ties go to the earlier sample; NaN scores rank last. With :class:`~reasonloop.search.scorers.
VerifierScorer` this is oracle best-of-N (pass@N), flagged ``details["oracle"]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from reasonloop.engines.base import Engine, Prompt
from reasonloop.records import Problem
from reasonloop.search import Extract, SearchResult, default_prompt, extract_for, finite
from reasonloop.search.scorers import Scorer, is_oracle
from reasonloop.search.vote import check_settings, sample_candidates


@dataclass(frozen=True, slots=True)
class BestOfN:
    """``n`` samples ranked by ``scorer``; the top one is the response."""

    scorer: Scorer
    n: int = 8
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 1024
    seed: int | None = 0
    extract: Extract | None = None

    def run(self, problem: Problem, prompt: Prompt | None, engine: Engine) -> SearchResult:
        check_settings(self.n, self.temperature, self.max_tokens)
        prompt = default_prompt(problem) if prompt is None else prompt
        _, cands, spend = sample_candidates(
            problem,
            prompt,
            engine,
            n=self.n,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            seed=self.seed,
            extract=self.extract or extract_for(problem),
            scorer=self.scorer,
        )
        best = max(range(len(cands)), key=lambda i: (finite(cands[i].score), -i))
        chosen = cands[best]
        details = {
            "strategy": "best-of-n",
            "n": len(cands),
            "chosen": best,
            "best_score": chosen.score,
            "oracle": is_oracle(self.scorer),
        }
        return SearchResult(
            chosen.text,
            chosen.answer,
            spend.tokens,
            tuple(cands),
            details,
            spend.prompt_tokens,
        )


__all__ = ["BestOfN"]
