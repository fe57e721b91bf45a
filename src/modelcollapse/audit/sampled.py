"""Signals on document samples: the near-duplicate rate (MinHash) and, with the ``embed``
extra, semantic coverage of the reference's embeddings.

Both compare the candidate with the reference on *the same number of documents* drawn at
random from each pool: a duplicate rate, like a coverage, grows with the sample it is
measured on.
"""

from __future__ import annotations

import logging

import numpy as np

from ..curation import NearDedup, duplicate_share
from ..errors import UserError
from .diversity import Pool
from .result import Signal
from .verdicts import wilson

log = logging.getLogger("modelcollapse.audit")

#: NearDedup settings: Jaccard >= 0.8 on word 3-gram shingles (datatrove's defaults).
NEAR_THRESHOLD = 0.8
SHINGLE = 3
#: Neighbours defining each embedding ball (Naeem et al. 2020 use 5).
KNN_K = 5


def _ids(token_docs: list[list[str]], index: dict[str, int]) -> list[np.ndarray]:
    """Token lists as id arrays, with ids shared through ``index`` (grown as needed)."""
    return [np.fromiter((index.setdefault(t, len(index)) for t in d), np.int64, len(d))
            for d in token_docs]


def near_duplicate_rate(candidate: Pool, reference: Pool, max_docs: int,
                        rng: np.random.Generator) -> Signal:
    """Share of m candidate documents that near-duplicate an earlier one, m the same for
    the reference (whose rate is the baseline)."""
    m = min(max_docs, len(candidate.tokens), len(reference.tokens))
    index: dict[str, int] = {}   # one id space, so both sides hash words alike
    pick_c = np.sort(rng.permutation(len(candidate.tokens))[:m])
    pick_r = np.sort(rng.permutation(len(reference.tokens))[:m])
    dedup = NearDedup(NEAR_THRESHOLD, shingle=SHINGLE)
    rate = duplicate_share(_ids([candidate.tokens[i] for i in pick_c], index), dedup)
    base = duplicate_share(_ids([reference.tokens[i] for i in pick_r], index), dedup)
    lo, hi = wilson(round(rate * m), m)
    return Signal(
        "near_duplicate_rate", rate, lo, hi, m, "documents",
        f"Share of sampled candidate documents whose word {SHINGLE}-gram set has an "
        f"estimated Jaccard similarity >= {NEAR_THRESHOLD} with an earlier one (MinHash "
        f"NearDedup), against the reference's rate on as many documents.",
        "Wilson score interval (documents treated as independent: approximate)", base,
        {"reference": base, "threshold": NEAR_THRESHOLD, "shingle": SHINGLE})


def semantic_coverage(candidate: Pool, reference: Pool, max_docs: int,
                      rng: np.random.Generator) -> Signal:
    """Coverage of the reference's sentence embeddings by the candidate's (Naeem et al.
    2020), with precision, recall, density and Vendi scores alongside. Raises UserError
    when the ``embed`` extra is missing or a side has too few documents."""
    from .. import textmetrics   # looked up at call time: tests replace textmetrics.embed

    m = min(max_docs, len(candidate.texts), len(reference.texts) // 2)
    if m <= KNN_K:
        raise UserError(f"semantic coverage needs more than {KNN_K} documents per sample; "
                        f"the samples hold {m}")
    order = rng.permutation(len(reference.texts))
    a = [reference.texts[i] for i in order[:m]]
    b = [reference.texts[i] for i in order[m:2 * m]]
    c = [candidate.texts[i] for i in rng.permutation(len(candidate.texts))[:m]]
    log.info("semantic coverage: embedding %d documents per sample", m)
    ea, eb, ec = (np.asarray(textmetrics.embed(x)) for x in (a, b, c))
    got = textmetrics.knn_precision_recall_density_coverage(ea, ec, k=KNN_K)
    base = textmetrics.knn_precision_recall_density_coverage(ea, eb, k=KNN_K)
    lo, hi = wilson(round(got["coverage"] * m), m)
    return Signal(
        "semantic_coverage", got["coverage"], lo, hi, m, "documents",
        f"Share of reference documents whose {KNN_K}-nearest-neighbour embedding ball holds a "
        f"candidate document (coverage, Naeem et al. 2020), against the coverage a second "
        f"reference sample reaches.",
        "Wilson score interval over the reference documents (approximate)", base["coverage"],
        {"precision": got["precision"], "recall": got["recall"], "density": got["density"],
         "baseline_precision": base["precision"], "baseline_recall": base["recall"],
         "vendi_candidate": textmetrics.vendi_score(ec),
         "vendi_reference": textmetrics.vendi_score(ea), "k": KNN_K})
