"""Exact and near-duplicate removal (MinHash LSH) and benchmark decontamination.

All three work as streams: feed rows one at a time, keep only compact fingerprints (a 64-bit hash
per row for exact duplicates, 64-bit hashes of the LSH band keys for near duplicates, an n-gram
hash set for decontamination). Near-duplicate detection is probabilistic: pairs just above the
Jaccard threshold can be missed and pairs just below can be caught; the LSH parameters come from
``datasketch`` for the threshold.

The expensive halves (tokenising, hashing, MinHash signatures) are pure functions of one text, so
a pipeline can run them in worker processes and hand only the fingerprints to the process that
holds the indexes (:meth:`ExactDedup.seen_before`, :meth:`NearDedup.seen_before`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

from reasonloop.curate.tokens import words


def normalize(text: str) -> str:
    """Lower-case words joined by single spaces: what exact-duplicate detection compares."""
    return " ".join(words(text))


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
_SHIFT = np.uint64(29)


def shingle_hashes(text: str, n: int) -> np.ndarray:
    """Distinct 64-bit hashes of the word n-grams of ``text`` (a text shorter than ``n`` words is
    one n-gram). Vectorised: words are hashed once, n-grams mix them with fixed multipliers."""
    return ngram_hashes(words(text), n)


def ngram_hashes(ws: Sequence[str], n: int) -> np.ndarray:
    """:func:`shingle_hashes` of already split :func:`~reasonloop.curate.tokens.words`."""
    if not ws:
        return np.empty(0, dtype=np.uint64)
    w = np.fromiter(map(_WORD_HASHES.__getitem__, ws), dtype=np.uint64, count=len(ws))
    k = min(n, len(ws))
    m = len(ws) - k + 1
    with np.errstate(over="ignore"):
        h = w[:m] * _MIX[0]
        tmp = np.empty_like(h)  # in-place steps: these arrays are small, allocation dominates
        for j in range(1, k):
            np.right_shift(h, _SHIFT, out=tmp)
            h ^= tmp
            np.multiply(w[j : j + m], _MIX[j], out=tmp)
            h += tmp
    # np.unique's result, several times faster on arrays this small (it hashes before sorting)
    h.sort()
    keep = np.empty(h.size, dtype=bool)
    keep[0] = True
    np.not_equal(h[1:], h[:-1], out=keep[1:])
    return h[keep]


DEFAULT_NGRAM = 5

_U32 = np.uint32
_MAX32 = np.uint32(0xFFFFFFFF)


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, the pre-mix of datasketch's ``affine32`` scheme (uint32
    arithmetic wraps, which is the intended mod 2^32)."""
    h = h ^ (h >> _U32(16))
    h = h * _U32(0x85EBCA6B)
    h = h ^ (h >> _U32(13))
    h = h * _U32(0xC2B2AE35)
    return h ^ (h >> _U32(16))


class NearDedup:
    """MinHash LSH over word n-grams: ``is_duplicate(text)`` is True when an earlier indexed text
    shares an LSH band with it, i.e. has an estimated Jaccard similarity above about ``threshold``
    (then the new text is not indexed).

    The signature is datasketch's ``affine32`` MinHash of the n-gram hashes' low 32 bits, computed
    in one numpy expression (equal to ``MinHash.update_batch``; a test checks it), and the bands
    and rows are ``MinHashLSH``'s optimum for the threshold. The index is a set of 64-bit hashes
    of (band number, band values) instead of ``MinHashLSH``'s storage, in a fraction of its
    memory; it answers as ``MinHashLSH`` query-then-insert does (a test checks it) unless two
    different bands' hashes collide (odds about n_keys² / 2⁶⁴). :meth:`band_keys` is pure and can
    run in a worker process; only :meth:`seen_before` touches the index. Needs datasketch >= 2.0
    (the ``affine32`` scheme).
    """

    def __init__(
        self,
        *,
        threshold: float = 0.8,
        num_perm: int = 64,
        ngram: int = DEFAULT_NGRAM,
        seed: int = 1,
    ):
        from datasketch import MinHash, MinHashLSH

        self.num_perm = num_perm
        self.ngram = ngram
        self.seed = seed
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)  # for its (bands, rows) only
        self.bands, self.rows = lsh.b, lsh.r
        self._MinHash = MinHash
        self._permutations = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
        # as columns: the (permutation, n-gram) matrix is reduced along contiguous rows
        self._a = self._permutations[0].astype(np.uint32)[:, None]
        self._b = self._permutations[1].astype(np.uint32)[:, None]
        self._empty = np.full(num_perm, _MAX32, dtype=np.uint32)
        self._seen: set[int] = set()

    def signature(self, hv: np.ndarray) -> np.ndarray:
        """The MinHash values (uint32, one per permutation) of :func:`shingle_hashes` ``hv``."""
        if not hv.size:
            return self._empty
        x = _fmix32(hv.astype(np.uint32))  # the low 32 bits, as datasketch's 32-bit hashes
        m = self._a * x
        m += self._b
        return m.min(axis=1)

    def band_keys(self, hv: np.ndarray) -> tuple[int, ...]:
        """64-bit hashes of the LSH band keys of :func:`shingle_hashes` ``hv`` (pure: safe to run
        in a worker and send to :meth:`seen_before`)."""
        raw = self.signature(hv).tobytes()
        width = 4 * self.rows
        return tuple(
            int.from_bytes(
                hashlib.blake2b(
                    raw[i * width : (i + 1) * width], digest_size=8, salt=i.to_bytes(8, "little")
                ).digest(),
                "little",
            )
            for i in range(self.bands)
        )

    def minhash(self, text: str):
        """The datasketch ``MinHash`` of ``text``'s word n-grams (for inspection and
        ``jaccard``; the index itself only needs :meth:`band_keys`)."""
        return self._MinHash(
            num_perm=self.num_perm,
            seed=self.seed,
            hashvalues=self.signature(shingle_hashes(text, self.ngram)),
            permutations=self._permutations,
            scheme="affine32",
        )

    def seen_before(self, keys: tuple[int, ...]) -> bool:
        """True when an indexed text shares a band key with ``keys``; otherwise index them."""
        if not self._seen.isdisjoint(keys):
            return True
        self._seen.update(keys)
        return False

    def is_duplicate(self, text: str) -> bool:
        return self.seen_before(self.band_keys(shingle_hashes(text, self.ngram)))

    def is_duplicate_hashes(self, hv: np.ndarray) -> bool:
        """Like :meth:`is_duplicate`, for precomputed :func:`shingle_hashes`."""
        return self.seen_before(self.band_keys(hv))


class Decontaminator:
    """Flags texts that share any word n-gram with the given benchmark texts (13-grams by default,
    the usual choice for decontamination; lower ``n`` flags more)."""

    def __init__(self, benchmark_texts: Iterable[str], *, n: int = 13):
        self.n = n
        self._grams: set[int] = set()
        for t in benchmark_texts:
            self._grams.update(shingle_hashes(t, n).tolist())

    def __len__(self) -> int:
        return len(self._grams)

    def is_contaminated(self, text: str) -> bool:
        ws = words(text)
        if len(ws) < self.n:
            return False
        return not self._grams.isdisjoint(ngram_hashes(ws, self.n).tolist())
