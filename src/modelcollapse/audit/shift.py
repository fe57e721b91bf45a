"""Lexical signals that move with LLM text: excess vocabulary and a document-length shift.

``excess_vocabulary`` (after Kobak et al., "Delving into ChatGPT usage in academic writing
through excess vocabulary"): LLM text over-uses some words. Selecting those words on the same
documents one then measures would find "excess" in any corpus (the largest of many noisy gaps
is positive), so the signal is cross-fitted: the candidate's and the reference's sampled
documents are each halved at random; on the first halves the :data:`N_WORDS` words with the
largest z-score of the document-frequency gap (candidate minus reference, at least
:data:`MIN_DOCS` candidate documents) are chosen; on the second halves the signal is the
share of candidate documents holding at least one chosen word minus the reference's share.
Under "no change" its expectation is 0 whatever the selection; the interval is the normal
interval of a difference of two proportions.

``length_shift``: total variation distance between the candidate's shares of documents in the
reference's length quintiles (word counts of the reference sample) and one fifth each. Its
no-change baseline is not 0 (noise alone moves shares off a fifth), so the baseline is the
mean distance of a multinomial sample of the same size from uniform shares (Monte Carlo,
seeded) and the interval is a percentile bootstrap over candidate documents.

Both rules were set so that a human-vs-human random split stays ok (tests/test_audit_shift.py
checks it on the embedded corpus).
"""

from __future__ import annotations

import numpy as np

from .signals import Context, signal
from .result import Signal
from .verdicts import Rule

N_WORDS = 20
MIN_DOCS = 3
N_LENGTH_BINS = 5
_Z = 1.959963984540054


def _doc_sets(tokens: list[list[str]]) -> list[set]:
    return [{t.lower() for t in doc} for doc in tokens]


def _freq(sets: list[set]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in sets:
        for w in s:
            out[w] = out.get(w, 0) + 1
    return out


def excess_vocabulary(cand_tokens: list[list[str]], ref_tokens: list[list[str]],
                      rng: np.random.Generator) -> tuple[float, float, float, dict] | None:
    """``(estimate, ci_low, ci_high, extra)`` (module docstring); None when a half holds
    fewer than 10 documents."""
    c, r = _doc_sets(cand_tokens), _doc_sets(ref_tokens)
    if min(len(c), len(r)) < 20:
        return None
    ci, ri = rng.permutation(len(c)), rng.permutation(len(r))
    c1, c2 = [c[i] for i in ci[:len(c) // 2]], [c[i] for i in ci[len(c) // 2:]]
    r1, r2 = [r[i] for i in ri[:len(r) // 2]], [r[i] for i in ri[len(r) // 2:]]
    fc, fr = _freq(c1), _freq(r1)
    nc, nr = len(c1), len(r1)
    scored = []
    for w, k in fc.items():
        if k < MIN_DOCS:
            continue
        p, q = fr.get(w, 0) / nr, k / nc
        pooled = (k + fr.get(w, 0)) / (nc + nr)
        se = np.sqrt(pooled * (1 - pooled) * (1 / nc + 1 / nr))
        scored.append(((q - p) / se if se > 0 else 0.0, w))
    words = {w for z, w in sorted(scored, reverse=True)[:N_WORDS] if z > 0}
    if not words:
        return 0.0, 0.0, 0.0, {"words": []}
    a = np.mean([bool(s & words) for s in c2])
    b = np.mean([bool(s & words) for s in r2])
    se = np.sqrt(a * (1 - a) / len(c2) + b * (1 - b) / len(r2))
    est = float(a - b)
    se = max(se, 1.0 / (len(c2) + len(r2)))
    return est, est - _Z * se, est + _Z * se, {
        "words": sorted(words), "candidate_share": float(a), "reference_share": float(b),
        "candidate_docs": len(c2), "reference_docs": len(r2)}


def length_shift(cand_lengths: np.ndarray, ref_lengths: np.ndarray, rng: np.random.Generator,
                 n_boot: int) -> tuple[float, float, float, float, dict]:
    """``(estimate, ci_low, ci_high, baseline, extra)`` (module docstring)."""
    cuts = np.quantile(ref_lengths, np.linspace(0, 1, N_LENGTH_BINS + 1)[1:-1])
    # documents on a cut are split between the two bins as the reference's are: use
    # mid-ranks by jittering ties with a seeded uniform in [0, 1) word
    jitter_c = cand_lengths + rng.random(cand_lengths.size)
    cuts_j = np.quantile(ref_lengths + rng.random(ref_lengths.size),
                         np.linspace(0, 1, N_LENGTH_BINS + 1)[1:-1])
    n = cand_lengths.size
    bins = np.searchsorted(cuts_j, jitter_c, side="right")
    shares = np.bincount(bins, minlength=N_LENGTH_BINS) / n

    def tv(s):
        return 0.5 * np.abs(s - 1 / N_LENGTH_BINS).sum(axis=-1)

    boot = rng.multinomial(n, shares, size=n_boot) / n
    null = rng.multinomial(n, np.full(N_LENGTH_BINS, 1 / N_LENGTH_BINS), size=n_boot) / n
    est = float(tv(shares))
    lo, hi = np.quantile(tv(boot), [0.025, 0.975])
    return est, float(min(lo, est)), float(max(hi, est)), float(tv(null).mean()), {
        "shares": shares.tolist(), "reference_quintile_cuts": cuts.tolist(),
        "candidate_median_words": float(np.median(cand_lengths)),
        "reference_median_words": float(np.median(ref_lengths))}


@signal("excess_vocabulary",
        rule=Rule("higher", 0.05, 0.15, "absolute",
                  "0: the reference's share of documents holding the selected words"),
        definition="Share of candidate documents holding at least one of the words most "
                   "over-used against the reference (selected on one half of the documents, "
                   "measured on the other), minus the reference's share (after Kobak et al.).",
        order=80)
def _excess(ctx: Context):
    got = excess_vocabulary(ctx.cand_pool.tokens, ctx.ref_pool.tokens,
                            ctx.rng("excess_vocabulary"))
    if got is None:
        return None
    est, lo, hi, extra = got
    return Signal("excess_vocabulary", est, lo, hi, extra.get("candidate_docs", 0),
                  "documents",
                  "Share of candidate documents holding at least one of the words most "
                  "over-used against the reference (cross-fitted selection), minus the "
                  "reference's share.",
                  "normal interval of a difference of two proportions (held-out halves)", 0.0,
                  extra)


@signal("length_shift",
        rule=Rule("higher", 0.10, 0.25, "absolute",
                  "the mean distance of a same-size sample with no shift (Monte Carlo)"),
        definition="Total variation distance between the candidate's shares of documents in "
                   "the reference's document-length quintiles and one fifth each.", order=85)
def _length(ctx: Context):
    c = np.fromiter(map(len, ctx.cand_pool.tokens), float)
    r = np.fromiter(map(len, ctx.ref_pool.tokens), float)
    if c.size < 20 or r.size < 20:
        return None
    est, lo, hi, base, extra = length_shift(c, r, ctx.rng("length_shift"),
                                            max(200, ctx.settings.n_boot))
    return Signal("length_shift", est, lo, hi, int(c.size), "documents",
                  "Total variation distance between the candidate's shares of documents in the "
                  "reference's length quintiles and one fifth each.",
                  "percentile bootstrap over candidate documents; baseline: Monte Carlo mean "
                  "under no shift", base, extra)
