"""Exact and near-duplicate removal (MinHash LSH via ``datasketch``) and benchmark decontamination.

Both work as streams: feed rows one at a time, keep only compact fingerprints (a 64-bit hash per row
for exact duplicates, LSH band keys for near duplicates, an n-gram hash set for decontamination).
Near-duplicate detection is probabilistic: pairs just above the Jaccard threshold can be missed and
pairs just below can be caught; the LSH parameters come from ``datasketch`` for the threshold.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

import numpy as np

_TOKEN = re.compile(r"\w+")


def normalize(text: str) -> str:
    """Lower-case words joined by single spaces: what exact-duplicate detection compares."""
    return " ".join(_TOKEN.findall(text.lower()))


def fingerprint(text: str) -> bytes:
    return hashlib.blake2b(normalize(text).encode("utf-8"), digest_size=8).digest()


class ExactDedup:
    """Remembers 8-byte fingerprints of normalised texts."""

    def __init__(self) -> None:
        self._seen: set[bytes] = set()

    def is_duplicate(self, text: str) -> bool:
        return self.seen_before(fingerprint(text))

    def seen_before(self, fp: bytes) -> bool:
        """Like :meth:`is_duplicate`, for a :func:`fingerprint` computed elsewhere."""
        if fp in self._seen:
            return True
        self._seen.add(fp)
        return False


class _WordHashes(dict):
    """word -> stable 64-bit hash, computed once per distinct word."""

    def __missing__(self, word: str) -> int:
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        if len(self) < 2_000_000:  # bound the cache on huge vocabularies
            self[word] = h
        return h


_WORD_HASHES = _WordHashes()
# Odd 64-bit multipliers that mix the words of an n-gram (fixed, so hashes are stable across runs).
_MIX = np.array(
    [
        (0x9E3779B97F4A7C15 * (2 * j + 1) + 0x632BE59BD9B4E019 * j) % (1 << 64) | 1
        for j in range(64)
    ],
    dtype=np.uint64,
)


def shingle_hashes(text: str, n: int) -> np.ndarray:
    """Distinct 64-bit hashes of the word n-grams of ``text`` (a text shorter than ``n`` words is
    one n-gram). Vectorised: words are hashed once, n-grams mix them with fixed multipliers."""
    words = _TOKEN.findall(text.lower())
    if not words:
        return np.empty(0, dtype=np.uint64)
    w = np.fromiter(map(_WORD_HASHES.__getitem__, words), dtype=np.uint64, count=len(words))
    k = min(n, len(words))
    m = len(words) - k + 1
    with np.errstate(over="ignore"):
        h = w[:m] * _MIX[0]
        for j in range(1, k):
            h = (h ^ (h >> np.uint64(29))) + w[j : j + m] * _MIX[j]
    return np.unique(h)


DEFAULT_NGRAM = 5


class NearDedup:
    """MinHash LSH over word n-grams: ``is_duplicate(text)`` is True when an earlier text has an
    estimated Jaccard similarity above ``threshold`` (then the new text is not indexed)."""

    def __init__(
        self, *, threshold: float = 0.8, num_perm: int = 64, ngram: int = 5, seed: int = 1
    ):
        from datasketch import MinHash, MinHashLSH

        self._MinHash = MinHash
        self.num_perm = num_perm
        self.ngram = ngram
        self.seed = seed
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._count = 0
        # One MinHash object reused for its permutations; a fresh one per text costs 10x more.
        self._proto = MinHash(num_perm=num_perm, seed=seed)

    def minhash(self, text: str):
        """The MinHash of ``text``'s word n-grams (datasketch's permutations over our 32-bit
        n-gram hashes)."""
        return self.minhash_of(shingle_hashes(text, self.ngram))

    def minhash_of(self, hv: np.ndarray):
        """The MinHash of precomputed :func:`shingle_hashes` (they can come from a worker)."""
        m = self._MinHash(
            num_perm=self.num_perm,
            seed=self.seed,
            hashfunc=int,
            permutations=self._proto.permutations,
            scheme=self._proto.scheme,
        )
        if hv.size:
            m.update_batch((hv & np.uint64(0xFFFFFFFF)).tolist())
        return m

    def is_duplicate(self, text: str) -> bool:
        return self.is_duplicate_hashes(shingle_hashes(text, self.ngram))

    def is_duplicate_hashes(self, hv: np.ndarray) -> bool:
        """Like :meth:`is_duplicate`, for precomputed :func:`shingle_hashes`."""
        m = self.minhash_of(hv)
        if self.lsh.query(m):
            return True
        self.lsh.insert(self._count, m, check_duplication=False)
        self._count += 1
        return False


class Decontaminator:
    """Flags texts that share any word n-gram with the given benchmark texts (13-grams by default,
    the usual choice for decontamination; lower ``n`` flags more)."""

    def __init__(self, benchmark_texts: Iterable[str], *, n: int = 13):
        self.n = n
        self._grams: set[int] = set()
        for t in benchmark_texts:
            self._grams.update(int(h) for h in shingle_hashes(t, n))

    def __len__(self) -> int:
        return len(self._grams)

    def is_contaminated(self, text: str) -> bool:
        words = _TOKEN.findall(text.lower())
        if len(words) < self.n:
            return False
        return any(int(h) in self._grams for h in shingle_hashes(text, self.n))
