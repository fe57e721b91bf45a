"""Self-BLEU: each sentence scored against all the others, exactly as sacrebleu scores it.

For every sentence i, ``sacrebleu.sentence_bleu(texts[i], texts[:i] + texts[i+1:])`` (its
defaults: tokenizer '13a', smoothing 'exp', effective order) is reproduced to floating-point
round-off, and the mean over sentences is the self-BLEU (0-100 scale, like sacrebleu's).
Higher = more homogeneous text.

How it is fast (no loop over sentence pairs): the sample is tokenized once (one regex pass
over the joined text), tokens become integer ids, and for each order n every
(n-gram, sentence) pair with its count comes from one ``np.unique``. A hypothesis' n-gram
count is clipped by the largest count of that n-gram in any *other* sentence: that is the
n-gram's largest per-sentence count, unless the hypothesis is the sentence holding it, in
which case it is the second largest (equal to the largest when two sentences tie). The
closest reference length likewise comes from the sorted distinct lengths with the
hypothesis' own length removed once (ties go to the shorter length, sacrebleu's rule).
Total work is O(N log N) in the number of tokens N.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np

from ..errors import UserError
from ._ngrams import Encoded, encode, ngrams
from .sampling import _generator, digest

log = logging.getLogger("modelcollapse.textmetrics")

SMOOTH_DEFAULTS = {"none": None, "floor": 0.1, "add-k": 1, "exp": None}
_LOG_ZERO = -9999999999.0   # sacrebleu's my_log(0)

# mteval-v13a post-tokenizer, as in sacrebleu.tokenizers.tokenizer_re.TokenizerRegexp
_13A = [
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
]


def _pre13a(line: str) -> str:
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = (line.replace("&quot;", '"').replace("&amp;", "&")
                .replace("&lt;", "<").replace("&gt;", ">"))
    return line


def tokenize(texts: Sequence[str], method: str = "13a", lowercase: bool = False) -> list[list[str]]:
    """Tokenize sentences as sacrebleu's BLEU does (``rstrip``, then '13a' or 'none').

    '13a' is mteval-v13a's tokenizer (sacrebleu's default); 'none' splits on whitespace.
    All sentences go through the regexes in one pass over the joined text: each line is
    wrapped in spaces and lines are joined by newlines, which no regex can match across
    (checked against sacrebleu in the tests).
    """
    if method not in ("13a", "none"):
        raise UserError(f"unknown BLEU tokenizer '{method}'; choose one of: 13a, none")
    lines = [(t.lower() if lowercase else t).rstrip() for t in texts]
    if method == "none":
        return [line.split() for line in lines]
    joined = "\n".join(f" {_pre13a(line)} " for line in lines)
    for pattern, repl in _13A:
        joined = pattern.sub(repl, joined)
    out = [part.split() for part in joined.split("\n")]
    return out if lines else []


def _closest_other_length(lengths: np.ndarray) -> np.ndarray:
    """For each sentence, the reference length sacrebleu picks among the *other* sentences."""
    uniq, mult = np.unique(lengths, return_counts=True)
    pos = np.searchsorted(uniq, lengths)
    pred = np.where(pos > 0, uniq[np.maximum(pos - 1, 0)], -1)
    succ = np.where(pos + 1 < uniq.size, uniq[np.minimum(pos + 1, uniq.size - 1)], -1)
    d_pred = np.where(pred >= 0, lengths - pred, np.iinfo(np.int64).max)
    d_succ = np.where(succ >= 0, succ - lengths, np.iinfo(np.int64).max)
    nearest = np.where(d_pred <= d_succ, pred, succ)    # a tie goes to the shorter one
    return np.where(mult[pos] >= 2, lengths, nearest)


def _match_stats(enc: Encoded, max_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Clipped matches and totals per sentence and order, each hypothesis vs all others."""
    s = enc.n_docs
    correct = np.zeros((s, max_n), dtype=np.float64)
    total = np.zeros((s, max_n), dtype=np.float64)
    for n, gram, doc in ngrams(enc, max_n):
        pair, cnt = np.unique(gram * np.int64(s) + doc, return_counts=True)
        g, d = pair // s, pair % s
        order = np.lexsort((-cnt, g))                    # by n-gram, largest count first
        g, d, cnt = g[order], d[order], cnt[order]
        first = np.empty(g.size, dtype=bool)
        first[:1] = True
        np.not_equal(g[1:], g[:-1], out=first[1:])
        start = np.flatnonzero(first)
        group = np.cumsum(first) - 1
        size = np.diff(np.append(start, g.size))
        max1, arg1 = cnt[start], d[start]
        max2 = np.where(size >= 2, cnt[np.minimum(start + 1, g.size - 1)], 0)
        ref = np.where(d == arg1[group], max2[group], max1[group])
        correct[:, n - 1] = np.bincount(d, weights=np.minimum(cnt, ref), minlength=s)
        total[:, n - 1] = np.maximum(enc.lengths - n + 1, 0)
    return correct, total


def bleu_from_stats(correct, total, sys_len, ref_len, smoothing: str = "exp",
                    smooth_value: float | None = None, effective_order: bool = True) -> np.ndarray:
    """sacrebleu's ``BLEU.compute_bleu``, vectorized over rows (sentences); 0-100 scale."""
    if smoothing not in SMOOTH_DEFAULTS:
        raise UserError(f"unknown BLEU smoothing '{smoothing}'; choose one of: "
                        f"{', '.join(SMOOTH_DEFAULTS)}")
    if smooth_value is None:
        smooth_value = SMOOTH_DEFAULTS[smoothing]
    correct = np.array(correct, dtype=np.float64)
    total = np.array(total, dtype=np.float64)
    sys_len = np.asarray(sys_len, dtype=np.float64)
    ref_len = np.asarray(ref_len, dtype=np.float64)
    rows, max_n = correct.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        bp = np.where(sys_len < ref_len,
                      np.where(sys_len > 0, np.exp(1.0 - ref_len / np.maximum(sys_len, 1)), 0.0),
                      1.0)
        any_match = correct.sum(axis=1) > 0
        if smoothing == "add-k":
            correct[:, 1:] += smooth_value
            total[:, 1:] += smooth_value
        used = np.cumprod(total != 0, axis=1).astype(bool)     # orders before the first empty
        zero = (correct == 0) & used
        prec = np.zeros((rows, max_n))
        hit = used & ~zero
        prec[hit] = 100.0 * correct[hit] / total[hit]
        if smoothing == "exp":
            factor = 2.0 ** np.cumsum(zero, axis=1)
            prec[zero] = 100.0 / (factor[zero] * total[zero])
        elif smoothing == "floor":
            prec[zero] = 100.0 * smooth_value / total[zero]
        logp = np.full((rows, max_n), _LOG_ZERO)
        logp[prec != 0] = np.log(prec[prec != 0])
        eff = used.sum(axis=1) if effective_order else np.full(rows, max_n)
        eff = np.where(eff == 0, max_n, eff)  # no n-grams at all: sacrebleu gives 0 below
        acc = np.zeros(rows)
        for k in range(max_n):                # summed in sacrebleu's order
            acc = acc + np.where(k < eff, logp[:, k], 0.0)
        score = bp * np.exp(acc / eff)
    return np.where(any_match, score, 0.0)


def self_bleu_scores(texts: Sequence[str], max_n: int = 4, smoothing: str = "exp",
                     smooth_value: float | None = None, tokenizer: str = "13a",
                     lowercase: bool = False, effective_order: bool = True,
                     hypotheses: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Per-sentence BLEU of each hypothesis against all other sentences (0-100).

    Equals ``sacrebleu.sentence_bleu(texts[i], [the others], smooth_method=smoothing,
    smooth_value=smooth_value, tokenize=tokenizer, lowercase=lowercase,
    use_effective_order=effective_order)`` for ``i`` in ``hypotheses`` (default: all),
    with ``max_n`` for sacrebleu's ``max_ngram_order``. References are always all the
    other sentences.
    """
    if isinstance(texts, str):
        raise UserError("self_bleu takes a list of sentences, not a single string")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise UserError(f"self_bleu takes sentences as strings; item {i} is "
                            f"{type(t).__name__}")
    if len(texts) < 2:
        raise UserError(f"self_bleu needs at least 2 sentences, got {len(texts)}")
    if int(max_n) < 1:
        raise UserError(f"self_bleu max_n must be >= 1, got {max_n}")
    (enc,) = encode(tokenize(texts, tokenizer, lowercase))
    correct, total = _match_stats(enc, int(max_n))
    ref_len = _closest_other_length(enc.lengths)
    if hypotheses is not None:
        idx = np.asarray(hypotheses, dtype=np.int64)
        correct, total = correct[idx], total[idx]
        sys_len, ref_len = enc.lengths[idx], ref_len[idx]
    else:
        sys_len = enc.lengths
    return bleu_from_stats(correct, total, sys_len, ref_len, smoothing, smooth_value,
                           effective_order)


def self_bleu(texts: Sequence[str], max_n: int = 4, smoothing: str = "exp",
              smooth_value: float | None = None, tokenizer: str = "13a",
              lowercase: bool = False, n_hypotheses: int | None = None, rng=0) -> float:
    """Self-BLEU of a sample of sentences: the mean of :func:`self_bleu_scores` (0-100).

    With ``n_hypotheses`` set (and below the sample size), only that many hypotheses,
    drawn without replacement by ``rng`` (a seed or ``numpy.random.Generator``), are
    scored, each still against all other sentences; the draw (count, seed, digest of the
    indices) is logged at INFO level. Use :func:`self_bleu_scores` with ``hypotheses`` to
    choose or record the indices yourself.
    """
    texts = list(texts) if not isinstance(texts, str) else texts
    hyps = None
    if n_hypotheses is not None and 0 < int(n_hypotheses) < len(texts):
        hyps = np.sort(_generator(rng).choice(len(texts), int(n_hypotheses), replace=False))
        log.info("self_bleu: %d of %d sentences scored as hypotheses (rng %r), digest %s",
                 hyps.size, len(texts), rng if not isinstance(rng, np.random.Generator)
                 else "Generator", digest(hyps))
    elif n_hypotheses is not None and int(n_hypotheses) < 1:
        raise UserError(f"self_bleu n_hypotheses must be >= 1, got {n_hypotheses}")
    return float(self_bleu_scores(texts, max_n, smoothing, smooth_value, tokenizer, lowercase,
                                  hypotheses=hyps).mean())
