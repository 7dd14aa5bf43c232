"""Shim: the reward-model contract and the ORM / PRM / GenRM readers moved to
:mod:`reasonloop.train.rmcontract`; :func:`load_reward_scorer` to :mod:`reasonloop.search.scorers`.

shim: remove once upper floors import from reasonloop.train.rmcontract
"""

from reasonloop.search.scorers import load_reward_scorer
from reasonloop.train.rmcontract import (
    KINDS,
    NO,
    ORM,
    PRM,
    STEP_SEPARATOR,
    YES,
    GenRM,
    load_classifier,
    orm_ids,
    orm_text,
    prm_ids,
    question_for,
    train_info,
    verification_prompt,
)

__all__ = [
    "GenRM",
    "KINDS",
    "NO",
    "ORM",
    "PRM",
    "STEP_SEPARATOR",
    "YES",
    "load_classifier",
    "load_reward_scorer",
    "orm_ids",
    "orm_text",
    "prm_ids",
    "question_for",
    "train_info",
    "verification_prompt",
]
