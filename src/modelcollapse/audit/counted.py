"""The signals made from a candidate's streamed sums (:class:`~.stream.Tally`): perplexity
buckets, detector positives, the AI share, watermark hits, and the domain check.

Each is exact for the whole candidate (not a sample): its interval is a bootstrap over
documents done on the sums (multinomial draws of the counts, which is a document resample
for statistics of counts) or, for a plain rate, the Wilson score interval.
"""

from __future__ import annotations

import numpy as np

from ..curation import WatermarkDetector
from .reference import Reference
from .result import Signal
from .stream import LOGPPL_STEP, Tally
from .verdicts import wilson

#: Domain check: a candidate whose out-of-vocabulary rate exceeds the reference's held-out
#: rate by more than this (absolute share of tokens) is from another domain or language.
OOV_MARGIN = 0.05
#: ... or whose median log-perplexity is above this quantile of the held-out documents'
#: (its typical document is less likely than 90% of the reference's own unseen documents).
PERPLEXITY_QUANTILE = 0.9
BUCKETS = ("head", "middle", "tail")


def _tv(shares: np.ndarray) -> np.ndarray:
    """Total variation distance from (1/3, 1/3, 1/3) along the last axis."""
    return 0.5 * np.abs(shares - 1 / 3).sum(axis=-1)


def perplexity_shift(tally: Tally, reference: Reference, rng: np.random.Generator,
                     n_boot: int) -> Signal:
    """Total variation of the candidate's head / middle / tail shares from thirds.

    Buckets: the terciles of the reference's held-out per-document log-perplexity under the
    reference model (head = most reference-like third, as CCNet buckets web text). The
    bootstrap resamples both the candidate's documents (its histogram) and the held-out
    documents (the terciles move with them)."""
    n = tally.n_scored
    shares = tally.buckets / n
    held = reference.heldout_logppl
    cuts = np.quantile(held[rng.integers(0, held.size, (n_boot, held.size))], [1 / 3, 2 / 3],
                       axis=1).T                                        # (B, 2)
    below = np.cumsum(rng.multinomial(n, tally.logppl_hist / n, size=n_boot), axis=1)
    cell = np.clip((cuts / LOGPPL_STEP).astype(np.int64) - 1, -1, below.shape[1] - 1)
    cum = np.where(cell >= 0, np.take_along_axis(below, np.maximum(cell, 0), axis=1), 0) / n
    boot = np.stack([cum[:, 0], cum[:, 1] - cum[:, 0], 1 - cum[:, 1]], axis=1)   # (B, 3)
    estimate = float(_tv(shares))
    tv = _tv(boot)
    # TV is biased upward near 0 (noise alone moves the shares off thirds): the percentile
    # interval is shifted by the bootstrap's bias so that it is centred on the estimate.
    lo, hi = np.quantile(tv, [0.025, 0.975]) - (tv.mean() - estimate)
    lo, hi = min(estimate, max(0.0, lo)), max(estimate, hi)
    q = np.quantile(boot, [0.025, 0.975], axis=0)
    buckets = {name: {"share": float(shares[i]), "ci_low": float(q[0, i]),
                      "ci_high": float(q[1, i])} for i, name in enumerate(BUCKETS)}
    return Signal(
        "perplexity_shift", estimate, float(lo), float(hi), n, "documents",
        "Total variation distance between the candidate's shares of documents in the head, "
        "middle and tail perplexity buckets (terciles of the reference's held-out documents "
        "under the reference trigram model) and one third each.",
        "percentile bootstrap over candidate and held-out reference documents, shifted by "
        "its bias", 0.0,
        {"buckets": buckets, "cuts_log_perplexity":
            np.quantile(held, [1 / 3, 2 / 3]).tolist()})


def detector_rate(tally: Tally, reference: Reference) -> Signal:
    """Share of candidate documents the calibrated likelihood detector flags."""
    det = reference.detector
    k, n = tally.detector_positives, tally.n_scored
    lo, hi = wilson(k, n)
    side = {"low": "below", "high": "above", "two-sided": "outside"}[det.side]
    return Signal(
        "detector_positive_rate", k / n, lo, hi, n, "documents",
        f"Share of candidate documents whose log-perplexity under the reference model is "
        f"{side} the threshold that flags target_fpr of the reference's held-out human "
        f"documents (LikelihoodDetector).",
        "Wilson score interval (the threshold's own calibration noise is not included)",
        det.target_fpr,
        {"positives": k, "target_fpr": det.target_fpr, "side": det.side,
         "calibration_fpr": det.calibration_fpr_,
         "calibration_docs": len(reference.heldout_docs)})


def ai_share(tally: Tally, reference: Reference, sample: list[np.ndarray],
             rng: np.random.Generator, n_boot: int, judged: bool = True) -> Signal:
    """The AI-written share alpha (:mod:`.occurrence`); ``sample``: the ids of a uniform
    sample of the scored candidate documents (the bootstrap draws from it)."""
    model = reference.occurrence
    alpha, ((lo, hi), (lo99, hi99)) = model.estimate(tally.occurrence_bins, sample, rng,
                                                     n_boot, (0.95, 0.99))
    return Signal(
        "ai_share", alpha, lo, hi, tally.n_scored, "documents",
        "Estimated share alpha of AI-written documents: maximum likelihood of the candidate "
        "as (1 - alpha) human + alpha AI, on the distributions of the documents' "
        "word-occurrence log-likelihood ratio (Liang et al. 2024) measured on held-out human "
        "and AI reference documents.",
        "percentile bootstrap over candidate, human and AI reference documents, the "
        "occurrence model refitted in each replicate", 0.0,
        {"ci_99": [lo99, hi99], "ai_reference": reference.ai_source, **model.as_record(),
         "bin_counts": tally.occurrence_bins.tolist()}, judged=judged)


def watermark_rate(tally: Tally, detector: WatermarkDetector) -> Signal:
    """Share of candidate documents whose watermark z-score reaches the threshold."""
    k, n = tally.watermark_hits, tally.watermark_docs
    lo, hi = wilson(k, n)
    return Signal(
        "watermark_hit_rate", k / n, lo, hi, n, "documents",
        f"Share of candidate documents whose green-list z-score (Kirchenbauer et al. 2023) is "
        f"at least {detector.z_threshold:g}.",
        "Wilson score interval", detector.expected_fpr,
        {"hits": k, "z_threshold": detector.z_threshold,
         "watermark": detector.watermark.as_record()})


def domain_check(tally: Tally, reference: Reference) -> tuple[dict, list[dict]]:
    """The domain-mismatch measurements and, when either test fires, a caveat."""
    oov = tally.n_oov / max(tally.n_tokens, 1)
    limit = float(np.quantile(reference.heldout_logppl, PERPLEXITY_QUANTILE))
    median = tally.median_logppl()
    oov_off = oov > reference.heldout_oov + OOV_MARGIN
    ppl_off = bool(np.isfinite(median) and median > limit)
    domain = {"oov_rate": oov, "reference_oov_rate": reference.heldout_oov,
              "oov_margin": OOV_MARGIN, "median_log_perplexity": median,
              "reference_log_perplexity_limit": limit,
              "perplexity_quantile": PERPLEXITY_QUANTILE, "detected": oov_off or ppl_off}
    if not domain["detected"]:
        return domain, []
    found = []
    if oov_off:
        found.append(f"{oov:.1%} of its tokens are outside the reference vocabulary (the "
                     f"reference's own unseen documents: {reference.heldout_oov:.1%}; "
                     f"threshold {reference.heldout_oov + OOV_MARGIN:.1%})")
    if ppl_off:
        found.append(f"its median log-perplexity is {median:.2f} nats per token, above the "
                     f"{PERPLEXITY_QUANTILE:.0%} quantile of the reference's unseen "
                     f"documents ({limit:.2f})")
    message = ("the candidate looks like another domain or language than the reference: "
               + " and ".join(found) + "; its signals measure that difference, not collapse")
    return domain, [{"kind": "domain_mismatch", "message": message, "oov_rate": oov,
                     "median_log_perplexity": median}]
