"""The parts and words of a response, computed once per text and shared by every curation step.

The format filters, the short-thought and repetition filters, the exact-duplicate fingerprint and
the near-duplicate shingles all parse the same response or split it into lower-cased ``\\w+``
words. A small cache keyed by the text (a string's hash is computed once and stored in the string)
means each step after the first gets the result for free. The cache holds the last few texts only:
it is for one row passing through the steps, not a memo of a whole dataset. These words are for
curation statistics; they are not a model's tokenizer.
"""

from __future__ import annotations

import re
from functools import lru_cache

from reasonloop.format import Parsed, parse

_WORD = re.compile(r"\w+")
# For ASCII text \w is [A-Za-z0-9_]: map every other byte to a space and split, about twice as
# fast as the regex (a test checks that both agree on every ASCII character).
_ASCII_NON_WORD_TO_SPACE = bytes(
    c if chr(c).isalnum() or c == ord("_") else ord(" ") for c in range(128)
) + bytes(128)

# A few entries: one row's text, its thought, and its problem text are live at once.
_CACHED = 8


@lru_cache(maxsize=_CACHED)
def words(text: str) -> tuple[str, ...]:
    """The lower-cased ``\\w+`` words of ``text`` (a tuple, as it is shared between callers)."""
    low = text.lower()
    if low.isascii():
        return tuple(
            low.encode("ascii").translate(_ASCII_NON_WORD_TO_SPACE).decode("ascii").split()
        )
    return tuple(_WORD.findall(low))


def parts(text: str) -> Parsed:
    """:func:`reasonloop.format.parse`, cached (a ``Parsed`` is frozen, so sharing it is safe).
    Like ``parse`` it never raises: a non-string (a bad record) is parsed uncached."""
    return _parts(text) if isinstance(text, str) else parse(text)


_parts = lru_cache(maxsize=_CACHED)(parse)
