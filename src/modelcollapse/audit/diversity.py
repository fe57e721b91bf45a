"""Lexical diversity and tail coverage at equal sample size, candidate against reference.

Distinct-n, entropy, compression ratio and rare-n-gram coverage all move with the number of
tokens they see, so each is measured on samples of the same ``size`` tokens
(:func:`modelcollapse.textmetrics.equal_size_sample`: whole documents in a seeded random
order, the last one cut). One *replicate* draws, without replacement,

* ``A``: ``size`` tokens of the reference pool (the reference's values),
* ``B``: ``size`` further tokens of the reference pool, disjoint from ``A`` (the human
  baseline of tail coverage),
* ``C``: ``size`` tokens of the candidate pool (its reservoir sample),

and evaluates every metric; self-BLEU takes the first ``bleu_docs`` whole documents of ``A``
and of ``C`` (as many from each), a bounded subsample because its cost grows with the
sentences compared.

Estimate: the mean over ``R`` replicates (``lexical_replicates``) of candidate minus
reference (for ``tail_coverage``: of the candidate's coverage of A's rare n-grams). The
self-BLEU samples are logged by :mod:`modelcollapse.textmetrics`. Interval: a replicate's
spread ``sd`` describes one equal-size sample drawn from a pool of which it takes a fraction
``f = size / pool``; for a smooth statistic the pool-level sampling variance is then
``sd^2 f / (1 - f)`` (the without-replacement variance ``s^2 (1/size - 1/pool)`` rescaled
to the pool). Per side, ``se^2 = sd^2 (f / (1 - f) + 1 / R)`` (the second term: the
Monte Carlo error of the mean); the interval is ``estimate +- 1.96 sqrt(se_c^2 + se_r^2)``.
It treats the documents read as a random sample of their source. ``size`` is capped at half
the candidate pool and a third of the reference pool (``A`` and ``B`` must fit, with room
to vary) so that ``f <= 1/2``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..textmetrics import (compression_ratio, distinct_n, equal_size_sample, self_bleu,
                           tail_coverage, unigram_entropy)
from .result import Signal

#: n-gram order of tail coverage: bigrams (the unigram tail is mostly typos and names).
TAIL_N = 2
#: Below this many tokens per sample the lexical signals are not computed (a caveat says so).
MIN_SAMPLE_TOKENS = 500
#: Default number of replicates (equal-size sample triples A, B, C).
REPLICATES = 50
_Z = 1.959963984540054
CI_METHOD = ("normal interval from repeated equal-size samples without replacement: "
             "se^2 = sd^2 (f/(1-f) + 1/R) per side, f = size / pool, R replicates")

DEFINITIONS = {
    **{f"distinct_{n}_delta": f"Candidate minus reference distinct-{n} (unique {n}-grams / "
                              f"all {n}-grams within documents) on equal-size token samples."
       for n in (1, 2, 3, 4)},
    "entropy_delta": "Candidate minus reference unigram entropy (nats) of the token "
                     "frequencies on equal-size token samples.",
    "compression_ratio_delta": "Candidate minus reference gzip compression ratio (raw / "
                               "compressed bytes; higher is more repetitive) on equal-size "
                               "token samples.",
    "self_bleu_delta": "Candidate minus reference self-BLEU (0-100, sacrebleu-exact; higher is "
                       "more homogeneous) on as many whole documents from each side.",
    "tail_coverage": f"Share of the reference sample's rare {TAIL_N}-grams (at or below the "
                     f"median count) that the candidate's equal-size sample contains.",
}


@dataclass
class Pool:
    """Documents to sample from: their texts and word tokens (same order)."""

    texts: list[str]
    tokens: list[list[str]]

    @property
    def n_tokens(self) -> int:
        return sum(map(len, self.tokens))


def sample_size(sample_tokens: int, candidate: Pool, reference: Pool) -> int:
    """The tokens per sample: ``sample_tokens`` capped as the module docstring says."""
    return int(min(sample_tokens, candidate.n_tokens // 2, reference.n_tokens // 3))


def _safe(fn: Callable[[], float]) -> float:
    """A metric's value, NaN when the sample lacks what it needs (e.g. no 4-gram)."""
    try:
        return float(fn())
    except UserError:
        return float("nan")


def _replicates(candidate: Pool, reference: Pool, size: int, n_rep: int,
                rng: np.random.Generator, bleu_docs: int) -> dict[str, np.ndarray]:
    """(n_rep,) values per side and metric: keys like ``("distinct_2", "c")``."""
    values: dict[tuple[str, str], list[float]] = {}

    def put(name: str, side: str, value: float) -> None:
        values.setdefault((name, side), []).append(value)

    everything = np.arange(len(reference.tokens))
    for _ in range(n_rep):
        a = equal_size_sample(reference.tokens, size, rng)
        rest = np.setdiff1d(everything, a.indices)
        b = equal_size_sample([reference.tokens[i] for i in rest], size, rng)
        c = equal_size_sample(candidate.tokens, size, rng)
        for side, s in (("c", c), ("r", a)):
            for n in (1, 2, 3, 4):
                put(f"distinct_{n}", side, _safe(lambda: distinct_n(s.docs, n)))
            put("entropy", side, _safe(lambda: unigram_entropy(s.docs)))
            put("compression_ratio", side, _safe(lambda: compression_ratio(s.docs)))
        put("tail_coverage", "c", _safe(lambda: tail_coverage(a.docs, c.docs, n=TAIL_N)))
        put("tail_coverage", "b", _safe(lambda: tail_coverage(a.docs, b.docs, n=TAIL_N)))
        k = min(bleu_docs, len(a.indices), len(c.indices))
        if k >= 2:
            put("self_bleu", "c", self_bleu([candidate.texts[i] for i in c.indices[:k]]))
            put("self_bleu", "r", self_bleu([reference.texts[i] for i in a.indices[:k]]))
            put("self_bleu", "k", k)
    return {key: np.asarray(v) for key, v in values.items()}


def _se(x: np.ndarray, f: float) -> float:
    return float(np.sqrt(np.var(x, ddof=1) * (f / (1 - f) + 1 / x.size))) if x.size > 1 else 0.0


def lexical_signals(candidate: Pool, reference: Pool, size: int, n_rep: int,
                    rng: np.random.Generator, bleu_docs: int
                    ) -> tuple[dict[str, Signal], list[str]]:
    """The diversity deltas and tail coverage (module docstring), and the names of the
    signals left out because a sample lacked what they need."""
    vals = _replicates(candidate, reference, size, n_rep, rng, bleu_docs)
    f_c = size / candidate.n_tokens
    f_r = size / reference.n_tokens
    signals: dict[str, Signal] = {}
    missing: list[str] = []
    for metric in ("distinct_1", "distinct_2", "distinct_3", "distinct_4", "entropy",
                   "compression_ratio", "self_bleu"):
        name = f"{metric}_delta"
        c, r = vals.get((metric, "c")), vals.get((metric, "r"))
        if c is None or not (np.isfinite(c).all() and np.isfinite(r).all()):
            missing.append(name)
            continue
        estimate = float(np.mean(c - r))
        if metric == "self_bleu":   # whole documents: f is the share of documents taken
            k = int(vals[(metric, "k")].min())
            fc, fr, n, unit = k / len(candidate.texts), k / len(reference.texts), k, "documents"
        else:
            fc, fr, n, unit = f_c, f_r, size, "tokens"
        half = _Z * np.hypot(_se(c, fc), _se(r, fr))
        ref_value = float(np.mean(r))
        signals[name] = Signal(
            name, estimate, estimate - half, estimate + half, n, unit, DEFINITIONS[name],
            CI_METHOD, 0.0,
            {"candidate": float(np.mean(c)), "reference": ref_value,
             "relative": estimate / abs(ref_value) if ref_value else None,
             "replicates": int(c.size)},
            reference_value=ref_value)
    c, b = vals[("tail_coverage", "c")], vals[("tail_coverage", "b")]
    if np.isfinite(c).all() and np.isfinite(b).all():
        estimate, baseline = float(np.mean(c)), float(np.mean(b))
        half = _Z * _se(c, max(f_c, 2 * f_r))   # both samples vary: the larger fraction
        signals["tail_coverage"] = Signal(
            "tail_coverage", estimate, estimate - half, estimate + half, size, "tokens",
            DEFINITIONS["tail_coverage"], CI_METHOD, baseline,
            {"ngram_order": TAIL_N, "baseline_ci_half_width": _Z * _se(b, 2 * f_r),
             "replicates": int(c.size)})
    else:
        missing.append("tail_coverage")
    return signals, missing


def pool(texts: Sequence[str], tokenizer) -> Pool:
    """A :class:`Pool` of texts (tokenized with the audit's tokenizer)."""
    texts = list(texts)
    return Pool(texts, tokenizer.tokenize_many(texts))
