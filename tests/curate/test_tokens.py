import random
import re

import pytest

from reasonloop.curate.tokens import parts, words
from reasonloop.format import parse, render

WORD = re.compile(r"\w+")  # the definition the fast ASCII path must reproduce


def test_words_agree_with_the_regex_on_every_ascii_character():
    for c in map(chr, range(128)):
        text = f"Ab{c}9_{c}x{c}"
        assert words(text) == tuple(WORD.findall(text.lower())), repr(c)


@pytest.mark.parametrize(
    "alphabet", ["ab Z_9.\t\n\x1c-'", "a\u00e9 \u03a3\u0391\u03a3 \u212a \u0130 \u4e2d\u6587 ,x"]
)
def test_words_agree_with_the_regex_on_random_text(alphabet):
    rng = random.Random(0)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25)))
        assert words(text) == tuple(WORD.findall(text.lower())), repr(text)


def test_parts_is_parse_and_never_raises():
    text = render("think", "\\boxed{1}")
    assert parts(text) == parse(text)
    assert parts(text) is parts(text)  # cached: the filters share one parse per row
    assert parts(None) == parse(None)  # type: ignore[arg-type]
