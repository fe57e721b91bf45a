"""Selection: keep the best share by quality, keep a diverse share, or verify.

- :class:`TopQuality`: the top-q share by reference log-likelihood per token.
- :class:`DiversitySelection`: a q share drawn toward documents whose n-grams are rare in
  the batch, optionally with a cap per near-duplicate cluster (counters tail loss).
- :class:`Verifier`: keeps correct samples with rate phi and wrong ones with rate psi
  (Feng et al. 2024, "Beyond Model Collapse: Scaling Up with Synthesized Data Requires
  Verification").
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import UserError
from ..lm import NGramLM
from ._text import Flat, distinct_pairs, mean_logprob, ngram_hashes, run_lengths
from .base import Batch, Block, Decision
from .dedup import NearDedup


def _check_share(q, who: str) -> float:
    if not (isinstance(q, numbers.Real) and 0 < q <= 1):
        raise UserError(f"{who} q must be a share in (0, 1]; got {q!r}")
    return float(q)


def n_kept(q: float, n: int) -> int:
    """ceil(q n) (at least the share q; the 1e-9 absorbs float error in q*n)."""
    return min(n, int(math.ceil(q * n - 1e-9)))


class TopQuality(Block):
    """Keeps the ``ceil(q N)`` documents of highest quality (reason ``"low_quality"``).

    Quality: by default each document's mean log-probability per token (``</s>``
    included; higher is better) under a Kneser-Ney n-gram model of order ``order`` fitted
    on human reference documents with :meth:`fit`; or any ``scorer(docs) -> (N,)`` given
    here. Ties are broken by index (the earlier document wins), so the selection is
    deterministic.
    """

    reason = "low_quality"

    def __init__(self, q: float = 0.5, order: int = 3,
                 scorer: Callable[[Sequence[np.ndarray]], np.ndarray] | None = None) -> None:
        self.q = _check_share(q, "quality selection")
        if not isinstance(order, numbers.Integral) or not 1 <= order <= 6:
            raise UserError(f"quality selection order must be an integer from 1 to 6; "
                            f"got {order!r}")
        if scorer is not None and not callable(scorer):
            raise UserError("quality selection scorer must be a function of the documents")
        self.order, self._scorer = int(order), scorer
        self.reference_: NGramLM | None = None

    def fit(self, reference_docs: Sequence[np.ndarray], vocab_size: int) -> TopQuality:
        """Fit the reference model on human documents."""
        self.reference_ = NGramLM(self.order).fit(reference_docs, vocab_size)
        return self

    def quality(self, docs: Sequence[np.ndarray]) -> np.ndarray:
        """(N,) float quality scores, higher is better."""
        if self._scorer is not None:
            scores = np.asarray(self._scorer(docs), dtype=float).reshape(-1)
            if scores.size != len(docs) or np.isnan(scores).any():
                raise UserError("the quality scorer must return one number (not NaN) per document")
            return scores
        if self.reference_ is None:
            raise UserError("TopQuality needs a reference model: call fit(reference_docs, "
                            "vocab_size) or pass scorer=")
        return mean_logprob(self.reference_, docs)

    def __call__(self, batch: Batch, rng=None) -> Decision:
        scores = self.quality(batch.docs)
        order = np.argsort(-scores, kind="stable")   # stable: equal scores keep index order
        drop = np.ones(len(batch), bool)
        drop[order[:n_kept(self.q, len(batch))]] = False
        return Decision.drop(drop, self.reason, scores)


class DiversitySelection(Block):
    """Keeps a ``ceil(q N)`` share of the batch, drawn toward documents that carry n-grams
    rare in the batch (reason ``"low_diversity"``), after an optional cap of
    ``max_per_cluster`` documents per near-duplicate cluster (reason ``"cluster_cap"``).

    What. Each document's *rarity* is the mean, over its distinct n-grams (order ``n``),
    of ``1 / df``, where ``df`` is the number of documents of the batch that contain the
    n-gram: 1 for a document whose n-grams are all its own, ``1/m`` for one of ``m`` copies
    of the same text. Documents are drawn without replacement with probability
    proportional to ``rarity ** alpha`` (Efraimidis-Spirakis keys ``log(u) / w``; ``alpha
    = 0`` is a uniform draw). With ``max_per_cluster``, only the first ``max_per_cluster``
    documents of each :class:`~.dedup.NearDedup` cluster (Jaccard >= ``cluster_threshold``
    of their n-gram shingles) stay candidates.

    Why. Model collapse starts in the tails: a rare n-gram appears in few documents, so a
    uniform subsample (and the next model fitted on it) loses it with high probability,
    while the modes, repeated across many near-identical documents, survive any cut; the
    loss compounds over generations (Shumailov et al. 2024). Weighting by ``1/df`` gives
    every n-gram the same total weight however many documents repeat it, so the kept
    share keeps more distinct n-grams (the tails) and fewer redundant copies of the mode;
    the cluster cap bounds the copies directly. The draw is random rather than a top-k by
    rarity so that no document's chance is 0 (a hard rarity cut would itself truncate the
    distribution, toward noise).
    """

    reason = "low_diversity"

    def __init__(self, q: float = 0.5, n: int = 2, alpha: float = 1.0,
                 max_per_cluster: int | None = None, cluster_threshold: float = 0.8) -> None:
        self.q = _check_share(q, "diversity selection")
        if not isinstance(n, numbers.Integral) or not 1 <= n <= 6:
            raise UserError(f"diversity selection n must be an integer from 1 to 6; got {n!r}")
        if not (isinstance(alpha, numbers.Real) and math.isfinite(alpha) and alpha >= 0):
            raise UserError(f"diversity selection alpha must be a finite number >= 0; "
                            f"got {alpha!r}")
        if max_per_cluster is not None and (not isinstance(max_per_cluster, numbers.Integral)
                                            or max_per_cluster < 1):
            raise UserError(f"diversity selection max_per_cluster must be None or an integer "
                            f">= 1; got {max_per_cluster!r}")
        if not (isinstance(cluster_threshold, numbers.Real) and 0 < cluster_threshold <= 1):
            raise UserError(f"diversity selection cluster_threshold must be in (0, 1]; "
                            f"got {cluster_threshold!r}")
        self.n, self.alpha = int(n), float(alpha)
        self.max_per_cluster = None if max_per_cluster is None else int(max_per_cluster)
        self._clusters = (None if max_per_cluster is None
                          else NearDedup(cluster_threshold, shingle=self.n))
        self.cluster_threshold = float(cluster_threshold)

    def reasons(self) -> tuple[str, ...]:
        return ("cluster_cap", "low_diversity") if self.max_per_cluster else ("low_diversity",)

    def rarity(self, docs: Sequence[np.ndarray]) -> np.ndarray:
        """(N,) in (0, 1]: the mean of 1/df over each document's distinct n-grams."""
        flat = Flat(docs)
        h, doc = distinct_pairs(*ngram_hashes(flat, self.n, key=self.n))   # sorted by hash
        df = run_lengths(h)   # documents containing each pair's n-gram
        total = np.bincount(doc, weights=1.0 / df, minlength=flat.n_docs)
        count = np.bincount(doc, minlength=flat.n_docs)   # >= 1: short docs are one n-gram
        return total / count

    def __call__(self, batch: Batch, rng: np.random.Generator) -> Decision:
        n_docs = len(batch)
        reasons = np.full(n_docs, "", dtype=object)
        candidate = np.ones(n_docs, bool)
        if self.max_per_cluster is not None:
            groups = self._clusters.groups(batch.docs)
            # Rank of each document within its cluster, in batch order.
            order = np.lexsort((np.arange(n_docs), groups))
            g = groups[order]
            first = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
            rank = np.empty(n_docs, np.int64)
            rank[order] = np.arange(n_docs) - np.repeat(first, np.diff(np.r_[first, n_docs]))
            candidate = rank < self.max_per_cluster
            reasons[~candidate] = "cluster_cap"
        weight = self.rarity(batch.docs) ** self.alpha
        # Efraimidis-Spirakis keys log(u) / w, u in (0, 1]: the largest keys win.
        keys = np.log1p(-rng.random(n_docs)) / weight
        keys[~candidate] = -np.inf
        order = np.argsort(-keys, kind="stable")
        k = min(n_kept(self.q, n_docs), int(candidate.sum()))
        keep = np.zeros(n_docs, bool)
        keep[order[:k]] = True
        reasons[~keep & candidate] = "low_diversity"
        return Decision(keep, reasons, weight)

    def as_record(self) -> dict:
        return {"block": "DiversitySelection", "q": self.q, "n": self.n, "alpha": self.alpha,
                "max_per_cluster": self.max_per_cluster,
                "cluster_threshold": self.cluster_threshold}
