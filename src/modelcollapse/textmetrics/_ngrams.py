"""Shared helpers: check documents, map tokens to integer ids, number n-grams densely.

A *document* is a sequence of tokens (any hashable objects, usually strings); a *sample*
is a sequence of documents. n-grams never cross a document boundary.

Everything past the token-to-id mapping is numpy: an n-gram starting at position i is
numbered by packing the dense id of the (n-1)-gram at i with the token id at i+n-1
(``prefix * V + token``, at most N * V, so no int64 overflow below ~3e9 tokens) and
renumbering with ``np.unique``; no Python dict per n-gram.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from ..errors import UserError


def check_docs(docs, name: str = "docs") -> list:
    """Return ``docs`` as a list of documents, refusing a string where token lists belong."""
    if isinstance(docs, (str, bytes)):
        raise UserError(f"{name} must be a list of documents (each a list of tokens), "
                        "not a single string")
    try:
        docs = list(docs)
    except TypeError:
        raise UserError(f"{name} must be a list of documents (each a list of tokens)") from None
    for i, doc in enumerate(docs):
        if isinstance(doc, (str, bytes)):
            raise UserError(f"{name}[{i}] is a string; documents must be lists of tokens "
                            "(split the text first, e.g. with str.split())")
    return docs


@dataclass(frozen=True)
class Encoded:
    """A sample as integer token ids: all documents concatenated, plus their lengths."""

    ids: np.ndarray        # int64, shape (N,): token ids, documents one after another
    lengths: np.ndarray    # int64, shape (D,): tokens per document
    n_types: int           # size of the (shared) vocabulary the ids index

    @property
    def n_tokens(self) -> int:
        return int(self.ids.size)

    @property
    def n_docs(self) -> int:
        return int(self.lengths.size)


def encode(*samples: Sequence[Sequence]) -> tuple[Encoded, ...]:
    """Encode one or more samples with one shared vocabulary (ids in first-seen order)."""
    flats, lengths = [], []
    for docs in samples:
        lens = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
        lengths.append(lens)
        flats.append(chain.from_iterable(docs))
    flat = list(chain.from_iterable(flats))
    index = {tok: i for i, tok in enumerate(dict.fromkeys(flat))}
    ids = np.fromiter(map(index.__getitem__, flat), dtype=np.int64, count=len(flat))
    out, start = [], 0
    for lens in lengths:
        stop = start + int(lens.sum())
        out.append(Encoded(ids[start:stop], lens, len(index)))
        start = stop
    return tuple(out)


def _doc_of_token(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each token position: its document index and its position inside that document."""
    doc = np.repeat(np.arange(lengths.size, dtype=np.int64), lengths)
    starts = np.cumsum(lengths) - lengths
    return doc, np.arange(doc.size, dtype=np.int64) - starts[doc]


def ngrams(enc: Encoded, max_n: int,
           min_n: int = 1) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(n, gram, doc)`` for n = min_n..max_n: one entry per n-gram occurrence.

    ``gram`` holds dense ids (equal ids = equal n-grams, comparable only within one n and one
    call), ``doc`` the document each occurrence lies in; occurrences come in text order.
    """
    if max_n < 1 or min_n < 1:
        raise UserError(f"n-gram order must be at least 1, got {min(min_n, max_n)}")
    doc, pos = _doc_of_token(enc.lengths)
    room = enc.lengths[doc] - pos          # tokens from this position to the document's end
    key = enc.ids                          # dense ids of the k-grams starting at each position
    base = np.int64(max(enc.n_types, 1))
    for n in range(1, max_n + 1):
        if n > 1:
            # k-gram ids at positions 0..N-n, extended by the token n-1 places on; n-grams
            # that run over a document's end get ids too but are masked out below.
            packed = key[: key.size - 1] * base + enc.ids[n - 1:]
            _, key = np.unique(packed, return_inverse=True)
            key = key.astype(np.int64, copy=False).reshape(-1)
        if n >= min_n:
            valid = room[: key.size] >= n
            yield n, key[valid], doc[: key.size][valid]


def ngram_counts(enc: Encoded, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct n-grams of a sample and their counts: ``(ids, counts)``."""
    _, gram, _ = next(ngrams(enc, n, min_n=n))
    return np.unique(gram, return_counts=True)
