"""Deduplication: exact (identical token sequences) and near (MinHash LSH).

Both keep the first document of each group in batch order (so put the documents that
should win, e.g. real ones, first) and report the group of every document as its score:
the index of the group's first document.

Near duplicates (Broder 1997; the MinHash + LSH pass of datatrove and of most LLM data
pipelines): each document is the set of its ``shingle``-token shingles; two documents are
near duplicates when the Jaccard similarity of their sets is at least ``threshold``. The
MinHash signatures are computed in numpy for all documents at once with the permutations of
``datasketch.MinHash(num_perm, seed, scheme="affine64")`` (the same values its
``update_batch`` gives when its hash function returns our 64-bit shingle hashes); the
candidate pairs come from ``datasketch.MinHashLSH`` banding and are kept only when their
signatures agree on at least ``threshold`` of the permutations (the MinHash estimate of the
Jaccard similarity: LSH candidates include some dissimilar pairs). Groups are the connected
components of the kept pairs (union-find), as datatrove does.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from ..errors import UserError
from ._text import Flat, ngram_hashes
from .base import Batch, Block, Decision

_FMIX = (np.uint64(33), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))
_CHUNK = 1 << 21   # shingle x permutation cells per chunk (16 MiB of uint64)


def _datasketch():
    try:
        import datasketch
    except ImportError:
        raise UserError("near-duplicate detection needs datasketch: "
                        "pip install 'datasketch>=2'") from None
    # The MinHash permutation schemes ("affine64") arrived in datasketch 2.0.
    if int(str(getattr(datasketch, "__version__", "0")).split(".")[0] or 0) < 2:
        raise UserError(f"near-duplicate detection needs datasketch 2.0 or newer (found "
                        f"{datasketch.__version__}): pip install -U 'datasketch>=2'")
    return datasketch


class ExactDedup(Block):
    """Drops every document identical (same token ids, whatever the integer dtype) to an
    earlier one in the batch (reason ``"exact_duplicate"``)."""

    reason = "exact_duplicate"

    def groups(self, docs: Sequence[np.ndarray]) -> np.ndarray:
        """(N,) int64: the index of the first document identical to each one."""
        first: dict[bytes, int] = {}
        # Keyed by the exact bytes (not a hash of them), so there are no false matches.
        return np.array([first.setdefault(np.asarray(d, dtype=np.int64).tobytes(), i)
                         for i, d in enumerate(docs)], dtype=np.int64)

    def __call__(self, batch: Batch, rng=None) -> Decision:
        groups = self.groups(batch.docs)
        return Decision.drop(groups != np.arange(len(batch)), self.reason, groups)


class NearDedup(Block):
    """Drops near duplicates of an earlier document (reason ``"near_duplicate"``).

    threshold : Jaccard similarity in (0, 1] of the documents' shingle sets at or above
        which two documents are duplicates. num_perm : MinHash permutations (>= 2; more
        is a finer similarity estimate, standard error about ``sqrt(J(1-J)/num_perm)``).
    shingle : tokens per shingle (>= 1); a document shorter than this is one shingle, its
        whole sequence. seed : seed of the MinHash permutations.
    """

    reason = "near_duplicate"

    def __init__(self, threshold: float = 0.8, num_perm: int = 128, shingle: int = 3,
                 seed: int = 1) -> None:
        if not (isinstance(threshold, numbers.Real) and 0 < threshold <= 1):
            raise UserError(f"near-dedup threshold must be in (0, 1]; got {threshold!r}")
        if not isinstance(num_perm, numbers.Integral) or num_perm < 2:
            raise UserError(f"near-dedup num_perm must be an integer >= 2; got {num_perm!r}")
        if not isinstance(shingle, numbers.Integral) or shingle < 1:
            raise UserError(f"near-dedup shingle must be an integer >= 1; got {shingle!r}")
        if not isinstance(seed, numbers.Integral) or not 0 <= seed < 2 ** 32:
            raise UserError(f"near-dedup seed must be an integer in [0, 2^32); got {seed!r}")
        self.threshold, self.num_perm = float(threshold), int(num_perm)
        self.shingle, self.seed = int(shingle), int(seed)

    def signatures(self, docs: Sequence[np.ndarray]) -> np.ndarray:
        """(N, num_perm) uint64 MinHash signatures of the documents' shingle sets."""
        ds = _datasketch()
        a, b = ds.MinHash(num_perm=self.num_perm, seed=self.seed, scheme="affine64").permutations
        a, b = np.asarray(a, np.uint64), np.asarray(b, np.uint64)
        flat = Flat(docs)
        h, doc = ngram_hashes(flat, self.shingle, key=self.seed)   # every doc has >= 1 shingle
        # The MurmurHash3 64-bit finalizer datasketch applies before its affine permutations.
        s, m1, m2 = _FMIX
        h = (h ^ (h >> s)) * m1
        h = (h ^ (h >> s)) * m2
        h = h ^ (h >> s)
        sig = np.empty((flat.n_docs, self.num_perm), dtype=np.uint64)
        starts = np.searchsorted(doc, np.arange(flat.n_docs + 1))   # doc is sorted
        step = max(1, _CHUNK // self.num_perm)
        d0 = 0
        while d0 < flat.n_docs:   # chunks of whole documents, about `step` shingles each
            d1 = max(d0 + 1, int(np.searchsorted(starts, starts[d0] + step, side="right")) - 1)
            d1 = min(d1, flat.n_docs)
            lo, hi = starts[d0], starts[d1]
            perm = h[lo:hi, None] * a[None, :] + b[None, :]      # wraps mod 2^64, as datasketch
            sig[d0:d1] = np.minimum.reduceat(perm, starts[d0:d1] - lo, axis=0)
            d0 = d1
        return sig

    def groups(self, docs: Sequence[np.ndarray]) -> np.ndarray:
        """(N,) int64 cluster ids: the index of the first document of each near-duplicate
        group (connected components of the pairs with estimated Jaccard >= threshold)."""
        ds = _datasketch()
        sig = self.signatures(docs)
        n = sig.shape[0]
        lsh = ds.MinHashLSH(threshold=self.threshold, num_perm=self.num_perm)
        sketches = [ds.LeanMinHash(seed=self.seed, hashvalues=row, scheme="affine64")
                    for row in sig]
        with lsh.insertion_session() as session:
            for i, m in enumerate(sketches):
                session.insert(i, m, check_duplication=False)
        parent = np.arange(n)

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        need = int(np.ceil(self.threshold * self.num_perm - 1e-9))
        for i, m in enumerate(sketches):
            cand = np.array([j for j in lsh.query(m) if j < i], dtype=np.int64)
            if cand.size == 0:
                continue
            agree = (sig[cand] == sig[i]).sum(axis=1)   # estimated Jaccard * num_perm
            for j in cand[agree >= need].tolist():
                ri, rj = root(i), root(j)
                if ri != rj:   # the smaller index stays the root: the group's first document
                    parent[max(ri, rj)] = min(ri, rj)
        return np.array([root(i) for i in range(n)], dtype=np.int64)

    def __call__(self, batch: Batch, rng=None) -> Decision:
        groups = self.groups(batch.docs)
        return Decision.drop(groups != np.arange(len(batch)), self.reason, groups)


def duplicate_share(docs: Sequence[np.ndarray], dedup: ExactDedup | NearDedup | None = None
                    ) -> float:
    """The share of ``docs`` that duplicate an earlier one (exact by default; pass a
    :class:`NearDedup` for near duplicates): 1 - groups / N, 0 for no documents."""
    if len(docs) == 0:
        return 0.0
    groups = (dedup or ExactDedup()).groups(docs)
    return 1.0 - np.unique(groups).size / len(docs)
