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
passes the lower order through (weight 1). The unigrams interpolate with the uniform
distribution over the ``V - 1`` predictable ids, so unseen words and ``<unk>`` get
``gamma / (V - 1)``. Every listed n-gram stores its interpolated probability and every
context its weight ``gamma``: the backoff form that ARPA files and KenLM use (in logs),
exact for this model. Scoring uses a telescoped form of it (:func:`interpolated_logprob`:
one gather per order, one log per token); the logs of the tables are taken only to write
an ARPA file.

Add-k and maximum likelihood
----------------------------
Both use the longest available context ``h`` (order - 1 tokens, fewer right after ``<s>``):
add-k ``(c(h w) + k) / (c(h .) + k (V - 1))``, uniform when ``h`` was never seen; MLE
``c(h w) / c(h .)``, which is 0 (log-probability ``-inf``, perplexity ``inf``) for an unseen
n-gram or an unseen context.

Sampling form
-------------
All three models are mixtures that can be sampled without building a V-dim distribution
(:func:`mixture_index`; its arrays are as long as the corpus, so ``fit_stream`` leaves them to
the first draw): from the longest context down, draw a continuation ``w`` of the
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
from .counts import BOS, EOS, Table, positions

FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)
# the arrays of the flattened sampling mixture (see mixture_index)
MIXTURE = ("gbase", "uniform_g", "ctx_first", "ctx_size", "expansion", "keep_all", "last_all")


@dataclass
class Fitted:
    """Everything a fitted model holds, per order n (list index n - 1)."""

    order: int
    vocab_size: int
    smoothing: str
    k: float
    tables: list[Table]
    # Kneser-Ney: the interpolated probability of each listed n-gram (prob_pad: with a
    # trailing 0, so that index -1, absent, gathers 0; prob: views without it); for the
    # contexts of orders 1..order-1 the backoff weight gamma (1 where the context has no
    # continuation: the order below passes through; gamma_pad: with a trailing 1)
    prob: list[np.ndarray] = field(default_factory=list)
    prob_pad: list[np.ndarray] = field(default_factory=list)
    gamma: list[np.ndarray] = field(default_factory=list)
    gamma_pad: list[np.ndarray] = field(default_factory=list)
    gamma_root: float = 0.0
    score_pairs: list[np.ndarray] | None = None  # see interpolated_logprob
    discounts: np.ndarray | None = None
    discount_fallback: list[bool] = field(default_factory=list)
    # add-k / MLE: sum of continuation counts of each context (orders 1..order-1); for
    # scoring, count + k of each n-gram and total + k (V - 1) of each context, each with a
    # trailing entry for index -1 (absent): k, and k (V - 1) (MLE: 0 and 0)
    total: list[np.ndarray] = field(default_factory=list)
    total_root: float = 0.0
    count_pad: list[np.ndarray] = field(default_factory=list)
    total_pad: list[np.ndarray] = field(default_factory=list)
    # sampling: occurrences of each listed n-gram (adjusted counts for Kneser-Ney, counts
    # otherwise) and, for Kneser-Ney, a - D(a); the flattened mixture's arrays (MIXTURE)
    # are plain attributes set by mixture_index, on first use if not before
    occurrences: list[np.ndarray] = field(default_factory=list)
    kept: list[np.ndarray] = field(default_factory=list)

    @property
    def n_predictable(self) -> int:
        return self.vocab_size - 1

    def __getattr__(self, name: str):
        # only called for a missing attribute: the sampler's arrays, not built yet
        if name in MIXTURE:
            mixture_index(self)
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def log_tables(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Kneser-Ney in ARPA form: ln p of each listed n-gram per order, ln gamma of each
        context (orders 1..order-1)."""
        with np.errstate(divide="ignore"):
            return [np.log(p) for p in self.prob], [np.log(g) for g in self.gamma]


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
            a = t.count
        else:
            a = np.bincount(tables[n].suffix, minlength=len(t))
            a[t.bos] = t.count[t.bos]
        out.append(a)
    return out


def context_totals(tables: list[Table], n: int) -> np.ndarray:
    """For each entry ``h`` of table n - 1, the sum of the counts of its continuations in
    table n (float).

    Without a pass over table n: an occurrence of ``h`` is continued unless it ends its
    document (``h`` ends with ``</s>``), so the sum is the count of ``h``, or 0. At order 2
    the context ``<s>`` is never counted as a token: it starts every document, as often as
    ``</s>`` ends one.
    """
    below = tables[n - 2]
    total = np.where(below.last != EOS, below.count, 0).astype(np.float64)
    if n == 2:
        total[BOS] = below.count[EOS]
    return total


def kneser_ney(fit: Fitted, user_discounts: np.ndarray | None) -> None:
    """Fill ``fit`` with interpolated modified Kneser-Ney probabilities, backoff weights
    and the scoring pairs (see :func:`interpolated_logprob`)."""
    tables, N = fit.tables, fit.order
    fit.occurrences = adjusted_counts(tables)
    fit.discounts = np.zeros((N, 3))
    ratio = []  # per order: p over what backing off gives, per entry, then 1 (absent)
    for n, (t, a) in enumerate(zip(tables, fit.occurrences), start=1):
        if user_discounts is None:  # (count_nonzero beats a bincount of min(a, 5) ~2x)
            d3, fallback = estimate_discounts([np.count_nonzero(a == c) for c in (1, 2, 3, 4)])
        else:
            d3, fallback = user_discounts[n - 1], False
        fit.discounts[n - 1] = d3
        fit.discount_fallback.append(fallback)
        d = np.array([0.0, d3[0], d3[1], d3[2]]).take(a, mode="clip")  # a >= 3: D3+
        kept = a - d
        fit.kept.append(kept)
        p = np.empty(len(t) + 1)
        p[-1] = 0.0
        r = np.ones(len(t) + 1)
        if n == 1:
            s = float(a.sum())
            gamma = float(d.sum()) / s
            np.divide(kept, s, out=p[:-1])
            p[:-1] += gamma / fit.n_predictable
            p[BOS] = 0.0
            fit.gamma_root = gamma
            r[:-1] = p[:-1]
        else:
            parent = len(tables[n - 2])
            if n == N:  # raw counts: their context sums need no pass over the table
                s = context_totals(tables, n)
            else:  # integer sums over each context's slice (exact, ~3x faster than bincount)
                run = np.zeros(len(t) + 1, np.int64)
                np.cumsum(a, out=run[1:])
                below = tables[n - 2]
                s = (run.take(below.child_hi) - run.take(below.child_lo)).astype(np.float64)
            g = np.ones(parent + 1)
            np.divide(np.bincount(t.ctx, weights=d, minlength=parent), s, out=g[:-1],
                      where=s > 0)
            fit.gamma_pad.append(g)
            fit.gamma.append(g[:-1])
            backed = g.take(t.ctx) * fit.prob[n - 2].take(t.suffix)  # gamma(h) p(w | h')
            np.divide(kept, s.take(t.ctx), out=p[:-1])
            p[:-1] += backed
            with np.errstate(divide="ignore", invalid="ignore"):  # (unused unless inside)
                np.divide(p[:-1], backed, out=r[:-1])
        ratio.append(r)
        fit.prob_pad.append(p)
        fit.prob.append(p[:-1])
    # Discounts strictly inside (0, k) make every gamma and every p positive, so that every
    # ratio is defined (estimated ones are, unless n_k happen to put one on a bound).
    D = fit.discounts
    if np.all((D > 0) & (D < [1.0, 2.0, 3.0])):
        fit.score_pairs = [np.stack([r, g], axis=1)
                           for r, g in zip(ratio, fit.gamma_pad)] + [ratio[-1]]


def count_based(fit: Fitted) -> None:
    """Fill ``fit`` for add-k or MLE: context totals and the padded arrays of scoring."""
    tables, k = fit.tables, (fit.k if fit.smoothing == "add_k" else 0.0)
    kv = k * fit.n_predictable
    fit.total_root = float(tables[0].count.sum())
    fit.occurrences = [t.count for t in tables]
    for n, t in enumerate(tables, start=1):
        c = np.empty(len(t) + 1)
        c[-1] = k
        np.add(t.count, k, out=c[:-1])
        fit.count_pad.append(c)
        if n > 1:
            total = context_totals(tables, n)
            fit.total.append(total)
            c = np.empty(total.size + 1)
            c[-1] = kv
            np.add(total, kv, out=c[:-1])
            fit.total_pad.append(c)


def mixture_index(fit: Fitted) -> None:
    """Flatten the sampling mixture into global arrays, so that one draw for a whole batch
    is a few gathers per level, without a search.

    Each context's continuations are laid out as *occurrences*: continuation ``w`` repeated
    ``a(h w)`` times (its adjusted count for Kneser-Ney, its count otherwise), so a uniform
    occurrence picks ``w`` with probability ``a / S(h)``; it is then kept with probability
    ``keep(h w)``, else the walk goes one level down. Kneser-Ney: ``keep = (a - D(a)) / a``,
    so ``w`` is kept with probability ``(a - D(a)) / S(h)`` and the walk goes down with
    probability ``sum D / S = gamma(h)``: exactly the interpolated model. Add-k and MLE:
    ``keep = lam(h)``, the stop probability of the context (see the module docstring).

    Global context ids: per level m = 0 .. order-1, a sentinel at ``gbase[m]`` (an absent
    context, or one without continuations: its single occurrence is a dummy never kept),
    then the level's contexts (the root for m = 0, table m's entries otherwise); last, the
    uniform distribution (one occurrence per predictable id, always kept). ``ctx_first`` /
    ``ctx_size`` give each context's slice of ``expansion`` (global continuation ids);
    ``keep_all`` and ``last_all`` give each continuation's keep probability and token.
    """
    tables, N, V = fit.tables, fit.order, fit.vocab_size
    if fit.smoothing == "kneser_ney":
        with np.errstate(invalid="ignore"):
            keep = [np.divide(kept, a, out=np.zeros(a.size), where=a > 0)
                    for kept, a in zip(fit.kept, fit.occurrences)]
    else:
        if fit.smoothing == "add_k":
            kv = fit.k * fit.n_predictable
            lam = [t / (t + kv) for t in fit.total]
            lam_root = fit.total_root / (fit.total_root + kv)
        else:
            lam = [(t > 0).astype(float) for t in fit.total]
            lam_root = float(fit.total_root > 0)
        keep = [np.full(V, lam_root)] + [l.take(t.ctx) for l, t in zip(lam, tables[1:])]
    # continuation ids: 0 is the dummy, then the entries of tables 1..N, then the uniform
    # part (one per id; <s> has no occurrence)
    sizes = np.array([1] + [len(t) for t in tables] + [V])
    child_base = np.cumsum(sizes) - sizes
    uniform = np.ones(V, np.int64)
    uniform[BOS] = 0
    occurrences = np.concatenate([[1], *fit.occurrences, uniform])
    # (int64: the sampler's gathers through int32 indices would cast them on every draw)
    fit.expansion = np.repeat(np.arange(occurrences.size), occurrences)
    start = np.concatenate([[0], np.cumsum(occurrences)])  # start[i]: first occurrence of i
    lo = [np.array([child_base[1]])]  # the root continues with all of table 1
    hi = [np.array([child_base[1] + V])]
    for m in range(1, N):
        t = tables[m - 1]
        lo.append(child_base[m + 1] + t.child_lo)
        hi.append(child_base[m + 1] + t.child_hi)
    first, size = [], []
    for a, b in zip(lo, hi):
        z = start.take(b) - start.take(a)
        none = z == 0  # no continuation: the dummy, never kept
        first.append(np.concatenate([[0], np.where(none, 0, start.take(a))]))  # sentinel first
        size.append(np.concatenate([[1], np.where(none, 1, z)]))
    per_level = np.array([f.size for f in first])
    fit.gbase = (np.cumsum(per_level) - per_level).astype(np.int64)
    fit.uniform_g = int(per_level.sum())
    fit.ctx_first = np.concatenate(first + [[start[child_base[N + 1]]]]).astype(np.int64)
    fit.ctx_size = np.concatenate(size + [[V - 1]]).astype(np.float64)
    fit.keep_all = np.concatenate([[0.0], *keep, np.ones(V)])
    fit.last_all = np.concatenate([[0], *(t.last for t in tables), np.arange(V)])


def backoff_logprob(indexes: list, prob_pad: list[np.ndarray], gamma_pad: list[np.ndarray],
                    vocab_size: int, docs) -> np.ndarray:
    """Natural-log probability of every predicted token of ``docs`` under a backoff model:
    per order, the key index, p of each listed n-gram and the backoff weight of each
    context, each with a trailing entry for index -1 (absent: p 0, weight 1); order 1 is
    dense.

    p(w | h) = p(h w) if ``h w`` is listed, else gamma(h) p(w | h'), with ``gamma(h) = 1``
    when ``h`` is not listed: the ARPA semantics, one lookup per order over all positions of
    all documents at once, and one log per token at the end.
    """
    L = positions(indexes, vocab_size, docs, len(prob_pad))
    p = prob_pad[0].take(docs.tok)
    for n in range(2, len(prob_pad) + 1):
        r = L.rank[n - 1]
        p *= gamma_pad[n - 2].take(L.ctx[n - 1])
        p = np.where(r >= 0, prob_pad[n - 1].take(r), p)
    with np.errstate(divide="ignore"):
        return np.log(p)


def interpolated_logprob(fit: Fitted, docs) -> np.ndarray:
    """Natural-log probability of every predicted token of ``docs`` under Kneser-Ney, with
    one gather per order of the ranks at the token (the backoff form needs two, and a
    select).

    Each listed n-gram ``x = h w`` stores its ratio ``R(x) = p(w | h) / (gamma(h) p(w | h'))``
    over what backing off would give it (``R = p`` for unigrams), next to its own backoff
    weight ``G(x)`` as a context (``fit.score_pairs``: one gather fetches both; absent: 1).
    Listing is nested (``h w`` listed implies ``h`` and ``h' w`` are), so telescoping the
    backoff recursion gives, with ``r_m`` the rank of the m-gram ending at the token,

        p = prod_m R(r_m(token)) * prod_{m < N} G(r_m(previous token)),

    the previous token of a document's first being ``<s>``. ``kneser_ney`` leaves
    ``score_pairs`` None when some ratio is undefined (a zero backoff: discounts of 0 or at
    their bounds); then :func:`backoff_logprob` scores.
    """
    N, pairs = fit.order, fit.score_pairs
    L = positions([t.index for t in fit.tables], fit.vocab_size, docs, N)
    p = pairs[N - 1].take(L.rank[N - 1])
    if N > 1:
        w = None  # the product of the weights, for the next token
        for m in range(1, N):
            z = pairs[m - 1].take(L.rank[m - 1], axis=0)
            p *= z[:, 0]
            w = z[:, 1] if w is None else w * z[:, 1]
        before = np.empty_like(p)
        before[1:] = w[:-1]
        before[docs.first] = pairs[0][BOS, 1]
        p *= before
    with np.errstate(divide="ignore"):
        return np.log(p)


def count_logprob(fit: Fitted, docs) -> np.ndarray:
    """Natural-log probability of every predicted token of ``docs`` under add-k or MLE,
    at the longest available context."""
    tables, N = fit.tables, fit.order
    if N == 1:
        cnt = fit.count_pad[0].take(docs.tok)
        k = fit.k if fit.smoothing == "add_k" else 0.0
        tot = np.full(cnt.size, fit.total_root + k * fit.n_predictable)
    else:
        L = positions([t.index for t in tables], fit.vocab_size, docs, N)
        cnt = fit.count_pad[N - 1].take(L.rank[N - 1])
        tot = fit.total_pad[N - 2].take(L.ctx[N - 1])
        sizes = np.diff(np.append(docs.first, docs.tok.size))
        for n in range(2, N):  # the token n - 1 places after <s> has a context of n - 1 tokens
            m = (docs.first + (n - 2))[sizes > n - 2]
            cnt[m] = fit.count_pad[n - 1].take(L.rank[n - 1].take(m))
            tot[m] = fit.total_pad[n - 2].take(L.ctx[n - 1].take(m))
    with np.errstate(divide="ignore", invalid="ignore"):
        if fit.smoothing == "add_k":
            return np.log(cnt / tot)
        return np.log(np.where(tot > 0, cnt / np.where(tot > 0, tot, 1.0), 0.0))
