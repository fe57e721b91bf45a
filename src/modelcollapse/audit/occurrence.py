"""The AI-written share alpha, by maximum likelihood on word-occurrence distributions.

After Liang et al. (2024, "Monitoring AI-Modified Content at Scale"): a human reference
estimates the word-occurrence distribution P, an AI reference the distribution Q, and the
candidate corpus is modelled as the mixture ``(1 - alpha) P + alpha Q``, alpha fitted by
maximum likelihood.

The occurrence model (Liang et al.'s): a document is the *set* of its words; word ``t``
occurs in a human document with probability ``p_t`` (the share of human reference documents
holding it), in an AI document with probability ``q_t``, independently of the others. A
document's log-likelihood ratio is then

    r(x) = log Q(x) / P(x) = C + sum_{t in x} w_t,
    w_t = logit q_t - logit p_t,     C = sum_t log (1 - q_t) / (1 - p_t),

with ``p_t = (n_t + 1/2) / (N + 1)`` (and likewise ``q_t``) over the words that occur in at
least :data:`MIN_OCCURRENCE_DOCS` documents of *both* references (rarer words carry more
noise than signal). Words are the reference vocabulary's ids; out-of-vocabulary words and
the special ids are left out.

Why the mixture is fitted on the distribution of ``r`` rather than on ``P`` and ``Q``
themselves: the independence model is wrong for text (words of one topic come together,
and document length moves ``r``), and plugging its likelihoods into the mixture biases alpha
badly (on the embedded corpus, alpha = 1 came out near 0.3). The *distribution* of ``r``
over human documents and over AI documents, however, can be measured, and the candidate's
``r``-distribution is exactly ``(1 - alpha) H + alpha A`` whatever the words' dependence.
So:

1. **Cross-fitting.** Human and AI reference documents are dealt into :data:`K_FOLDS` folds
   by a hash of their token ids; the occurrence model of fold k is estimated on the other
   folds, so every reference document gets an out-of-sample ``r``. A candidate document is
   scored by the model of the fold its own hash picks: it is out-of-sample too, and its
   ``r`` follows the same law as the references' (a document identical to a reference one
   gets the very model that never saw it).
2. **Binning.** The pooled reference scores are cut at their :data:`N_BINS`-quantiles; the
   human and AI references give bin frequencies ``h_b`` and ``a_b`` (counts + 1/2), the
   candidate its bin counts ``m_b`` (a sum over documents: streamed chunk by chunk).
3. **Maximum likelihood.** ``l(alpha) = sum_b m_b log((1 - alpha) h_b + alpha a_b)`` is
   concave on [0, 1]; its maximum is found by bisection on the derivative (exact to 1e-12).
4. **Interval.** Percentile bootstrap over documents (``n_boot`` replicates, seeded): each
   replicate resamples the human and the AI reference documents, *refits* the fold models
   and the bin edges on them (the noise of P and Q is the larger part of the uncertainty),
   and draws the candidate's N documents with replacement from its sample (the reservoir,
   or all of it when it fits). Resampling is by multiplicities, so a replicate is a few
   weighted ``bincount`` calls, never a new pass over text. Without the refit, intervals
   covered alpha = 0 only ~90% of the time in the calibration.

Assumptions, stated in the result: the candidate's human documents are like the human
reference's, and its AI documents like the AI reference's. AI text from another generator
than the one the AI reference represents is not calibrated (supply ``ai_reference`` with text
of the model you suspect).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..lm import N_SPECIAL

K_FOLDS = 5
N_BINS = 10
MIN_OCCURRENCE_DOCS = 2
_SMOOTH = 0.5
_BISECTIONS = 45   # 2^-45 ~ 3e-14 of the unit interval


def folds(docs: Sequence[np.ndarray], seed: int) -> np.ndarray:
    """(N,) the fold (0..K_FOLDS-1) of each document, from a keyed hash of its token ids:
    the same ids always land in the same fold."""
    key = f"audit-fold-{seed}".encode()
    out = np.empty(len(docs), np.int64)
    for i, doc in enumerate(docs):
        digest = hashlib.blake2b(np.asarray(doc, np.int32).tobytes(), digest_size=8, key=key)
        out[i] = int.from_bytes(digest.digest(), "little") % K_FOLDS
    return out


def occurrences(docs: Sequence[np.ndarray], vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (document, word) pairs: ``(doc, word)``, both (P,), special ids dropped."""
    if not docs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lengths = np.fromiter(map(len, docs), np.int64, len(docs))
    ids = np.concatenate([np.asarray(d, np.int64) for d in docs])
    doc = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
    pairs = np.unique(doc * vocab_size + ids)
    doc, word = pairs // vocab_size, pairs % vocab_size
    keep = word >= N_SPECIAL
    return doc[keep], word[keep]


def mixture_mle(m: np.ndarray, h: np.ndarray, a: np.ndarray) -> np.ndarray:
    """alpha in [0, 1] maximizing ``sum_b m_b log((1 - alpha) h_b + alpha a_b)``.

    m, h, a : (..., B) counts (candidate, human reference, AI reference); h and a are
    smoothed by +1/2 per bin and normalized. Returns (...,): vectorized over leading axes
    (the bootstrap replicates)."""
    h = np.asarray(h, float) + _SMOOTH
    a = np.asarray(a, float) + _SMOOTH
    h = h / h.sum(axis=-1, keepdims=True)
    a = a / a.sum(axis=-1, keepdims=True)
    m = np.asarray(m, float)
    d = a - h
    shape = np.broadcast_shapes(m.shape, h.shape)[:-1]

    def slope(alpha: np.ndarray) -> np.ndarray:   # dl/dalpha, decreasing in alpha
        return np.sum(m * d / (h + alpha[..., None] * d), axis=-1)

    lo, hi = np.zeros(shape), np.ones(shape)
    for _ in range(_BISECTIONS):
        mid = (lo + hi) / 2
        up = slope(mid) > 0
        lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
    alpha = (lo + hi) / 2
    alpha = np.where(slope(np.zeros(shape)) <= 0, 0.0, alpha)
    return np.where(slope(np.ones(shape)) >= 0, 1.0, alpha)


@dataclass(frozen=True)
class _Docs:
    """Documents as their distinct (document, word) pairs, with each document's fold."""

    doc: np.ndarray    # (P,) the document of each pair
    word: np.ndarray   # (P,) its word id
    fold: np.ndarray   # (N,) each document's fold

    @classmethod
    def of(cls, docs: Sequence[np.ndarray], vocab_size: int, seed: int) -> _Docs:
        return cls(*occurrences(docs, vocab_size), folds(docs, seed))

    @property
    def n(self) -> int:
        return int(self.fold.size)

    def scores(self, weights: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """(N,) r of each document under its own fold's model."""
        total = np.bincount(self.doc, weights=weights[self.fold[self.doc], self.word],
                            minlength=self.n)
        return offsets[self.fold] + total

    def bins(self, r: np.ndarray, edges: np.ndarray, weight: np.ndarray | None = None
             ) -> np.ndarray:
        """(B,) the (weighted) number of documents per bin of r."""
        return np.bincount(np.searchsorted(edges, r, side="right"), weights=weight,
                           minlength=edges.size + 1)


def _fit(human: _Docs, ai: _Docs, vocab_size: int, wh: np.ndarray, wa: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The K fold models from documents weighted by their multiplicities ``wh``, ``wa``
    (ones for the data, bootstrap counts in a replicate): ``(weights (K, V), offsets (K,),
    words per model (K,))``, model k estimated on every fold but k."""
    def counts(side: _Docs, w: np.ndarray, distinct: bool = False) -> tuple[np.ndarray, ...]:
        cell = side.fold[side.doc] * vocab_size + side.word
        w = (w > 0).astype(float) if distinct else w
        per = np.bincount(cell, weights=w[side.doc], minlength=K_FOLDS * vocab_size)
        n = np.bincount(side.fold, weights=w, minlength=K_FOLDS)
        per = per.reshape(K_FOLDS, vocab_size)
        return per.sum(axis=0) - per, n.sum() - n     # the other folds' counts, per fold

    kh, nh = counts(human, wh)
    ka, na = counts(ai, wa)
    # The word set counts *distinct* documents: a bootstrap replicate's repeated document
    # must not lift a word seen once over MIN_OCCURRENCE_DOCS (that would make replicates
    # noisier than the model they stand for).
    dh, da = counts(human, wh, True)[0], counts(ai, wa, True)[0]
    weights = np.zeros((K_FOLDS, vocab_size))
    offsets = np.zeros(K_FOLDS)
    n_words = np.zeros(K_FOLDS, np.int64)
    for k in range(K_FOLDS):
        keep = np.minimum(dh[k], da[k]) >= MIN_OCCURRENCE_DOCS
        p = (kh[k, keep] + _SMOOTH) / (nh[k] + 2 * _SMOOTH)
        q = (ka[k, keep] + _SMOOTH) / (na[k] + 2 * _SMOOTH)
        weights[k, keep] = np.log(q) - np.log1p(-q) - np.log(p) + np.log1p(-p)
        offsets[k] = float(np.sum(np.log1p(-q) - np.log1p(-p)))
        n_words[k] = int(keep.sum())
    return weights, offsets, n_words


def _edges(r: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """The N_BINS-quantiles of the pooled reference scores (ties merged)."""
    if weight is not None:
        r = np.repeat(r, weight.astype(np.int64))
    return np.unique(np.quantile(r, np.linspace(0, 1, N_BINS + 1)[1:-1]))


class OccurrenceModel:
    """Cross-fitted occurrence log-likelihood ratios and the binned mixture fit (module
    docstring). Built from human and AI reference documents (lists of 1-D id arrays).

    Attributes: ``weights_`` (K, V) the w_t of each fold's model (0 off its word set),
    ``offsets_`` (K,) the C of each, ``edges_`` (B - 1,) the bin edges, ``human_bins_`` and
    ``ai_bins_`` (B,) the references' bin counts, ``n_words_`` (K,) words in each model.
    """

    def __init__(self, human_docs: Sequence[np.ndarray], ai_docs: Sequence[np.ndarray],
                 vocab_size: int, seed: int = 0) -> None:
        self.vocab_size, self.seed = int(vocab_size), int(seed)
        self._human = _Docs.of(human_docs, self.vocab_size, self.seed)
        self._ai = _Docs.of(ai_docs, self.vocab_size, self.seed)
        self.weights_, self.offsets_, self.n_words_ = _fit(
            self._human, self._ai, self.vocab_size, np.ones(self._human.n), np.ones(self._ai.n))
        r_h = self._human.scores(self.weights_, self.offsets_)
        r_a = self._ai.scores(self.weights_, self.offsets_)
        self.edges_ = _edges(np.concatenate([r_h, r_a]))
        self.human_bins_ = self._human.bins(r_h, self.edges_).astype(np.int64)
        self.ai_bins_ = self._ai.bins(r_a, self.edges_).astype(np.int64)

    def scores(self, docs: Sequence[np.ndarray]) -> np.ndarray:
        """(N,) each document's log-likelihood ratio r (AI over human), out of sample."""
        return _Docs.of(docs, self.vocab_size, self.seed).scores(self.weights_, self.offsets_)

    def bin_counts(self, docs: Sequence[np.ndarray]) -> np.ndarray:
        """(B,) how many of ``docs`` fall in each bin of r (a sum: add over chunks)."""
        side = _Docs.of(docs, self.vocab_size, self.seed)
        return side.bins(side.scores(self.weights_, self.offsets_), self.edges_).astype(np.int64)

    def estimate(self, counts: np.ndarray, sample: Sequence[np.ndarray], rng: np.random.Generator,
                 n_boot: int, levels: tuple[float, ...] = (0.95,)
                 ) -> tuple[float, list[tuple[float, float]]]:
        """``(alpha, [(ci_low, ci_high) per level])`` (module docstring, steps 3 and 4).

        counts : (B,) the candidate's bin counts (all its scored documents, N of them).
        sample : a uniform sample of those documents (all of them when they fit), which the
        bootstrap draws N documents from with replacement. Each replicate also resamples the
        human and AI references and refits the fold models and the bins on them; the
        replicates are shifted by ``alpha - alpha(sample)`` (0 when the sample is everything).
        """
        counts = np.asarray(counts, np.int64)
        n_total = int(counts.sum())
        alpha = float(mixture_mle(counts, self.human_bins_, self.ai_bins_))
        cand = _Docs.of(sample, self.vocab_size, self.seed)
        r_c = cand.scores(self.weights_, self.offsets_)
        shift = alpha - float(mixture_mle(cand.bins(r_c, self.edges_), self.human_bins_,
                                          self.ai_bins_))
        human, ai = self._human, self._ai
        boot = np.empty(n_boot)
        for i in range(n_boot):
            wh = rng.multinomial(human.n, np.full(human.n, 1 / human.n)).astype(float)
            wa = rng.multinomial(ai.n, np.full(ai.n, 1 / ai.n)).astype(float)
            wc = rng.multinomial(n_total, np.full(cand.n, 1 / cand.n)).astype(float)
            weights, offsets, _ = _fit(human, ai, self.vocab_size, wh, wa)
            r_h, r_a = human.scores(weights, offsets), ai.scores(weights, offsets)
            edges = _edges(np.concatenate([r_h, r_a]), np.concatenate([wh, wa]))
            boot[i] = mixture_mle(cand.bins(cand.scores(weights, offsets), edges, wc),
                                  human.bins(r_h, edges, wh), ai.bins(r_a, edges, wa))
        boot = np.clip(boot + shift, 0.0, 1.0)
        return alpha, [tuple(float(q) for q in np.quantile(boot, [(1 - lv) / 2, (1 + lv) / 2]))
                       for lv in levels]

    def as_record(self) -> dict:
        """JSON-able summary for the result's ai_share entry."""
        return {"folds": K_FOLDS, "bins": int(self.edges_.size + 1),
                "min_occurrence_docs": MIN_OCCURRENCE_DOCS,
                "words_per_model": self.n_words_.tolist(),
                "human_reference_docs": self._human.n, "ai_reference_docs": self._ai.n}
