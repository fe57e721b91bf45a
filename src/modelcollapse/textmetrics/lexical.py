"""Lexical diversity of a sample of documents (each a list of tokens).

All functions return a float. Compare values across generations only on samples of the
same size (see :func:`modelcollapse.textmetrics.equal_size_sample`): distinct-n, vocabulary
size, entropy and the Zipf fit all depend on how many tokens they see.

A sample without the tokens a metric needs (no n-gram of order n, no token at all) raises
:class:`~modelcollapse.errors.UserError`.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence

import numpy as np

from ..errors import UserError
from ._ngrams import check_docs, encode, ngram_counts, ngrams

#: gzip level used by :func:`compression_ratio` (fixed so values compare across runs).
COMPRESSLEVEL = 9
#: Default rank range of :func:`zipf_exponent`.
ZIPF_MIN_RANK, ZIPF_MAX_RANK = 1, 1000


def _encoded(docs, name="docs"):
    (enc,) = encode(check_docs(docs, name))
    return enc


def _need_tokens(enc, what: str) -> None:
    if enc.n_tokens == 0:
        raise UserError(f"{what} needs at least one token; the sample is empty")


def distinct_n(docs: Sequence[Sequence], n: int) -> float:
    """Distinct-n (Li et al. 2016): unique n-grams / total n-grams over the whole sample.

    n-grams are counted inside documents (none spans two). 1.0 means no n-gram repeats
    anywhere in the sample.
    """
    enc = _encoded(docs)
    _, counts = ngram_counts(enc, int(n))
    if counts.size == 0:
        raise UserError(f"distinct_{n} needs at least one {n}-gram; every document is "
                        f"shorter than {n} tokens")
    return float(counts.size / counts.sum())


def unigram_entropy(docs: Sequence[Sequence]) -> float:
    """Shannon entropy of the sample's token frequencies, in nats: -sum p log p."""
    enc = _encoded(docs)
    _need_tokens(enc, "unigram_entropy")
    counts = np.bincount(enc.ids)
    p = counts[counts > 0] / enc.n_tokens
    return float(-(p * np.log(p)).sum())


def vocab_size(docs: Sequence[Sequence]) -> float:
    """Number of distinct tokens in the sample (as a float)."""
    enc = _encoded(docs)
    return float(np.unique(enc.ids).size)


def zipf_exponent(docs: Sequence[Sequence], min_rank: int = ZIPF_MIN_RANK,
                  max_rank: int | None = ZIPF_MAX_RANK) -> float:
    """Zipf exponent s of the token frequencies, returned positive (frequency ~ rank^-s).

    Tokens are ranked by count (rank 1 = most frequent; ties keep an arbitrary but fixed
    order, which does not change the counts used). s is minus the least-squares slope of
    ln(count) against ln(rank) over ranks ``min_rank..max_rank`` inclusive, where
    ``max_rank`` is clipped to the vocabulary size (``None``: all ranks). The default range
    1..1000 keeps the fit away from the long run of hapaxes (count 1) at the bottom, whose
    flat step would flatten the slope and make it depend on sample size. At least two
    ranks must fall in the range.
    """
    enc = _encoded(docs)
    _need_tokens(enc, "zipf_exponent")
    counts = np.bincount(enc.ids)
    counts = np.sort(counts[counts > 0])[::-1]
    lo = int(min_rank)
    if lo < 1:
        raise UserError(f"zipf_exponent min_rank must be >= 1, got {min_rank}")
    hi = counts.size if max_rank is None else min(int(max_rank), counts.size)
    if hi - lo + 1 < 2:
        raise UserError(f"zipf_exponent needs at least 2 ranks in {lo}..{hi}; the sample has "
                        f"{counts.size} distinct tokens")
    x = np.log(np.arange(lo, hi + 1, dtype=np.float64))
    y = np.log(counts[lo - 1:hi].astype(np.float64))
    xc = x - x.mean()
    slope = float((xc * (y - y.mean())).sum() / (xc * xc).sum())
    return -slope


def _as_text(doc) -> str:
    return doc if isinstance(doc, str) else " ".join(map(str, doc))


def compression_ratio(texts: Sequence[str] | Sequence[Sequence[str]],
                      compresslevel: int = COMPRESSLEVEL) -> float:
    """gzip compression ratio of the sample: raw bytes / compressed bytes.

    ``texts`` are strings, or token lists (joined with single spaces). The sample is joined
    with newlines, encoded as UTF-8 and compressed with ``gzip.compress(compresslevel=9,
    mtime=0)`` (the 18-byte gzip header and trailer included, so the output is
    deterministic). Higher = more repetitive.
    """
    if isinstance(texts, (str, bytes)):
        raise UserError("compression_ratio takes a list of texts, not a single string")
    raw = "\n".join(_as_text(t) for t in texts).encode("utf-8")
    if not raw:
        raise UserError("compression_ratio needs non-empty text; the sample is empty")
    return len(raw) / len(gzip.compress(raw, compresslevel=int(compresslevel), mtime=0))


def repetition_rate(docs: Sequence[Sequence], n: int = 4) -> float:
    """Share of n-gram occurrences that repeat an n-gram seen earlier in the same document.

    For each document d with T_d n-grams of which U_d are distinct, T_d - U_d occurrences
    are repeats (every occurrence after an n-gram's first one in that document). The rate
    is sum_d (T_d - U_d) / sum_d T_d over the sample; repeats across documents do not
    count. 0 = no document repeats itself; it approaches 1 for degenerate loops.
    """
    enc = _encoded(docs)
    _, gram, doc = next(ngrams(enc, int(n), min_n=int(n)))
    if gram.size == 0:
        raise UserError(f"repetition_rate with n={n} needs at least one {n}-gram; every "
                        f"document is shorter than {n} tokens")
    distinct_pairs = np.unique(gram * np.int64(enc.n_docs) + doc).size
    return float((gram.size - distinct_pairs) / gram.size)


def mean_length(docs: Sequence[Sequence]) -> float:
    """Mean number of tokens per document."""
    docs = check_docs(docs)
    if not docs:
        raise UserError("mean_length needs at least one document; the sample is empty")
    return float(np.mean(np.fromiter((len(d) for d in docs), dtype=np.float64, count=len(docs))))
