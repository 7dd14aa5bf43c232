import random

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH

from reasonloop.curate.dedup import (
    Decontaminator,
    ExactDedup,
    NearDedup,
    normalize,
    shingle_hashes,
)

BASE = (
    "We want the number of ways to choose two socks of the same colour from a drawer holding "
    "four red socks and six blue socks. Count red pairs: four choose two is six. Count blue pairs: "
    "six choose two is fifteen. So there are twenty one ways in total, and the answer is 21."
)


def test_exact_dedup_ignores_case_and_spacing_only():
    d = ExactDedup()
    assert normalize("  The  Answer, is 4! ") == "the answer is 4"
    assert [
        d.is_duplicate(t) for t in ("The answer is 4.", "the  answer is 4", "The answer is 5.")
    ] == [
        False,
        True,
        False,
    ]


def test_near_dedup_catches_small_edits_not_different_texts():
    d = NearDedup(threshold=0.7, num_perm=128)
    assert d.is_duplicate(BASE) is False
    assert d.is_duplicate(BASE.replace("twenty one", "twenty-one")) is True  # one word changed
    assert d.is_duplicate(BASE + " Done.") is True
    other = (
        "A train leaves the station at noon travelling at sixty miles per hour, and a second train "
        "follows one hour later at eighty miles per hour. The second catches up after three hours."
    )
    assert d.is_duplicate(other) is False
    assert d.is_duplicate(other) is True  # now indexed


def test_minhash_is_deterministic():
    a, b = NearDedup(), NearDedup()
    assert (a.minhash(BASE).hashvalues == b.minhash(BASE).hashvalues).all()


def test_decontamination_by_ngram_overlap():
    bench = [
        "Find the remainder when the sum of the first one hundred positive integers is divided by seven."
    ]
    d = Decontaminator(bench, n=8)
    assert d.is_contaminated(
        "Problem: find the remainder when the sum of the first one hundred positive integers is "
        "divided by 9"
    )
    assert not d.is_contaminated("Find the remainder when 2^100 is divided by seven, using Fermat.")
    assert not d.is_contaminated("too short")


def _stream(n: int = 300, seed: int = 3) -> list[str]:
    """Texts with many near duplicates (an earlier text with a word or two changed or added)."""
    rng = random.Random(seed)
    vocab = BASE.lower().replace(",", "").replace(".", "").replace(":", "").split()
    out: list[str] = []
    for _ in range(n):
        if out and rng.random() < 0.5:
            ws = rng.choice(out).split() or ["empty"]
            for _ in range(rng.randint(0, 2)):
                ws[rng.randrange(len(ws))] = rng.choice(vocab)
            out.append(" ".join(ws + ["done"] * rng.randint(0, 2)))
        else:
            out.append(" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 120))))
    return out


@pytest.mark.parametrize("num_perm,ngram", [(64, 5), (128, 3)])
def test_signature_is_datasketch_minhash(num_perm, ngram):
    d = NearDedup(num_perm=num_perm, ngram=ngram)
    proto = MinHash(num_perm=num_perm, seed=1)
    for text in _stream(80) + [""]:
        hv = shingle_hashes(text, ngram)
        ref = MinHash(
            num_perm=num_perm,
            seed=1,
            hashfunc=int,  # the n-gram hashes' low 32 bits are the values hashed
            permutations=proto.permutations,
            scheme="affine32",
        )
        ref.update_batch((hv & np.uint64(0xFFFFFFFF)).tolist())
        assert ref.hashvalues.tolist() == d.signature(hv).tolist()
        assert ref.hashvalues.tolist() == d.minhash(text).hashvalues.tolist()


@pytest.mark.parametrize("threshold", [0.5, 0.8, 0.9])
def test_near_dedup_decides_as_datasketch_lsh(threshold):
    """The band-key set gives the answers datasketch's MinHashLSH query-then-insert gives."""
    d = NearDedup(threshold=threshold)
    lsh = MinHashLSH(threshold=threshold, num_perm=64)
    ours, theirs = [], []
    for i, text in enumerate(_stream()):
        ours.append(d.is_duplicate(text))
        m = d.minhash(text)
        theirs.append(bool(lsh.query(m)))
        if not theirs[-1]:
            lsh.insert(i, m)
    assert ours == theirs
    assert 30 < sum(ours) < 150, sum(ours)  # the stream does exercise both answers


def test_band_keys_are_pure_and_hashes_sorted_distinct():
    d = NearDedup()
    hv = shingle_hashes(BASE, 5)
    assert d.band_keys(hv) == NearDedup().band_keys(hv)  # stable: they can come from a worker
    assert len(d.band_keys(hv)) == d.bands
    assert hv.tolist() == sorted(set(hv.tolist()))
    assert shingle_hashes("a b", 5).size == 1 and shingle_hashes("", 5).size == 0
