"""Cleaning filters for long-form trajectories (STILL-2's cleaning step).

Each filter is a pure function ``(Trajectory) -> Keep`` where ``Keep`` is ``True`` or
``(False, "reason")``; the runner counts drops per reason and keeps the rejects. Filters never raise
on model output. Thresholds live in :class:`FilterConfig` (a frozen dataclass, so it can be a cache
key and is saved with a run).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from reasonloop.curate.tokens import parts, words
from reasonloop.errors import ConfigError
from reasonloop.records import Trajectory

Keep = bool | tuple[bool, str]
Filter = Callable[[Trajectory], Keep]


@dataclass(frozen=True, slots=True)
class FilterConfig:
    min_thought_words: int = 20
    ngram: int = 5
    max_ngram_repeat_fraction: float = 0.3
    max_line_repeat: int = 8
    max_gibberish_fraction: float = 0.25
    max_foreign_script_fraction: float = 0.05
    require_correct: bool = True

    def __post_init__(self) -> None:
        if self.min_thought_words < 0:
            raise ConfigError(
                f"must be >= 0, got {self.min_thought_words}", field="min_thought_words"
            )
        if not 0 < self.max_ngram_repeat_fraction <= 1:
            raise ConfigError(
                f"must be in (0, 1], got {self.max_ngram_repeat_fraction}",
                field="max_ngram_repeat_fraction",
            )
        if self.ngram < 1:
            raise ConfigError(f"must be >= 1, got {self.ngram}", field="ngram")


def check_format(t: Trajectory) -> Keep:
    """The response has a finished thought and a non-empty solution."""
    p = parts(t.text)
    if not p.thought_closed:
        return False, "thought_unfinished"
    if not p.thought:
        return False, "missing_thought"
    if not p.solution:
        return False, "missing_solution"
    return True


def check_truncated(t: Trajectory) -> Keep:
    """The sampler stopped on its own, not at the token limit."""
    if t.finish_reason == "length":
        return False, "truncated"
    p = parts(t.text)
    if p.formatted and p.solution is not None and not p.solution_closed:
        return False, "truncated"
    return True


def check_correct(t: Trajectory) -> Keep:
    if t.verdict is None:
        return False, "ungraded"
    return True if t.verdict.correct else (False, "wrong_answer")


def make_short_thought(min_words: int) -> Filter:
    def check_short_thought(t: Trajectory) -> Keep:
        thought = parts(t.text).thought or ""
        return True if len(words(thought)) >= min_words else (False, "short_thought")

    return check_short_thought


def repeated_ngram_fraction(text: str, n: int) -> float:
    """The fraction of n-grams that are repeats of an earlier n-gram (0 = all distinct)."""
    w = words(text)
    total = len(w) - n + 1
    if total <= 0:
        return 0.0
    # zip of n shifted views (of unequal length) builds the n-gram tuples in C
    return 1.0 - len(set(zip(*(w[i:] for i in range(n)), strict=False))) / total


def make_repetition(n: int, max_fraction: float, max_line_repeat: int) -> Filter:
    def check_repetition(t: Trajectory) -> Keep:
        if repeated_ngram_fraction(t.text, n) > max_fraction:
            return False, "repetition"
        lines = Counter(s for s in map(str.strip, t.text.splitlines()) if len(s) > 8)
        if lines and max(lines.values()) > max_line_repeat:
            return False, "repetition"
        return True

    return check_repetition


_ALLOWED_SYMBOLS = set("+-*/=^_()[]{}<>|\\.,;:!?'\"$%&#@~`")


_CONSONANTS = "bcdfghjklmnpqrstvwxzBCDFGHJKLMNPQRSTVWXZ"  # y counts as a vowel ("rhythm")
_VOWEL = re.compile(r"[aeiouy]")


def gibberish_fraction(text: str) -> float:
    """The fraction of whitespace-separated tokens that look like noise: long runs with no vowel,
    mostly symbols, or very long unbroken strings (LaTeX and numbers are not noise)."""
    tokens = text.split()
    if not tokens:
        return 0.0
    if text.isascii():
        # every ASCII punctuation mark is an allowed symbol, so only two shapes can be noise here:
        # 6-40 ASCII consonants, or over 40 characters not starting with a backslash (LaTeX)
        bad = 0
        for tok in tokens:
            if len(tok) > 40:
                bad += tok[0] != "\\"
            elif len(tok) >= 6 and not tok.strip(_CONSONANTS):
                bad += 1
        return bad / len(tokens)
    bad = 0
    for tok in tokens:
        letters = [c for c in tok if c.isalpha()]
        symbols = [c for c in tok if not c.isalnum() and c not in _ALLOWED_SYMBOLS]
        if (
            len(tok) > 40
            and not tok.startswith("\\")
            or len(symbols) > len(tok) / 2
            or len(letters) >= 6
            and tok.isalpha()
            and tok.isascii()
            and not _VOWEL.search(tok.lower())
        ):
            bad += 1
    return bad / len(tokens)


def make_gibberish(max_fraction: float) -> Filter:
    def check_gibberish(t: Trajectory) -> Keep:
        return True if gibberish_fraction(t.text) <= max_fraction else (False, "gibberish")

    return check_gibberish


def script_of(ch: str) -> str | None:
    """A coarse writing-system name for a letter (None for non-letters)."""
    if not ch.isalpha():
        return None
    if ch.isascii():
        return "LATIN"
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return "OTHER"
    if "CJK" in name or "HIRAGANA" in name or "KATAKANA" in name:
        return "CJK"
    if name.startswith(("GREEK", "MATHEMATICAL")):
        return "GREEK"  # Greek letters are maths, not a second language
    return name.split()[0]


_ASCII_LETTERS = bytes(string.ascii_letters, "ascii")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def foreign_script_fraction(text: str) -> float:
    """The share of letters not in the text's dominant script (Greek letters never count)."""
    if text.isascii():
        return 0.0
    raw = text.encode("ascii", "ignore")
    counts = Counter(s for s in map(script_of, _NON_ASCII.findall(text)) if s and s != "GREEK")
    counts["LATIN"] += len(raw) - len(raw.translate(None, _ASCII_LETTERS))
    total = sum(counts.values())
    if not total:
        return 0.0
    return 1.0 - counts.most_common(1)[0][1] / total


def make_mixed_language(max_fraction: float) -> Filter:
    def check_mixed_language(t: Trajectory) -> Keep:
        if foreign_script_fraction(t.text) > max_fraction:
            return False, "mixed_language"
        return True

    return check_mixed_language


def default_filters(cfg: FilterConfig = FilterConfig()) -> list[tuple[str, Filter]]:
    """The cleaning pipeline in order (cheap checks first)."""
    out: list[tuple[str, Filter]] = [
        ("format", check_format),
        ("truncated", check_truncated),
    ]
    if cfg.require_correct:
        out.append(("correct", check_correct))
    out += [
        ("short_thought", make_short_thought(cfg.min_thought_words)),
        (
            "repetition",
            make_repetition(cfg.ngram, cfg.max_ngram_repeat_fraction, cfg.max_line_repeat),
        ),
        ("gibberish", make_gibberish(cfg.max_gibberish_fraction)),
        ("mixed_language", make_mixed_language(cfg.max_foreign_script_fraction)),
    ]
    return out


def first_failure(t: Trajectory, filters: Iterable[tuple[str, Filter]]) -> str | None:
    """The reason of the first filter that drops ``t``, or None when every filter keeps it."""
    for name, f in filters:
        try:
            keep = f(t)
        except Exception:  # a filter bug must not kill a long curation run
            return f"filter_error:{name}"
        if keep is True:
            continue
        if isinstance(keep, tuple) and not keep[0]:
            return keep[1]
        if keep is False:
            return name
    return None
