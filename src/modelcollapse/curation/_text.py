"""Shared helpers for the curation blocks: documents laid end to end, 64-bit hashing of
token contexts and n-grams, and per-document mean log-likelihood under an ``NGramLM``.

Everything is vectorized over all token positions of all documents at once; the only
Python loops run over the n-gram order or the context width (a handful of iterations).

Hashing is the splitmix64 finalizer (Steele, Lea and Flood 2014) in numpy ``uint64``
arithmetic, which wraps modulo 2^64 on arrays without warnings. A sequence is hashed by
folding: ``h = mix(key); h = mix(h ^ t1); h = mix(h ^ t2); ...``, so equal sequences give
equal hashes and different ones collide with probability about 2^-64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..lm.counts import BOS, as_int_arrays

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 of a ``uint64`` array (any shape): a bijection of [0, 2^64) whose output
    bits look independent and uniform, even for consecutive inputs."""
    z = np.asarray(x, dtype=np.uint64) + _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def as_uint64(tokens: np.ndarray) -> np.ndarray:
    """Token ids as ``uint64`` bit patterns (negative ids map to distinct huge values)."""
    return np.asarray(tokens).astype(np.int64, copy=False).view(np.uint64)


def seed_hash(key: int, shape=()) -> np.ndarray:
    """``mix64(key)`` broadcast to ``shape``: the start of every folded hash under ``key``."""
    k = np.array([int(key) % (1 << 64)], dtype=np.uint64)
    return np.broadcast_to(mix64(k), shape if shape else (1,)).copy()


class Flat:
    """Documents end to end.

    tokens: (M,) int64 all tokens; lengths: (N,) int64; doc: (M,) the document of each
    token; pos: (M,) its position inside its document; starts: (N,) index of each
    document's first token in ``tokens``.
    """

    def __init__(self, docs: Sequence[np.ndarray], what: str = "docs") -> None:
        arrays = as_int_arrays(docs, what)
        self.n_docs = len(arrays)
        self.lengths = np.fromiter(map(len, arrays), np.int64, self.n_docs)
        self.tokens = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
        self.starts = np.cumsum(self.lengths) - self.lengths
        self.doc = np.repeat(np.arange(self.n_docs, dtype=np.int64), self.lengths)
        self.pos = np.arange(self.tokens.size, dtype=np.int64) - self.starts[self.doc]

    def contexts(self, width: int) -> np.ndarray:
        """(M, width) the ``width`` tokens before each token, oldest first (the last column
        is the previous token), padded with ``<s>`` (BOS = 1) before a document's start."""
        out = np.full((self.tokens.size, width), BOS, dtype=np.int64)
        for back in range(1, width + 1):
            ok = self.pos >= back
            col = out[:, width - back]
            col[ok] = self.tokens[np.flatnonzero(ok) - back]
        return out


def ngram_hashes(flat: Flat, n: int, key: int, whole_short: bool = True
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every n-gram occurrence (never across documents): ``(hash, doc)``, both
    (G,), in text order. ``whole_short``: a document shorter than ``n`` (the empty one
    included) contributes one hash of its whole token sequence, so that every document
    has at least one n-gram and short documents are still compared by content."""
    start = np.flatnonzero(flat.lengths[flat.doc] - flat.pos >= n)   # n-gram start positions
    h = seed_hash(key, start.shape)
    u = as_uint64(flat.tokens)
    for j in range(n):
        h = mix64(h ^ u[start + j])
    doc = flat.doc[start]
    if not whole_short:
        return h, doc
    short = np.flatnonzero(flat.lengths < n)
    if short.size == 0:
        return h, doc
    # Short documents: fold their tokens position by position (at most n - 1 of them);
    # the length is folded in last, so that a short document's hash differs from its n-grams'.
    hs = seed_hash(key, short.shape)
    for j in range(n - 1):
        live = flat.lengths[short] > j
        idx = flat.starts[short[live]] + j
        hs[live] = mix64(hs[live] ^ u[idx])
    hs = mix64(hs ^ flat.lengths[short].astype(np.uint64) ^ np.uint64(0xA5A5A5A5A5A5A5A5))
    h, doc = np.concatenate([h, hs]), np.concatenate([doc, short])
    order = np.argsort(doc, kind="stable")   # keep documents in order
    return h[order], doc[order]


def distinct_pairs(hashes: np.ndarray, doc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (hash, doc) pairs, each n-gram counted once per document, sorted by hash
    (then document). ``doc`` must be non-decreasing, as :func:`ngram_hashes` and
    :class:`Flat` give it: one stable sort by hash then orders the pairs completely."""
    if hashes.size == 0:
        return hashes, doc
    order = np.argsort(hashes, kind="stable")
    h, d = hashes[order], doc[order]
    first = np.ones(h.size, bool)
    first[1:] = (h[1:] != h[:-1]) | (d[1:] != d[:-1])
    return h[first], d[first]


def run_lengths(sorted_values: np.ndarray) -> np.ndarray:
    """For each element of a sorted array, the number of elements equal to it."""
    if sorted_values.size == 0:
        return np.zeros(0, np.int64)
    starts = np.r_[0, np.flatnonzero(sorted_values[1:] != sorted_values[:-1]) + 1]
    sizes = np.diff(np.r_[starts, sorted_values.size])
    return np.repeat(sizes, sizes)


def distinct_ngrams(docs: Sequence[np.ndarray], n: int = 2) -> int:
    """The number of distinct n-grams (within documents) in ``docs``: a diversity count."""
    h, _ = ngram_hashes(Flat(docs), n, key=0, whole_short=False)
    return int(np.unique(h).size)


def mean_logprob(lm, docs: Sequence[np.ndarray]) -> np.ndarray:
    """(N,) each document's mean natural-log probability per predicted token (its tokens and
    the final ``</s>``) under the fitted ``NGramLM`` ``lm``: minus its log-perplexity."""
    pieces = lm.logprob(docs)
    if not pieces:
        return np.zeros(0)
    sizes = np.fromiter(map(len, pieces), np.int64, len(pieces))   # >= 1: </s> is scored
    total = np.add.reduceat(np.concatenate(pieces), np.cumsum(sizes) - sizes)
    return total / sizes
