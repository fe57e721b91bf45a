"""Tails: does a generated sample still produce what was rare in the real text?

Model collapse removes the tails first: rare words and phrasings stop being generated long
before the common ones change. Both functions compare a reference sample (real text, e.g.
the test split) with a generated one; documents are lists of tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import UserError
from ._ngrams import check_docs, encode, ngrams

#: Default quantile of :func:`tail_coverage`.
TAIL_QUANTILE = 0.5


def _joint_ngrams(reference_docs, generated_docs, n: int):
    ref = check_docs(reference_docs, "reference_docs")
    gen = check_docs(generated_docs, "generated_docs")
    (enc,) = encode(ref + gen)
    _, gram, doc = next(ngrams(enc, int(n), min_n=int(n)))
    in_ref = doc < len(ref)
    return gram[in_ref], gram[~in_ref], int(gram.max(initial=-1)) + 1


def rare_threshold(counts: np.ndarray, quantile: float) -> int:
    """The count at the ``quantile`` of the distinct n-grams' counts ('inverted_cdf').

    That is the smallest count t such that at least a share ``quantile`` of the distinct
    n-grams occur t times or fewer.
    """
    return int(np.quantile(counts, quantile, method="inverted_cdf"))


def tail_coverage(reference_docs: Sequence[Sequence], generated_docs: Sequence[Sequence],
                  n: int = 1, quantile: float = TAIL_QUANTILE,
                  max_count: int | None = None) -> float:
    """Share of the reference's rare n-grams that the generated sample contains.

    Rare n-grams: the distinct n-grams of ``reference_docs`` whose count there is at or
    below a threshold t. By default t is the ``quantile`` (0.5) of the counts of the
    distinct reference n-grams (method 'inverted_cdf': the smallest count such that at
    least that share of distinct n-grams occur t times or fewer); on natural text this is
    usually 1, i.e. the hapaxes. ``max_count``, when given, sets t directly instead (e.g.
    ``max_count=1``: hapaxes only). The result is |rare n-grams that occur at least once
    in ``generated_docs``| / |rare n-grams|, in [0, 1]; 1 = the whole tail is still
    produced. n-grams never cross document boundaries.
    """
    q = float(quantile)
    if not 0.0 < q <= 1.0:
        raise UserError(f"tail_coverage quantile must be in (0, 1], got {quantile}")
    ref, gen, n_ids = _joint_ngrams(reference_docs, generated_docs, n)
    if ref.size == 0:
        raise UserError(f"tail_coverage needs at least one reference {n}-gram; every "
                        f"reference document is shorter than {n} tokens")
    counts = np.bincount(ref, minlength=n_ids)
    present = counts > 0
    if max_count is not None:
        if int(max_count) < 1:
            raise UserError(f"tail_coverage max_count must be >= 1, got {max_count}")
        threshold = int(max_count)
    else:
        threshold = rare_threshold(counts[present], q)
    rare = present & (counts <= threshold)
    produced = np.zeros(n_ids, dtype=bool)
    produced[gen] = True
    return float((rare & produced).sum() / rare.sum())


def vocab_never_produced(reference_docs: Sequence[Sequence],
                         generated_docs: Sequence[Sequence]) -> float:
    """Share of the reference vocabulary (distinct tokens) absent from the generated sample.

    0 = every reference token type appears at least once in ``generated_docs``.
    """
    ref, gen, n_ids = _joint_ngrams(reference_docs, generated_docs, 1)
    if ref.size == 0:
        raise UserError("vocab_never_produced needs at least one reference token; "
                        "reference_docs is empty")
    in_ref = np.zeros(n_ids, dtype=bool)
    in_ref[ref] = True
    produced = np.zeros(n_ids, dtype=bool)
    produced[gen] = True
    return float((in_ref & ~produced).sum() / in_ref.sum())
