"""Decoding: ancestral sampling (temperature, top-k, top-p), greedy and beam search.

All documents advance one token per step together. The state of a document is, for each
m = 1 .. order-1, the index in table m of its last m tokens (-1 when absent), so moving to
the next token costs one lookup per order above 1, for the whole batch.

* Plain sampling (temperature 1, no top-k / top-p) draws from the model's mixture form
  (see :func:`.smoothing.mixture_index`): at each level, a uniformly drawn occurrence of a
  continuation, kept or not; no V-dim distribution is built, no search. It is exact.
* Every other mode builds the full next-token distribution of each active document as a
  (rows, V) array (rows chunked to bound memory), then applies, in this order, temperature
  (``p ** (1 / T)`` renormalized; ``T = 0`` is greedy), top-k (the k most probable tokens,
  ties broken toward the lower id) and top-p (the smallest set of most probable tokens,
  same tie rule, whose mass reaches p), and draws by inverse CDF.
* Greedy takes the most probable token (the lowest id among ties). Beam search keeps the
  ``beam_width`` most probable partial documents, ranks finished documents by
  ``ln p(document + </s>)`` and stops when no partial document can beat the best finished one,
  so with a beam as wide as the number of partial documents it is exact.

Documents stop at ``</s>`` (not included in the output) or after ``max_len`` new tokens
(sampling and greedy cut them there; beam search ranks them with ``</s>`` appended).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from .counts import BOS, EOS, argsort_int, positions, prepare
from .smoothing import Fitted

ROWS_X_VOCAB = 1 << 22  # the (rows, V) arrays are built this many floats at a time


@dataclass
class State:
    """ctx[m - 1]: index in table m of each document's last m tokens (-1: absent); hist:
    the number of tokens each document has read, ``<s>`` included."""

    ctx: list[np.ndarray]
    hist: np.ndarray

    def take(self, rows) -> State:
        return State([c[rows] for c in self.ctx], self.hist[rows])

    @property
    def size(self) -> int:
        return self.hist.size


def initial_state(fit: Fitted, n_docs: int, prompts) -> State:
    """The state after ``<s>`` (and each document's prompt, when given)."""
    N = fit.order
    if prompts is None:
        ctx = [np.full(n_docs, BOS, np.int64)] + [np.full(n_docs, -1, np.int64)
                                                  for _ in range(N - 2)]
        return State(ctx[:N - 1], np.ones(n_docs, np.int64))
    docs = prepare(prompts, fit.vocab_size, strict=False, what="prompts", eos=False)
    st = initial_state(fit, n_docs, None)
    st.hist = docs.lengths + 1
    some = np.flatnonzero(docs.lengths > 0)
    if some.size and N > 1:
        L = positions([t.index for t in fit.tables], fit.vocab_size, docs, N - 1)
        last = np.cumsum(docs.lengths)[some] - 1  # each prompt's last token
        for m in range(N - 1):
            st.ctx[m][some] = L.rank[m][last]
    return st


def advance(fit: Fitted, st: State, tok: np.ndarray) -> State:
    """The state after each document reads ``tok``."""
    ctx = [tok] if fit.order > 1 else []
    for m in range(2, fit.order):
        q = st.ctx[m - 2] * fit.vocab_size + tok  # an absent context gives a negative key
        ctx.append(fit.tables[m - 1].index.find(q))
    return State(ctx, st.hist + 1)


def mixture_draw(fit: Fitted, st: State, rng: np.random.Generator) -> np.ndarray:
    """One exact draw per document from the model's mixture form (temperature 1): at every
    level at once, a uniform occurrence of a continuation and whether it is kept; the
    longest level that keeps its draw wins (see :func:`.smoothing.mixture_index`)."""
    B, N = st.size, fit.order
    if fit.smoothing == "kneser_ney":  # rows: contexts of length N-1 .. 1, root, uniform
        G = np.empty((N + 1, B), np.int64)
        for m in range(1, N):
            np.add(st.ctx[m - 1], fit.gbase[m] + 1, out=G[N - 1 - m])
        G[N - 1] = fit.gbase[0] + 1
    else:  # only the longest available context, then the uniform distribution
        G = np.empty((2, B), np.int64)
        if N == 1:
            G[0] = fit.gbase[0] + 1
        elif st.hist.min() >= N - 1:
            np.add(st.ctx[N - 2], fit.gbase[N - 1] + 1, out=G[0])
        else:
            levels = [st.ctx[m - 1] + (fit.gbase[m] + 1) for m in range(1, N)]
            G[0] = np.choose(np.minimum(N - 1, st.hist) - 1, levels)
        if fit.smoothing == "mle" and np.any(fit.ctx_first[G[0]] == 0):
            raise UserError("the MLE model has never seen the context of a document being "
                            "generated, so it has no next-token distribution there")
    G[-1] = fit.uniform_g
    u = rng.random((2,) + G.shape)
    k = fit.ctx_first.take(G) + (u[0] * fit.ctx_size.take(G)).astype(np.int64)
    child = fit.expansion.take(k)
    kept = u[1] < fit.keep_all.take(child)
    kept[-1] = True
    return fit.last_all.take(child[kept.argmax(axis=0), np.arange(B)])


def _top_level(fit: Fitted, st: State) -> np.ndarray:
    """The longest usable context length of each document."""
    return np.minimum(fit.order - 1, st.hist)


def next_probs(fit: Fitted, st: State) -> np.ndarray:
    """(B, V) next-token probabilities (column ``<s>`` is 0). For MLE, a row is all zeros
    where the context was never seen."""
    B, V, N = st.size, fit.vocab_size, fit.order
    tables = fit.tables
    if fit.smoothing == "kneser_ney":
        P = np.empty((B, V))
        P[:] = fit.prob[0]
        for m in range(1, N):
            rows, lo, hi, cc = _children(tables[m - 1], st.ctx[m - 1])
            if rows.size:
                scale = np.ones(B)
                scale[rows] = fit.gamma[m - 1][cc]
                P *= scale[:, None]
                rep, child = _expand(rows, lo, hi)
                P[rep, tables[m].last[child]] = fit.prob[m][child]
        return P
    k = fit.k if fit.smoothing == "add_k" else 0.0
    Vp = fit.n_predictable
    P = np.full((B, V), k / (k * Vp) if k else 0.0)
    top = _top_level(fit, st)
    if N == 1:
        P[:] = (tables[0].count + k) / (fit.total_root + k * Vp)
    for m in range(1, N):
        at = np.flatnonzero(top == m)
        rows, lo, hi, cc = _children(tables[m - 1], st.ctx[m - 1][at])
        rows = at[rows]
        if rows.size:
            denom = fit.total[m - 1][cc] + k * Vp
            P[rows] = (k / denom)[:, None]
            rep, child = _expand(rows, lo, hi)
            per_row = np.repeat(denom, hi - lo)
            P[rep, tables[m].last[child]] = (tables[m].count[child] + k) / per_row
    P[:, BOS] = 0.0
    return P


def _children(table, c: np.ndarray):
    """Rows whose context ``c`` is listed and has continuations, with their slices."""
    rows = np.flatnonzero(c >= 0)
    cc = c[rows]
    lo, hi = table.child_lo[cc], table.child_hi[cc]
    keep = hi > lo
    return rows[keep], lo[keep], hi[keep], cc[keep]


def _expand(rows: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """(row, child index) pairs for every child in each row's slice ``[lo, hi)``."""
    lens = hi - lo
    rep = np.repeat(rows, lens)
    start = np.cumsum(lens) - lens
    child = np.arange(int(lens.sum())) + np.repeat(lo - start, lens)
    return rep, child


def _temper(P: np.ndarray, temperature: float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        L = np.log(P)
    L -= L.max(axis=1, keepdims=True)
    L /= temperature
    return np.exp(L)


N_BINS = 129  # 128 binary exponents below a row's largest (lower ones lumped), zeros


def _cut(P: np.ndarray, weight: np.ndarray | None, target: np.ndarray):
    """Per row, the first entry in (value desc, column asc) order at which the running sum
    of ``weight`` (1 per entry when None) reaches ``target``: its value and column.

    Without sorting whole rows: entries are binned by binary exponent, the bin where the
    running sum crosses the target is found from per-bin sums, and only that bin's entries
    (values within a factor 2 of each other) are sorted."""
    B, V = P.shape
    _, e = np.frexp(P)
    top = np.frexp(P.max(axis=1))[1][:, None]
    b = np.minimum(top - e, N_BINS - 2)  # 0: the row's largest binary exponent; 127: lower
    b[P == 0] = N_BINS - 1
    b += (np.arange(B) * N_BINS)[:, None]
    flat_w = None if weight is None else weight.ravel()
    per_bin = np.bincount(b.ravel(), weights=flat_w, minlength=B * N_BINS).reshape(B, N_BINS)
    run = np.cumsum(per_bin, axis=1)
    crossing = np.minimum((run < target[:, None]).sum(axis=1), N_BINS - 1)
    above = np.where(crossing > 0, run[np.arange(B), crossing - 1], 0.0)
    r, col = np.nonzero(b == (crossing + np.arange(B) * N_BINS)[:, None])
    if r.size > P.size // 8:  # a flat distribution (add-k): sorting whole rows is cheaper
        return _cut_sorted(P, weight, target)
    val = P[r, col]
    # (row, value desc, column) order: np.nonzero gives (row, column) order; two stable
    # sorts, by value (timsort: fast on the long runs of equal values) then by row (radix)
    o = np.argsort(-val, kind="stable")
    o = o[np.argsort(r[o].astype(np.uint16 if B < 1 << 16 else np.int64), kind="stable")]
    r, col, val = r[o], col[o], val[o]
    w = np.ones(r.size) if weight is None else weight[r, col]
    starts = np.searchsorted(r, np.arange(B))
    running = np.cumsum(w)
    running -= np.repeat(running[starts] - w[starts], np.diff(np.append(starts, r.size)))
    reached = np.flatnonzero(running + above[r] >= target[r])
    first = np.full(B, -1)
    first[r[reached][::-1]] = reached[::-1]  # the first index reaching it, per row
    last = np.append(starts[1:], r.size) - 1
    first = np.where(first >= 0, first, last)  # rounding: keep the whole crossing bin
    return val[first], col[first]


def _cut_sorted(P: np.ndarray, weight: np.ndarray | None, target: np.ndarray):
    """:func:`_cut` by a full stable sort of each row."""
    B, V = P.shape
    order = np.argsort(-P, axis=1, kind="stable")
    vals = np.take_along_axis(P, order, axis=1)
    if weight is None:
        j = np.minimum(np.ceil(target).astype(np.int64) - 1, V - 1)
    else:
        j = np.minimum((np.cumsum(vals, axis=1) < target[:, None]).sum(axis=1), V - 1)
    ar = np.arange(B)
    return vals[ar, j], order[ar, j]


def _keep_first(P: np.ndarray, cut: np.ndarray, col: np.ndarray) -> np.ndarray:
    """Zero the entries after the cut in (value desc, column asc) order."""
    keep = (P > cut[:, None]) | ((P == cut[:, None])
                                 & (np.arange(P.shape[1])[None, :] <= col[:, None]))
    return np.where(keep, P, 0.0)


def top_k_filter(P: np.ndarray, k: int) -> np.ndarray:
    """Keep the k largest entries of each row (ties toward the lower column), zero the rest."""
    B, V = P.shape
    if k >= V:
        return P
    if k == 1:
        out = np.zeros_like(P)
        best = np.argmax(P, axis=1)
        out[np.arange(B), best] = P[np.arange(B), best]
        return out
    return _keep_first(P, *_cut(P, None, np.full(B, float(k))))


def top_p_filter(P: np.ndarray, p: float) -> np.ndarray:
    """Keep, per row, the smallest set of largest entries (ties toward the lower column)
    whose share of the row's mass reaches ``p``; zero the rest."""
    if p >= 1.0:
        return P
    return _keep_first(P, *_cut(P, P, p * P.sum(axis=1)))


def _draw(P: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cum = np.cumsum(P, axis=1)
    u = rng.random(P.shape[0]) * cum[:, -1]
    return np.minimum((cum <= u[:, None]).sum(axis=1), P.shape[1] - 1)


def full_draw(fit: Fitted, st: State, rng, temperature: float, top_k, top_p,
              no_eos: np.ndarray | None = None, bias=None) -> np.ndarray:
    """Next tokens from the full distributions: greedy when temperature is 0. Rows flagged
    in ``no_eos`` draw from the distribution conditioned on not ending (``</s>`` zeroed
    before temperature and filtering) unless ``</s>`` is all the model allows there.
    ``bias``: (B, V) multipliers of the probabilities (a watermark's green-list boost),
    applied first, as logits processors come before temperature and top-k / top-p."""
    out = np.empty(st.size, np.int64)
    chunk = max(1, ROWS_X_VOCAB // fit.vocab_size)
    for s in range(0, st.size, chunk):
        P = next_probs(fit, st.take(slice(s, s + chunk)))
        if fit.smoothing == "mle" and np.any(P.sum(axis=1) == 0):
            raise UserError("the MLE model has never seen the context of a document being "
                            "generated, so it has no next-token distribution there")
        if bias is not None:
            P *= bias[s:s + chunk]
        if no_eos is not None:
            rows = np.flatnonzero(no_eos[s:s + chunk])
            rows = rows[P[rows].sum(axis=1) > P[rows, EOS]]
            P[rows, EOS] = 0.0
        if temperature == 0:
            out[s:s + chunk] = np.argmax(P, axis=1)
            continue
        if temperature != 1:
            P = _temper(P, temperature)
        if top_k is not None:
            P = top_k_filter(P, top_k)
        if top_p is not None:
            P = top_p_filter(P, top_p)
        out[s:s + chunk] = _draw(P, rng)
    return out


MAX_REJECTIONS = 64  # redraws of a rejected token before the exact full distribution is built


def token_prob(fit: Fitted, st: State, tok: np.ndarray) -> np.ndarray:
    """(B,) Kneser-Ney probability of ``tok`` after each document's context: the explicit
    n-gram of the longest context that lists it, times the backoff weights above it (the
    recursion :func:`next_probs` evaluates for every token at once)."""
    P = fit.prob[0][tok]
    V = fit.vocab_size
    for m in range(1, fit.order):
        c = st.ctx[m - 1]
        child = fit.tables[m].index.find(c * V + tok)   # an absent context gives a negative key
        P = np.where(child >= 0, fit.prob_pad[m][child], fit.gamma_pad[m - 1][c] * P)
    return P


def _child_max(fit: Fitted) -> list[np.ndarray]:
    """Per order m >= 1, for each context of table m, the largest probability among its
    listed continuations (0 without any); cached on the model."""
    cached = getattr(fit, "_child_max", None)
    if cached is None:
        cached = []
        for m in range(1, fit.order):
            t = fit.tables[m - 1]
            lo, hi = t.child_lo, t.child_hi
            out = np.zeros(len(t))
            has = hi > lo
            if has.any():
                out[has] = np.maximum.reduceat(fit.prob[m], lo[has])
            cached.append(out)
        fit._child_max = cached
    return cached


def prob_bound(fit: Fitted, st: State) -> np.ndarray:
    """(B,) an upper bound on every next-token probability of each document: a token is
    either listed under its longest context (at most that context's largest listed
    probability) or backed off (at most gamma times the bound one order down)."""
    tops = _child_max(fit)
    M = np.full(st.size, fit.prob[0].max())
    for m in range(1, fit.order):
        c = st.ctx[m - 1]
        ok = c >= 0
        cc = np.where(ok, c, 0)
        M = np.where(ok, np.maximum(tops[m - 1][cc], fit.gamma[m - 1][cc] * M), M)
    return M


def _draw_step(fit: Fitted, st: State, rng, mode: str, temperature: float, top_k, top_p,
               no_eos: np.ndarray | None, watermark=None, recent=None) -> np.ndarray:
    """One next token per document, with ``</s>`` excluded for the rows in ``no_eos`` and
    green tokens favoured by ``watermark`` given each row's ``recent`` tokens (B, h).

    mode "plain" (temperature 1) and "tempered" (Kneser-Ney, temperature in (0, 1), no
    top-k / top-p) draw by rejection from the exact mixture sampler; "full" builds the
    (rows, V) distributions."""
    def bias_of(rows) -> np.ndarray | None:
        if watermark is None:
            return None
        return np.where(watermark.green_mask(recent[rows], fit.vocab_size),
                        np.exp(watermark.delta), 1.0)

    if mode == "full":
        return full_draw(fit, st, rng, temperature, top_k, top_p, no_eos, bias_of(slice(None)))
    tok = mixture_draw(fit, st, rng)
    if mode == "plain" and no_eos is None and watermark is None:
        return tok
    # The target is p(w)^(1/T) exp(delta green(w) / T) [w != </s>] (the watermark boosts the
    # logits before the temperature, as logits processors do). Divided by the proposal p(w),
    # it is at most M^(1/T - 1) exp(delta / T) with M >= max p: accepting w with probability
    # (p(w) / M)^(1/T - 1) exp(-delta (1 - green(w)) / T), never an early </s>, draws exactly
    # from it. Rows rejected MAX_REJECTIONS times fall back to the full distributions.
    inv = 1.0 / temperature
    bound = prob_bound(fit, st) if mode == "tempered" else None

    def rejected(rows: np.ndarray) -> np.ndarray:
        bad = np.zeros(rows.size, bool) if no_eos is None else (tok[rows] == EOS) & no_eos[rows]
        if mode == "plain":
            if watermark is not None:
                red = ~watermark.green(recent[rows], tok[rows])
                bad |= red & (rng.random(rows.size) >= np.exp(-watermark.delta))
            return rows[bad]
        accept = (token_prob(fit, st.take(rows), tok[rows]) / bound[rows]) ** (inv - 1.0)
        if watermark is not None:
            red = ~watermark.green(recent[rows], tok[rows])
            accept = accept * np.where(red, np.exp(-watermark.delta * inv), 1.0)
        bad |= rng.random(rows.size) >= accept
        return rows[bad]

    again = rejected(np.arange(tok.size))
    for _ in range(MAX_REJECTIONS):
        if again.size == 0:
            return tok
        tok[again] = mixture_draw(fit, st.take(again), rng)
        again = rejected(again)
    if again.size:
        tok[again] = full_draw(fit, st.take(again), rng, temperature, None, None,
                               None if no_eos is None else no_eos[again], bias_of(again))
    return tok


def generate(fit: Fitted, n_docs: int, max_len, rng, temperature: float = 1.0,
             top_k=None, top_p=None, prompts=None, min_len=None,
             watermark=None) -> list[np.ndarray]:
    """Documents (prompt + new tokens, without ``</s>``), all advancing together.

    ``max_len``: an int or (n_docs,) ints, the most new tokens per document. ``min_len``:
    None or (n_docs,) ints, new tokens before which ``</s>`` is not drawn (the draw is
    conditioned on continuing), so ``min_len == max_len`` gives documents of exact lengths.
    ``watermark``: a green-list bias (Kirchenbauer et al. 2023) with ``delta``,
    ``context_width`` h, ``green(context (B, h), tokens (B,))`` and ``green_mask(context,
    V)``; the context of a token is the h tokens before it, ``<s>``-padded.
    """
    st = initial_state(fit, n_docs, prompts)
    if top_k is None and top_p is None and temperature == 1:
        mode = "plain"
    elif (top_k is None and top_p is None and 0 < temperature < 1
          and fit.smoothing == "kneser_ney"):
        mode = "tempered"
    else:
        mode = "full"
    limit = np.broadcast_to(np.asarray(max_len, np.int64), (n_docs,))
    floor = None if min_len is None else np.broadcast_to(np.asarray(min_len, np.int64), (n_docs,))
    active = np.arange(n_docs)
    recent = None
    if watermark is not None:
        recent = np.full((n_docs, watermark.context_width), BOS, np.int64)
        for i, p in enumerate(prompts or []):
            tail = np.asarray(p, np.int64)[-watermark.context_width:]
            if tail.size:
                recent[i, -tail.size:] = tail
    docs, toks = [], []
    cut = int(limit.min(initial=0))  # the next step at which some document reaches its limit
    for step in range(int(limit.max(initial=0))):
        if step >= cut:
            go = limit[active] > step
            active, st = active[go], st.take(go)
            recent = None if recent is None else recent[go]
            cut = int(limit[active].min(initial=step + 1))
        if active.size == 0:
            break
        no_eos = None
        if floor is not None:
            no_eos = floor[active] > step
            no_eos = no_eos if no_eos.any() else None
        tok = _draw_step(fit, st, rng, mode, temperature, top_k, top_p, no_eos, watermark, recent)
        go = tok != EOS
        if not go.all():
            active, tok, st = active[go], tok[go], st.take(go)
            recent = None if recent is None else recent[go]
        if recent is not None and recent.shape[1]:  # context width 0: one fixed green list
            recent = np.concatenate([recent[:, 1:], tok[:, None]], axis=1)
        docs.append(active)
        toks.append(tok)
        st = advance(fit, st, tok)
    return _assemble(n_docs, docs, toks, prompts)


def _assemble(n_docs, docs, toks, prompts) -> list[np.ndarray]:
    if n_docs == 0:
        return []
    idx = np.concatenate(docs) if docs else np.zeros(0, np.int64)
    tok = np.concatenate(toks) if toks else np.zeros(0, np.int64)
    order = argsort_int(idx, n_docs)  # stable: each document's tokens in step order
    counts = np.bincount(idx, minlength=n_docs)
    out = np.split(tok[order], np.cumsum(counts)[:-1])
    if prompts is not None:
        out = [np.concatenate([np.asarray(p, np.int64), o]) for p, o in zip(prompts, out)]
    return out


def beam_search(fit: Fitted, n_docs: int, width: int, max_len: int,
                prompts=None) -> list[np.ndarray]:
    """The most probable document found from each prompt (or from ``<s>``)."""
    if prompts is None:  # one search: every document is the same
        doc = _beam(fit, 1, width, max_len, None)[0]
        return [doc.copy() for _ in range(n_docs)]
    per = max(1, ROWS_X_VOCAB // (fit.vocab_size * width))
    out = []
    for s in range(0, n_docs, per):
        out.extend(_beam(fit, len(prompts[s:s + per]), width, max_len, prompts[s:s + per]))
    return out


def _beam(fit: Fitted, S: int, W: int, max_len: int, prompts) -> list[np.ndarray]:
    V = fit.vocab_size
    st = initial_state(fit, S, prompts).take(np.repeat(np.arange(S), W))
    score = np.full((S, W), -np.inf)
    score[:, 0] = 0.0
    best = np.full(S, -np.inf)
    best_step = np.zeros(S, np.int64)
    best_beam = np.zeros(S, np.int64)
    alive = np.ones(S, bool)
    parents, tokens = [], []
    ar = np.arange(S)
    for t in range(max_len + 1):
        with np.errstate(divide="ignore"):
            cand = score[:, :, None] + np.log(next_probs(fit, st)).reshape(S, W, V)
        fin = cand[:, :, EOS]
        b = np.argmax(fin, axis=1)
        better = alive & (fin[ar, b] > best)
        best[better], best_step[better], best_beam[better] = fin[ar, b][better], t, b[better]
        if t == max_len:
            break
        cand[:, :, EOS] = -np.inf
        flat = cand.reshape(S, W * V)
        top = np.argpartition(-flat, W - 1, axis=1)[:, :W]
        ts = np.take_along_axis(flat, top, axis=1)
        o = np.argsort(-ts, axis=1, kind="stable")
        top, ts = np.take_along_axis(top, o, axis=1), np.take_along_axis(ts, o, axis=1)
        alive &= ts[:, 0] > best
        if not alive.any():
            break
        par, tok = top // V, top % V
        parents.append(par)
        tokens.append(tok)
        score = ts
        st = advance(fit, st.take((ar[:, None] * W + par).ravel()), tok.ravel())
    out = np.zeros((S, int(best_step.max(initial=0))), np.int64)
    b = best_beam.copy()
    for step in range(out.shape[1] - 1, -1, -1):
        on = np.flatnonzero(best_step > step)
        out[on, step] = tokens[step][on, b[on]]
        b[on] = parents[step][on, b[on]]
    docs = [out[s, :best_step[s]] for s in range(S)]
    if prompts is not None:
        docs = [np.concatenate([np.asarray(p, np.int64), d]) for p, d in zip(prompts, docs)]
    return docs
