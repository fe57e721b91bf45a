"""Smoothing: interpolated modified Kneser-Ney, add-k and maximum likelihood, on count tables.

Kneser-Ney (Chen & Goodman 1998, as estimated by KenLM's ``lmplz``)
--------------------------------------------------------------------
Adjusted counts ``a``: the raw count at the highest order and for n-grams starting with
``<s>`` (nothing can precede them); otherwise the continuation count, the number of distinct
tokens seen before the n-gram. For each order, three discounts from the count-of-counts
``n1 .. n4`` of the adjusted counts:

    Y = n1 / (n1 + 2 n2),   D_k = k - (k + 1) Y n_{k+1} / n_k   (k = 1, 2, 3; D_3 is D_3+)

When ``n1``, ``n2`` or ``n3`` is zero, or some ``D_k`` falls outside ``[0, k]`` (tiny or
artificial corpora), the order falls back to ``(0.5, 1.0, 1.5)``, as ``lmplz
--discount_fallback`` does; ``NGramLM.discount_fallback_`` records it. Then, for context
``h`` with continuations ``w`` (``S(h) = sum_w a(h w)``):

    p(w | h) = (a(h w) - D(a(h w))) / S(h) + gamma(h) p(w | h'),
    gamma(h) = (D_1 N_1(h) + D_2 N_2(h) + D_3 N_3+(h)) / S(h),

``h'`` being ``h`` without its first token; a context never seen at an order (``S = 0``)
passes the lower order through. The unigrams interpolate with the uniform distribution over
the ``V - 1`` predictable ids, so unseen words and ``<unk>`` get ``gamma / (V - 1)``.
Every listed n-gram stores its interpolated probability and every context ``ln gamma``: the
backoff form that ARPA files and KenLM use, exact for this model.

Add-k and maximum likelihood
----------------------------
Both use the longest available context ``h`` (order - 1 tokens, fewer right after ``<s>``):
add-k ``(c(h w) + k) / (c(h .) + k (V - 1))``, uniform when ``h`` was never seen; MLE
``c(h w) / c(h .)``, which is 0 (log-probability ``-inf``, perplexity ``inf``) for an unseen
n-gram or an unseen context.

Sampling form
-------------
All three models are mixtures that can be sampled without building a V-dim distribution
(:func:`mixture_index`): from the longest context down, draw a continuation ``w`` of the
context ``h`` with probability ``a(h w) / S(h)`` (a uniform pick among its occurrences) and
keep it with probability ``keep(h w)``, else go one order down; below the unigrams, draw
uniformly. Kneser-Ney: ``keep = (a - D(a)) / a``, so the walk goes down with probability
``gamma(h)``. Add-k: counts ``c`` and ``keep = c(h .) / (c(h .) + k (V - 1))`` at the longest
context only, then uniform. MLE: counts, ``keep = 1`` at the longest context.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError
from .counts import BOS, Table, positions

FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)


@dataclass
class Fitted:
    """Everything a fitted model holds, per order n (list index n - 1)."""

    order: int
    vocab_size: int
    smoothing: str
    k: float
    tables: list[Table]
    # Kneser-Ney: interpolated probability of each listed n-gram and its log; for contexts
    # (orders 1..order-1) gamma and bow = ln gamma (0 where the context has no continuation)
    prob: list[np.ndarray] = field(default_factory=list)
    logp: list[np.ndarray] = field(default_factory=list)
    gamma: list[np.ndarray] = field(default_factory=list)
    bow: list[np.ndarray] = field(default_factory=list)
    gamma_root: float = 0.0
    discounts: np.ndarray | None = None
    discount_fallback: list[bool] = field(default_factory=list)
    logp_pad: list[np.ndarray] = field(default_factory=list)
    bow_pad: list[np.ndarray] = field(default_factory=list)
    # add-k / MLE: sum of continuation counts of each context (and padded copies)
    total: list[np.ndarray] = field(default_factory=list)
    count_pad: list[np.ndarray] = field(default_factory=list)
    total_pad: list[np.ndarray] = field(default_factory=list)
    total_root: float = 0.0
    # sampling mixture (add-k / MLE: stop probability of each context)
    lam: list[np.ndarray] = field(default_factory=list)
    lam_root: float = 0.0
    occurrences: list[np.ndarray] = field(default_factory=list)
    keep: list[np.ndarray] = field(default_factory=list)
    gbase: np.ndarray | None = None  # see mixture_index
    uniform_g: int = 0
    ctx_first: np.ndarray | None = None
    ctx_size: np.ndarray | None = None
    expansion: np.ndarray | None = None
    keep_all: np.ndarray | None = None
    last_all: np.ndarray | None = None

    @property
    def n_predictable(self) -> int:
        return self.vocab_size - 1


def estimate_discounts(count_of_counts) -> tuple[np.ndarray, bool]:
    """(D1, D2, D3+) from n1..n4, the numbers of n-grams with adjusted count 1..4;
    fallback flag."""
    n1, n2, n3, n4 = (float(x) for x in count_of_counts)
    if n1 == 0 or n2 == 0 or n3 == 0:
        return np.array(FALLBACK_DISCOUNTS), True
    y = n1 / (n1 + 2 * n2)
    d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    if not (0 <= d[0] <= 1 and 0 <= d[1] <= 2 and 0 <= d[2] <= 3):
        return np.array(FALLBACK_DISCOUNTS), True
    return np.array(d), False


def check_discounts(discounts, order: int) -> np.ndarray | None:
    """The user's discounts as an (order, 3) array: one (D1, D2, D3+) or one per order."""
    if discounts is None:
        return None
    try:
        d = np.array(discounts, dtype=float)
    except (TypeError, ValueError):
        raise UserError("discounts must be (D1, D2, D3+) or one such triple per order") from None
    if d.shape == (3,):
        d = np.tile(d, (order, 1))
    if d.shape != (order, 3):
        raise UserError(f"discounts must be (D1, D2, D3+) or {order} such triples (one per "
                        f"order); got shape {d.shape}")
    if not (np.all(np.isfinite(d)) and np.all(d >= 0) and np.all(d <= [1.0, 2.0, 3.0])):
        raise UserError(f"discounts must satisfy 0 <= D_k <= k; got {d.tolist()}")
    return d


def adjusted_counts(tables: list[Table]) -> list[np.ndarray]:
    """Kneser-Ney adjusted counts of every table (see the module docstring)."""
    out = []
    for n, t in enumerate(tables, start=1):
        if n == len(tables):
            a = t.count.copy()
        else:
            a = np.bincount(tables[n].suffix, minlength=len(t)).astype(np.int64)
            a[t.bos] = t.count[t.bos]
        out.append(a)
    return out


def kneser_ney(fit: Fitted, user_discounts: np.ndarray | None) -> None:
    """Fill ``fit`` with interpolated modified Kneser-Ney probabilities and backoffs."""
    tables = fit.tables
    adjusted = adjusted_counts(tables)
    fit.discounts = np.zeros((fit.order, 3))
    keep = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for n, (t, a) in enumerate(zip(tables, adjusted), start=1):
            a5 = np.minimum(a, 5)
            if user_discounts is None:
                d3, fallback = estimate_discounts(np.bincount(a5, minlength=6)[1:5])
            else:
                d3, fallback = user_discounts[n - 1], False
            fit.discounts[n - 1] = d3
            fit.discount_fallback.append(fallback)
            d = np.array([0.0, d3[0], d3[1], d3[2], d3[2], d3[2]])[a5]
            kept = a - d
            keep.append(kept / a)  # the keep probability of an occurrence (0/0 at a = 0)
            # probabilities (and their logs) get a trailing 0: index -1 (absent) gathers it
            p = np.zeros(len(t) + 1)
            if n == 1:
                keep[-1][a == 0] = 0.0
                s = float(a.sum())
                gamma = float(d.sum()) / s
                np.add(kept / s, gamma / fit.n_predictable, out=p[:-1])
                p[BOS] = 0.0
                fit.gamma_root = gamma
                fit.lam_root = 1.0 - gamma
            else:
                parent = len(tables[n - 2])
                s = np.bincount(t.ctx, weights=a, minlength=parent)
                gamma = np.bincount(t.ctx, weights=d, minlength=parent) / s
                gamma[s == 0] = 0.0  # no continuation: nothing to back off from
                fit.gamma.append(gamma)
                bow = np.zeros(parent + 1)
                np.log(np.where(s > 0, gamma, 1.0), out=bow[:-1])
                fit.bow_pad.append(bow)
                fit.bow.append(bow[:-1])
                np.add(kept / s[t.ctx], gamma[t.ctx] * fit.prob[n - 2][t.suffix], out=p[:-1])
            fit.prob.append(p[:-1])
            logp = np.log(p)
            logp[-1] = 0.0
            fit.logp_pad.append(logp)
            fit.logp.append(logp[:-1])
    fit.occurrences, fit.keep = adjusted, keep


def count_based(fit: Fitted) -> None:
    """Fill ``fit`` for add-k or MLE: context totals, stop probabilities, weights."""
    tables, k, Vp = fit.tables, fit.k, fit.n_predictable
    fit.total_root = float(tables[0].count.sum())
    for n in range(2, fit.order + 1):
        t = tables[n - 1]
        fit.total.append(np.bincount(t.ctx, weights=t.count, minlength=len(tables[n - 2])))
    if fit.smoothing == "add_k":
        stop = lambda c: c / (c + k * Vp)  # noqa: E731
    else:
        stop = lambda c: (c > 0).astype(float)  # noqa: E731
    fit.lam_root = float(stop(np.float64(fit.total_root)))
    fit.lam = [stop(c) for c in fit.total]
    fit.count_pad = padded([t.count.astype(float) for t in tables])
    fit.total_pad = padded(fit.total)
    fit.occurrences = [t.count for t in tables]
    fit.keep = [np.full(len(tables[0]), fit.lam_root)] + [
        lam[tables[n].ctx] for n, lam in enumerate(fit.lam, start=1)]


def mixture_index(fit: Fitted) -> None:
    """Flatten the sampling mixture into global arrays, so that one draw for a whole batch
    is a few gathers per level, without a search.

    Each context's continuations are laid out as *occurrences*: continuation ``w`` repeated
    ``a(h w)`` times (its adjusted count for Kneser-Ney, its count otherwise), so a uniform
    occurrence picks ``w`` with probability ``a / S(h)``; it is then kept with probability
    ``keep(h w)``, else the walk goes one level down. Kneser-Ney: ``keep = (a - D(a)) / a``,
    so ``w`` is kept with probability ``(a - D(a)) / S(h)`` and the walk goes down with
    probability ``sum D / S = gamma(h)``: exactly the interpolated model. Add-k and MLE:
    ``keep = lam(h)`` (see the module docstring).

    Global context ids: per level m = 0 .. order-1, a sentinel at ``gbase[m]`` (an absent
    context, or one without continuations: its single occurrence is a dummy never kept),
    then the level's contexts (the root for m = 0, table m's entries otherwise); last, the
    uniform distribution (one occurrence per predictable id, always kept). ``ctx_first`` /
    ``ctx_size`` give each context's slice of ``expansion`` (global continuation ids);
    ``keep_all`` and ``last_all`` give each continuation's keep probability and token.
    """
    tables, N, V = fit.tables, fit.order, fit.vocab_size
    # continuation ids: 0 is the dummy, then the entries of tables 1..N, then the uniform
    # part (one per id; <s> has no occurrence)
    sizes = np.array([1] + [len(t) for t in tables] + [V])
    child_base = np.cumsum(sizes) - sizes
    uniform = np.ones(V, np.int64)
    uniform[BOS] = 0
    occurrences = np.concatenate([[1], *fit.occurrences, uniform])
    fit.expansion = np.repeat(np.arange(occurrences.size), occurrences)
    start = np.concatenate([[0], np.cumsum(occurrences)])  # start[i]: first occurrence of i
    fit.last_all = np.concatenate([[0], *(t.last for t in tables), np.arange(V)])
    fit.keep_all = np.concatenate([[0.0], *fit.keep, np.ones(V)])
    lo = [np.array([child_base[1]])]  # the root continues with all of table 1
    hi = [np.array([child_base[1] + V])]
    for m in range(1, N):
        t = tables[m - 1]
        lo.append(child_base[m + 1] + t.child_lo)
        hi.append(child_base[m + 1] + t.child_hi)
    first, size = [], []
    for a, b in zip(lo, hi):
        z = start[b] - start[a]
        none = z == 0  # no continuation: the dummy, never kept
        first.append(np.concatenate([[0], np.where(none, 0, start[a])]))  # sentinel first
        size.append(np.concatenate([[1], np.where(none, 1, z)]))
    per_level = np.array([f.size for f in first])
    fit.gbase = (np.cumsum(per_level) - per_level).astype(np.int64)
    fit.uniform_g = int(per_level.sum())
    fit.ctx_first = np.concatenate(first + [[start[child_base[N + 1]]]]).astype(np.int64)
    fit.ctx_size = np.concatenate(size + [[V - 1]]).astype(np.float64)


def padded(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Each array with a trailing 0, so that index -1 (absent) gathers 0."""
    return [np.append(a, 0.0) for a in arrays]


def backoff_logprob(indexes: list, logp_pad: list[np.ndarray], bow_pad: list[np.ndarray],
                    vocab_size: int, docs) -> np.ndarray:
    """Natural-log probability of every predicted token of ``docs`` under a
    backoff model: per order, the key index, ln p of each listed n-gram and ln backoff of
    each context, each with a trailing 0 (see :func:`padded`); order 1 is dense.

    ln p(w | h) = ln p(h w) if ``h w`` is listed, else ln bow(h) + ln p(w | h'), with
    ``ln bow(h) = 0`` when ``h`` is not listed: the ARPA semantics, one lookup per order over
    all positions of all documents at once.
    """
    L = positions(indexes, vocab_size, docs, len(logp_pad))
    res = logp_pad[0][docs.tok]
    for n in range(2, len(logp_pad) + 1):
        r = L.rank[n - 1]
        res = np.where(r >= 0, logp_pad[n - 1][r], res + bow_pad[n - 2][L.ctx[n - 1]])
    return res


def count_logprob(fit: Fitted, docs) -> np.ndarray:
    """Natural-log probability of every predicted token of ``docs`` under add-k or MLE,
    at the longest available context."""
    tables, N = fit.tables, fit.order
    L = positions([t.index for t in tables], fit.vocab_size, docs, N)
    if N == 1:
        cnt = tables[0].count[docs.tok].astype(float)
        tot = np.full(cnt.size, fit.total_root)
    else:
        cnt = fit.count_pad[N - 1][L.rank[N - 1]]
        tot = fit.total_pad[N - 2][L.ctx[N - 1]]
        sizes = np.diff(np.append(docs.first, docs.tok.size))
        for n in range(2, N):  # the token n - 1 places after <s> has a context of n - 1 tokens
            m = (docs.first + (n - 2))[sizes > n - 2]
            cnt[m] = fit.count_pad[n - 1][L.rank[n - 1][m]]
            tot[m] = fit.total_pad[n - 2][L.ctx[n - 1][m]]
    with np.errstate(divide="ignore", invalid="ignore"):
        if fit.smoothing == "add_k":
            return np.log((cnt + fit.k) / (tot + fit.k * fit.n_predictable))
        return np.log(np.where(tot > 0, cnt / np.where(tot > 0, tot, 1.0), 0.0))
