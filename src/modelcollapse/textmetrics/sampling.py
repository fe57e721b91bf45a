"""Equal-size samples: diversity metrics compared across generations on the same token count.

Distinct-n, vocabulary size, entropy and Zipf fits all grow or shrink with the number of
tokens they see, so a generation that writes longer documents would look more diverse for
that reason alone. :func:`equal_size_sample` draws the same number of tokens from every
generation, deterministically from a seed, and records what it took.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ._ngrams import check_docs

log = logging.getLogger("modelcollapse.textmetrics")


@dataclass(frozen=True)
class TokenSample:
    """What :func:`equal_size_sample` took.

    ``docs``: the sampled documents, in the order taken (the last one possibly cut short);
    ``indices``: their positions in the input; ``n_tokens``: total tokens taken;
    ``last_kept``: how many tokens of the last document were kept (its full length when
    it was not cut); ``digest``: a short SHA-1 of ``indices`` and ``last_kept`` to log
    and compare.
    """

    docs: list
    indices: np.ndarray
    n_tokens: int
    last_kept: int
    digest: str

    def as_record(self) -> dict:
        """A JSON-friendly summary (without the documents)."""
        return {"n_docs": len(self.docs), "n_tokens": self.n_tokens,
                "last_kept": self.last_kept, "digest": self.digest,
                "indices": self.indices.tolist()}


def _generator(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise UserError("equal_size_sample needs a seed or numpy Generator (rng=None given)")
    return np.random.default_rng(rng)


def digest(indices: np.ndarray, *extra: int) -> str:
    """A short, stable fingerprint of a subsample's indices (for logs and manifests)."""
    h = hashlib.sha1(np.ascontiguousarray(indices, dtype=np.int64).tobytes())
    h.update(np.asarray(extra, dtype=np.int64).tobytes())
    return h.hexdigest()[:12]


def equal_size_sample(docs: Sequence[Sequence], n_tokens: int, rng,
                      truncate: bool = True) -> TokenSample:
    """Take ``n_tokens`` tokens from ``docs`` by whole documents in a random order.

    Documents are visited in the order of ``rng.permutation(len(docs))`` (``rng``: a
    ``numpy.random.Generator``, or a seed passed to ``numpy.random.default_rng``) and taken
    whole until the running total reaches ``n_tokens``. With ``truncate=True`` (default) the
    last document taken is cut so the total is exactly ``n_tokens``; with ``False`` it is
    kept whole and the total may exceed ``n_tokens`` by less than one document. The same
    documents and seed always give the same sample. Raises ``UserError`` when the documents
    hold fewer than ``n_tokens`` tokens. The choice is logged at INFO level
    (``modelcollapse.textmetrics``) and returned as a :class:`TokenSample`.
    """
    docs = check_docs(docs)
    want = int(n_tokens)
    if want < 1:
        raise UserError(f"equal_size_sample n_tokens must be >= 1, got {n_tokens}")
    lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
    have = int(lengths.sum())
    if have < want:
        raise UserError(f"the sample holds {have} tokens in {len(docs)} documents, fewer than "
                        f"the {want} tokens asked for (lower n_tokens or generate more)")
    order = _generator(rng).permutation(len(docs))
    cum = np.cumsum(lengths[order])
    k = int(np.searchsorted(cum, want, side="left")) + 1   # documents needed to reach want
    indices = order[:k]
    taken = [list(docs[i]) for i in indices]
    last_len = int(lengths[indices[-1]])
    last_kept = last_len
    if truncate and cum[k - 1] > want:
        last_kept = last_len - int(cum[k - 1] - want)
        taken[-1] = taken[-1][:last_kept]
    total = int(cum[k - 2]) + last_kept if k > 1 else last_kept
    sample = TokenSample(taken, indices, total, last_kept, digest(indices, last_kept))
    log.info("equal_size_sample: %d tokens from %d of %d documents (last kept %d of %d "
             "tokens), digest %s", total, k, len(docs), last_kept, last_len, sample.digest)
    return sample
