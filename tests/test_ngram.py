"""The n-gram language model core (modelcollapse.lm): known answers, a pure-Python
Kneser-Ney reference, normalization, sampling distributions, decoding, ARPA and KenLM."""

from __future__ import annotations

import math
import tracemalloc
from collections import Counter, defaultdict

import numpy as np
import pytest
from scipy import stats

from modelcollapse.errors import UserError
from modelcollapse.lm import BOS, EOS, UNK, NGramLM, load_arpa

A, B, C = 3, 4, 5  # word ids of the hand-made corpus


def zipf_corpus(n_docs, vocab_size, seed, max_len=12, beta=1.1):
    """Documents of Zipf-distributed word ids 3..V-1, with a few <unk>."""
    rng = np.random.default_rng(seed)
    w = np.arange(1, vocab_size - 2, dtype=float) ** -beta
    w /= w.sum()
    docs = []
    for _ in range(n_docs):
        d = rng.choice(np.arange(3, vocab_size), size=rng.integers(0, max_len + 1), p=w)
        d[rng.random(d.size) < 0.03] = UNK
        docs.append(d)
    return docs


# -- a straightforward pure-Python interpolated modified Kneser-Ney ------------------------
class RefKN:
    def __init__(self, docs, V, N):
        self.V, self.N = V, N
        counts = [Counter() for _ in range(N + 1)]
        for d in docs:
            t = [BOS] + [int(x) for x in d] + [EOS]
            for j in range(1, len(t)):
                for n in range(1, N + 1):
                    if j - n + 1 >= 0:
                        counts[n][tuple(t[j - n + 1:j + 1])] += 1
        adj = [Counter() for _ in range(N + 1)]
        adj[N] = Counter(counts[N])
        for n in range(1, N):
            for g, c in counts[n].items():
                if g[0] == BOS:
                    adj[n][g] = c
            for g in counts[n + 1]:
                adj[n][g[1:]] += 1
        self.adj = adj
        self.D = {}
        for n in range(1, N + 1):
            nk = Counter(min(a, 5) for a in adj[n].values() if a > 0)
            n1, n2, n3, n4 = (nk[i] for i in (1, 2, 3, 4))
            D = None
            if n1 and n2 and n3:
                y = n1 / (n1 + 2 * n2)
                D = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
                if any(d < 0 or d > k for k, d in zip((1, 2, 3), D)):
                    D = None
            self.D[n] = D or (0.5, 1.0, 1.5)
        self.ctx = [defaultdict(lambda: [0, 0.0]) for _ in range(N + 1)]  # S, sum of D
        for n in range(1, N + 1):
            for g, a in adj[n].items():
                s = self.ctx[n][g[:-1]]
                s[0] += a
                s[1] += self.disc(n, a)

    def disc(self, n, a):
        return 0.0 if a == 0 else self.D[n][min(a, 3) - 1]

    def p(self, h, w):
        n = len(h) + 1
        lower = 1.0 / (self.V - 1) if n == 1 else self.p(h[1:], w)
        S, sumd = self.ctx[n].get(h, (0, 0.0))
        if S == 0:
            return lower
        a = self.adj[n].get(h + (w,), 0)
        return (a - self.disc(n, a)) / S + sumd / S * lower

    def logprob(self, doc):
        t = [BOS] + [int(x) if 0 <= x < self.V else UNK for x in doc] + [EOS]
        return [math.log(self.p(tuple(t[max(0, j - self.N + 1):j]), t[j]))
                for j in range(1, len(t))]


# -- known answers by hand ------------------------------------------------------------------
HAND = [np.array([A, B]), np.array([A, C]), np.array([A, B, B])]


def test_mle_by_hand():
    lm = NGramLM(2, "mle").fit(HAND, 6)
    # bigrams: <s>a 3, ab 2, ac 1, bb 1, b</s> 2, c</s> 1
    np.testing.assert_allclose(np.exp(lm.logprob([[A, B]])[0]), [1, 2 / 3, 2 / 3], rtol=1e-12)
    np.testing.assert_allclose(np.exp(lm.logprob([[A, B, B]])[0]), [1, 2 / 3, 1 / 3, 2 / 3],
                               rtol=1e-12)
    assert lm.logprob([[A, A]])[0][1] == -np.inf  # unseen bigram
    assert lm.logprob([[UNK]])[0][1] == -np.inf  # unseen context
    assert lm.perplexity([[A, A]]) == np.inf
    assert lm.perplexity([[A, B]]) == pytest.approx(math.exp(-2 * math.log(2 / 3) / 3), rel=1e-12)
    uni = NGramLM(1, "mle").fit(HAND, 6)  # a 3, b 3, c 1, </s> 3 of 10
    np.testing.assert_allclose(np.exp(uni.logprob([[C, A]])[0]), [0.1, 0.3, 0.3], rtol=1e-12)


def test_add_k_by_hand():
    lm = NGramLM(2, "add_k", k=0.5).fit(HAND, 6)  # 5 predictable ids
    np.testing.assert_allclose(np.exp(lm.logprob([[A, B]])[0]),
                               [3.5 / 5.5, 2.5 / 5.5, 2.5 / 5.5], rtol=1e-12)
    # <unk> after <s> is unseen (0.5 / 5.5); the context <unk> is unseen: uniform 1/5
    np.testing.assert_allclose(np.exp(lm.logprob([[UNK]])[0]), [0.5 / 5.5, 1 / 5], rtol=1e-12)
    # ids outside the vocabulary read as <unk>
    np.testing.assert_allclose(lm.logprob([[99]])[0], lm.logprob([[UNK]])[0])
    uni = NGramLM(1, "add_k", k=1.0).fit(HAND, 6)
    np.testing.assert_allclose(np.exp(uni.logprob([[C]])[0]), [2 / 15, 4 / 15], rtol=1e-12)


def test_uniform_perplexities():
    # each of 7 words once per document: the unigram MLE is uniform over 8 outcomes (</s> too)
    words = np.arange(3, 10)
    docs = [np.random.default_rng(i).permutation(words) for i in range(5)]
    assert NGramLM(1, "mle").fit(docs, 10).perplexity(docs) == pytest.approx(8, rel=1e-12)
    # add-k with a huge k is uniform over the V - 1 predictable ids
    assert NGramLM(3, "add_k", k=1e12).fit(docs, 10).perplexity(docs) == pytest.approx(9, rel=1e-9)
    # Kneser-Ney on a corpus that never repeats an n-gram, scored on unseen words only
    lm = NGramLM(2).fit([np.array([3, 4, 5])], 50)
    ppl_unseen = lm.perplexity([np.array([40])])
    assert math.isfinite(ppl_unseen) and ppl_unseen > 1


# -- Kneser-Ney against the reference, normalization, consistency ---------------------------
@pytest.mark.parametrize("order", [1, 2, 3, 4, 6])
def test_kneser_ney_matches_reference(order):
    V = 200
    train = zipf_corpus(500, V, seed=1)
    test = zipf_corpus(40, V, seed=2) + [np.array([V + 5, 3, 3]), np.array([], np.int64)]
    lm = NGramLM(order).fit(train, V)
    ref = RefKN(train, V, order)
    np.testing.assert_allclose(lm.discounts_, [ref.D[n] for n in range(1, order + 1)],
                               rtol=1e-12)
    ours = lm.logprob(test)
    for doc, lp in zip(test, ours):
        np.testing.assert_allclose(lp, ref.logprob(doc), rtol=0, atol=1e-10)


def test_reference_corpus_estimates_discounts():
    # the reference test above covers both estimated discounts and the fallback
    lm = NGramLM(6).fit(zipf_corpus(500, 200, seed=1), 200)
    assert lm.discount_fallback_ == [False] * 4 + [True] * 2
    d = lm.discounts_[:4]
    assert np.all(d > 0) and np.all(np.diff(d, axis=1) > 0)
    np.testing.assert_array_equal(lm.discounts_[4:], [[0.5, 1.0, 1.5]] * 2)


@pytest.mark.parametrize("order", [1, 2, 3, 5])
@pytest.mark.parametrize("smoothing", ["kneser_ney", "add_k"])
def test_distributions_sum_to_one(order, smoothing):
    V = 60
    train = zipf_corpus(200, V, seed=3)
    lm = NGramLM(order, smoothing, k=0.3).fit(train, V)
    rng = np.random.default_rng(4)
    contexts = [d[:rng.integers(0, len(d) + 1)] for d in train[:150]]
    contexts += [rng.integers(0, V + 10, rng.integers(0, 8)) for _ in range(150)]  # unseen
    contexts = [np.where((c == BOS) | (c == EOS), UNK, c) for c in contexts]
    P = lm.next_probs(contexts)
    assert P.shape == (300, V)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e-9)
    assert np.all(P[:, BOS] == 0)
    if smoothing == "kneser_ney":
        assert np.all(P[:, np.arange(V) != BOS] > 0)


@pytest.mark.parametrize("smoothing", ["kneser_ney", "add_k", "mle"])
def test_logprob_equals_next_token_distribution(smoothing):
    V = 30
    train = zipf_corpus(150, V, seed=5)
    lm = NGramLM(3, smoothing).fit(train, V)
    docs = train[:20]
    for doc, lp in zip(docs, lm.logprob(docs)):
        full = np.append(doc, EOS)
        P = lm.next_probs([doc[:j] for j in range(len(full))])
        with np.errstate(divide="ignore"):
            np.testing.assert_allclose(lp, np.log(P[np.arange(len(full)), full]), rtol=1e-12)


@pytest.mark.parametrize("discounts", [(0.0, 0.0, 0.0), (1.0, 2.0, 3.0), (0.0, 1.0, 1.5)])
def test_kneser_ney_with_discounts_at_their_bounds(discounts):
    # zero backoff weights or zero probabilities: scoring falls back to the backoff form
    V = 30
    train = zipf_corpus(150, V, seed=5)
    lm = NGramLM(3, discounts=discounts).fit(train, V)
    docs = train[:10] + zipf_corpus(10, V, seed=6)
    for doc, lp in zip(docs, lm.logprob(docs)):
        full = np.append(doc, EOS)
        P = lm.next_probs([doc[:j] for j in range(len(full))])
        with np.errstate(divide="ignore"):
            np.testing.assert_allclose(lp, np.log(P[np.arange(len(full)), full]), rtol=1e-12)


def test_large_vocabulary_and_high_order_keys_fit_int64():
    V = 100_000  # V**4 is beyond 64 bits already; rank keys are not
    rng = np.random.default_rng(6)
    docs = [rng.integers(3, V, 30) for _ in range(20)] + [np.arange(3, 20)] * 3
    lm = NGramLM(6).fit(docs, V)
    assert lm.n_ngrams_[0] == V and lm.n_ngrams_[5] > 0
    lp = lm.logprob([np.arange(3, 20)])[0]
    assert np.all(np.isfinite(lp))
    assert lp.sum() > NGramLM(2).fit(docs, V).logprob([np.arange(3, 20)])[0].sum()


# -- streaming counts ------------------------------------------------------------------------
def chunked(docs, cuts):
    """The documents as the chunks docs[cuts[i]:cuts[i + 1]], lazily."""
    return (docs[a:b] for a, b in zip(cuts, cuts[1:]))


@pytest.mark.parametrize("order", [1, 2, 3, 5])
@pytest.mark.parametrize("smoothing", ["kneser_ney", "add_k", "mle"])
def test_fit_stream_equals_fit_on_the_concatenation(order, smoothing):
    V = 50
    train = zipf_corpus(300, V, seed=11) + [np.array([], np.int64)] * 2
    test = zipf_corpus(30, V, seed=12) + [np.array([V + 4, 3])]
    whole = NGramLM(order, smoothing, k=0.5).fit(train, V)
    n = len(train)
    for cuts in ([0, n],                      # one chunk
                 list(range(n + 1)),          # one document a chunk
                 [0, 1, 2, 50, 51, 200, n],   # chunks of one document among larger ones
                 [0, 0, 10, 10, 299, n]):     # empty chunks; a chunk of empty documents
        lm = NGramLM(order, smoothing, k=0.5).fit_stream(chunked(train, cuts), V)
        assert lm.n_ngrams_ == whole.n_ngrams_
        for a, b in zip(lm.logprob(test), whole.logprob(test)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
        if smoothing == "kneser_ney":
            np.testing.assert_array_equal(lm.discounts_, whole.discounts_)
        # the same sampler (built on the first draw after fit_stream), draw for draw
        a = lm.sample(30, np.random.default_rng(5), 8)
        b = whole.sample(30, np.random.default_rng(5), 8)
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_fit_stream_memory_is_distinct_ngrams_plus_one_chunk():
    # a small vocabulary: ~3 x 10^5 tokens but few distinct trigrams
    V, n_chunks = 30, 24

    def chunk(i):
        rng = np.random.default_rng(i)
        return [rng.integers(3, V, rng.integers(0, 60)) for _ in range(400)]

    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        streamed = NGramLM(3).fit_stream((chunk(i) for i in range(n_chunks)), V)
        peak_stream = tracemalloc.get_traced_memory()[1] - start
        docs = [d for i in range(n_chunks) for d in chunk(i)]
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        whole = NGramLM(3).fit(docs, V)
        peak_fit = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert streamed.n_ngrams_ == whole.n_ngrams_
    assert streamed.perplexity(docs[:50]) == whole.perplexity(docs[:50])
    assert peak_stream < peak_fit / 4, (peak_stream, peak_fit)


def test_fit_stream_errors():
    with pytest.raises(UserError, match="no documents"):
        NGramLM(2).fit_stream([[], []], 10)
    with pytest.raises(UserError, match=r"chunks\[1\]\[0\] holds token id 12"):
        NGramLM(2).fit_stream([[np.array([3])], [np.array([4, 12])]], 10)
    with pytest.raises(UserError, match="too small for an order-4 model"):
        NGramLM(4).fit_stream([[np.array([3])], [np.array([4])]], 10)
    with pytest.raises(UserError, match="not one flat array"):
        NGramLM(2).fit_stream([np.array([3, 4])], 10)


# -- sampling ----------------------------------------------------------------------------------
def chi2_ok(counts, probs, alpha=1e-4):
    """Chi-square goodness of fit over the outcomes with positive probability."""
    n = counts.sum()
    keep = probs > 0
    assert counts[~keep].sum() == 0
    if keep.sum() == 1:
        return True
    exp = probs[keep] / probs[keep].sum() * n
    stat = ((counts[keep] - exp) ** 2 / exp).sum()
    return stat < stats.chi2.ppf(1 - alpha, keep.sum() - 1)


def first_tokens(docs):
    return np.array([d[0] if len(d) else EOS for d in docs])


@pytest.mark.parametrize("smoothing", ["kneser_ney", "add_k", "mle"])
@pytest.mark.parametrize("path", ["mixture", "full"])
def test_sampling_follows_the_model(smoothing, path):
    V = 12
    train = zipf_corpus(60, V, seed=7, max_len=6)
    lm = NGramLM(3, smoothing, k=0.5).fit(train, V)
    extra = {} if path == "mixture" else {"top_p": 1.0}  # a no-op filter: the full path
    n = 20_000
    prompt = train[0][:1] if len(train[0]) else np.array([3])
    docs = lm.sample(n, np.random.default_rng(8), max_len=2, prompts=[prompt] * n, **extra)
    firsts = np.array([d[1] if len(d) > 1 else EOS for d in docs])
    assert chi2_ok(np.bincount(firsts, minlength=V), lm.next_probs([prompt])[0])
    # second tokens after the most frequent first token
    top = np.bincount(firsts, minlength=V)[3:].argmax() + 3
    seconds = np.array([d[2] if len(d) > 2 else EOS for d in docs if len(d) > 1 and d[1] == top])
    assert chi2_ok(np.bincount(seconds, minlength=V), lm.next_probs([[prompt[0], top]])[0])


@pytest.mark.parametrize("smoothing", ["kneser_ney", "add_k", "mle"])
def test_whole_documents_follow_the_model(smoothing):
    # every document of at most 3 tokens over 3 ids: its frequency among 30,000 samples
    # against its probability (with </s>, or without when cut at max_len)
    V, L = 6, 3
    train = [np.array(d) for d in ([3, 4], [4, 3, 3], [5], [3, 3, 4, 5], [0, 4], [4, 4])]
    lm = NGramLM(3, smoothing, k=0.5).fit(train, V)
    outcomes = [()] + [tuple(c) for n in range(1, L + 1)
                       for c in np.array([0, 3, 4, 5])[np.array(list(np.ndindex(*(4,) * n)))]]
    lp = lm.logprob([np.array(o, np.int64) for o in outcomes])
    probs = np.array([np.exp(x.sum() if len(o) < L else x[:-1].sum())
                      for o, x in zip(outcomes, lp)])
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)
    where = {o: i for i, o in enumerate(outcomes)}
    for extra in ({}, {"top_k": V}):  # the mixture sampler, then the full distributions
        docs = lm.sample(30_000, np.random.default_rng(27), L, **extra)
        counts = np.bincount([where[tuple(d.tolist())] for d in docs], minlength=len(outcomes))
        assert chi2_ok(counts, probs), extra


def test_temperature_top_k_top_p_distributions():
    V = 12
    lm = NGramLM(2).fit(zipf_corpus(60, V, seed=9, max_len=6), V)
    p = lm.next_probs([[]])[0]
    n = 20_000
    for kw, q in [
        ({"temperature": 0.5}, p ** 2),
        ({"top_k": 3}, np.where(p >= np.sort(p)[-3], p, 0)),
        ({"top_p": 0.6}, None),
    ]:
        if q is None:  # the nucleus by hand
            o = np.argsort(-p, kind="stable")
            keep = o[:np.searchsorted(np.cumsum(p[o]), 0.6) + 1]
            q = np.zeros(V)
            q[keep] = p[keep]
        docs = lm.sample(n, np.random.default_rng(10), max_len=1, **kw)
        assert chi2_ok(np.bincount(first_tokens(docs), minlength=V), q / q.sum()), kw


def test_sampling_with_prompts_of_mixed_lengths():
    # add-k uses the longest available context only; prompts of 0, 1 and 3 tokens put the
    # documents of one batch at different context lengths
    V = 10
    train = zipf_corpus(80, V, seed=20, max_len=6)
    for smoothing in ("add_k", "kneser_ney"):
        lm = NGramLM(4, smoothing, k=0.7).fit(train, V)
        groups = [np.array([], np.int64), np.array([3]), np.array([3, 4, 3])]
        n = 8000
        prompts = [g for g in groups for _ in range(n)]
        docs = lm.sample(3 * n, np.random.default_rng(21), max_len=1, prompts=prompts)
        for i, g in enumerate(groups):
            nxt = np.array([d[len(g)] if len(d) > len(g) else EOS for d in docs[i * n:(i + 1) * n]])
            assert chi2_ok(np.bincount(nxt, minlength=V), lm.next_probs([g])[0]), (smoothing, i)


def brute_filter(p, k=None, top_p=None):
    """The k / nucleus filter by hand: order by (-p, id)."""
    order = sorted(range(len(p)), key=lambda i: (-p[i], i))
    if k is not None:
        keep = order[:k]
    else:
        total, keep = 0.0, []
        for i in order:
            keep.append(i)
            total += p[i]
            if total >= top_p * sum(p):
                break
    out = np.zeros(len(p))
    out[keep] = p[keep]
    return out


def test_top_k_top_p_filters_break_ties_toward_lower_ids():
    from modelcollapse.lm.decode import top_k_filter, top_p_filter

    rng = np.random.default_rng(22)
    # few distinct values (rows sorted whole) and spread values with a few ties (binned)
    flat = rng.choice([0.0, 1.0, 2.0, 3.0, 5.0], size=(40, 300)).astype(float)
    flat[0] = 1.0  # all tied
    spread = rng.random((40, 300)) ** 12
    spread[:, 10:20] = spread[:, :1]
    spread[:, 20:25] = 0.0
    for P in (flat, spread):
        for k in (1, 2, 7, 64, 299, 300):
            got = top_k_filter(P, k)
            for r in range(len(P)):
                np.testing.assert_array_equal(got[r], brute_filter(P[r], k=k))
        for q in (0.05, 0.3, 0.9, 0.999):
            got = top_p_filter(P, q)
            for r in range(len(P)):
                np.testing.assert_array_equal(got[r], brute_filter(P[r], top_p=q))


def test_full_distribution_path_does_not_depend_on_chunking(monkeypatch):
    from modelcollapse.lm import decode

    lm = NGramLM(3).fit(zipf_corpus(100, 50, seed=23), 50)
    kw = dict(temperature=0.8, top_p=0.95)
    whole = lm.sample(40, np.random.default_rng(24), 20, **kw)
    monkeypatch.setattr(decode, "ROWS_X_VOCAB", 50 * 3)  # 3 documents at a time
    chunked = lm.sample(40, np.random.default_rng(24), 20, **kw)
    assert all(np.array_equal(a, b) for a, b in zip(whole, chunked))


@pytest.mark.parametrize("order", [1, 2, 4, 6])
@pytest.mark.parametrize("smoothing", ["kneser_ney", "add_k", "mle"])
def test_every_order_samples_and_decodes(order, smoothing):
    V = 25
    train = zipf_corpus(120, V, seed=25)
    lm = NGramLM(order, smoothing).fit(train, V)
    rng = np.random.default_rng(26)
    for docs in (lm.sample(30, rng, 25), lm.sample(30, rng, 25, temperature=1.3, top_k=5),
                 lm.greedy(3, 10), lm.beam(2, 3, 8)):
        assert all(d.dtype == np.int64 and len(d) <= 25 for d in docs)
        assert all(np.all((d >= 0) & (d < V) & (d != BOS) & (d != EOS)) for d in docs)
        # every sampled document is possible under the model (MLE included)
        assert all(np.all(np.isfinite(lp)) for lp in lm.logprob(docs))
    g = lm.greedy(3, 10)
    assert np.array_equal(g[0], g[1]) and np.array_equal(g[1], g[2])


def test_sampling_is_reproducible():
    lm = NGramLM(3).fit(zipf_corpus(100, 30, seed=11), 30)
    for kw in [{}, {"temperature": 0.7, "top_p": 0.9}]:
        a = lm.sample(50, np.random.default_rng(12), 40, **kw)
        b = lm.sample(50, np.random.default_rng(12), 40, **kw)
        c = lm.sample(50, np.random.default_rng(13), 40, **kw)
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
        assert not all(np.array_equal(x, y) for x, y in zip(a, c))
        assert all(len(x) <= 40 and not np.isin(x, [BOS, EOS]).any() for x in a)


def test_greedy_equals_temperature_to_zero_and_top_k_1():
    V = 40
    train = zipf_corpus(200, V, seed=14)
    lm = NGramLM(3).fit(train, V)
    prompts = [d[:2] for d in train[:30]]
    greedy = lm.greedy(30, 15, prompts=prompts)
    # greedy takes the argmax at every step, which is unique along these paths
    for doc, prompt in zip(greedy, prompts):
        ctxs = [doc[:j] for j in range(len(prompt), len(doc) + 1)]
        P = np.sort(lm.next_probs(ctxs), axis=1)
        assert np.all(P[:, -1] > P[:, -2] * (1 + 1e-9))
    cold = lm.sample(30, np.random.default_rng(15), 15, temperature=1e-3, prompts=prompts)
    top1 = lm.sample(30, np.random.default_rng(16), 15, top_k=1, prompts=prompts)
    zero = lm.sample(30, np.random.default_rng(17), 15, temperature=0.0, prompts=prompts)
    for g, a, b, z in zip(greedy, cold, top1, zero):
        assert np.array_equal(g, a) and np.array_equal(g, b) and np.array_equal(g, z)
    assert all(np.array_equal(d[:len(p)], p) for d, p in zip(greedy, prompts))


def test_beam_search_is_exact_when_wide_enough():
    V = 6  # <unk>, <s>, </s> and 3 words
    train = [np.array([3, 4, 5, 4]), np.array([3, 3]), np.array([5, 4, 4, 3]), np.array([4])]
    lm = NGramLM(2).fit(train, V)
    L = 4
    cands = [np.array(c, np.int64) for n in range(L + 1)
             for c in np.ndindex(*(4,) * n)]  # tokens 0, 3, 4, 5 coded 0..3
    cands = [np.array([0, 3, 4, 5])[c] for c in cands]
    scores = np.array([s.sum() for s in lm.logprob(cands)])
    best = lm.beam(1, beam_width=4 ** L, max_len=L)[0]
    assert lm.logprob([best])[0].sum() == pytest.approx(scores.max(), abs=1e-12)
    narrow = lm.beam(2, beam_width=1, max_len=L)
    assert np.array_equal(narrow[0], narrow[1])
    assert lm.logprob([narrow[0]])[0].sum() <= scores.max() + 1e-12
    prompted = lm.beam(2, 3, 5, prompts=[[3], [5, 4]])
    assert np.array_equal(prompted[0][:1], [3]) and np.array_equal(prompted[1][:2], [5, 4])


# -- ARPA and KenLM ------------------------------------------------------------------------------
def arpa_setup(tmp_path, order=3):
    V = 80
    train, test = zipf_corpus(400, V, seed=18), zipf_corpus(60, V, seed=19)
    test.append(np.array([V + 3, 3, 4]))  # an id outside the vocabulary
    lm = NGramLM(order).fit(train, V)
    words = ["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(3, V)]
    path = lm.to_arpa(tmp_path / "model.arpa", words)
    return lm, words, path, test


@pytest.mark.parametrize("order", [1, 3, 5])
def test_arpa_round_trip(tmp_path, order):
    lm, words, path, test = arpa_setup(tmp_path, order)
    back = load_arpa(path, words)
    for a, b in zip(lm.logprob(test), back.logprob(test)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-8)
    assert back.perplexity(test) == pytest.approx(lm.perplexity(test), rel=1e-9)
    header = path.read_text().split("\n\n")[0]
    assert f"ngram {order}={lm.n_ngrams_[-1]}" in header


@pytest.mark.parametrize("order", [2, 3, 5])  # KenLM loads order >= 2 only
def test_kenlm_agrees(tmp_path, order):
    kenlm = pytest.importorskip("kenlm")
    lm, words, path, test = arpa_setup(tmp_path, order)
    model = kenlm.Model(str(path))
    total, n = 0.0, 0
    for doc, lp in zip(test, lm.logprob(test)):
        text = " ".join(words[i] if 0 <= i < len(words) else "oov" for i in doc)
        ken = np.array([s[0] for s in model.full_scores(text, bos=True, eos=True)])
        np.testing.assert_allclose(ken * math.log(10), lp, rtol=0, atol=1e-5)
        total += model.score(text, bos=True, eos=True)
        n += len(doc) + 1
    assert 10 ** (-total / n) == pytest.approx(lm.perplexity(test), rel=1e-4)


def test_arpa_vocabulary_errors(tmp_path):
    lm = NGramLM(2).fit(HAND, 6)
    with pytest.raises(UserError, match="same token 'a'"):
        lm.to_arpa(tmp_path / "x.arpa", ["u", "s", "e", "a", "b", "a"])
    with pytest.raises(UserError, match="without whitespace"):
        lm.to_arpa(tmp_path / "x.arpa", ["u", "s", "e", "a", "b c", "d"])
    with pytest.raises(UserError, match="every id 0..5"):
        lm.to_arpa(tmp_path / "x.arpa", ["u", "s", "e"])
    path = lm.to_arpa(tmp_path / "x.arpa", lambda i: f"t{i}")
    with pytest.raises(UserError, match="token 't5' is not in id_to_token"):
        load_arpa(path, ["<unk>", "<s>", "</s>", "t3", "t4"])


# -- errors ----------------------------------------------------------------------------------------
def test_user_errors(tmp_path):
    with pytest.raises(UserError, match="too small for an order-4 model: it has no 4-grams"):
        NGramLM(4).fit([np.array([3]), np.array([], np.int64)], 10)
    with pytest.raises(UserError, match="no documents"):
        NGramLM(2).fit([], 10)
    with pytest.raises(UserError, match=r"sequences\[1\] holds token id 12"):
        NGramLM(2).fit([np.array([3]), np.array([4, 12])], 10)
    with pytest.raises(UserError, match="reserved for <s>"):
        NGramLM(2).fit([np.array([3, BOS])], 10)
    with pytest.raises(UserError, match="order must be"):
        NGramLM(7)
    with pytest.raises(UserError, match="did you mean 'kneser_ney'"):
        NGramLM(3, "kneser-ney")
    with pytest.raises(UserError, match="not fitted"):
        NGramLM(3).perplexity([np.array([3])])
    with pytest.raises(UserError, match="kneser_ney models only"):
        NGramLM(2, "add_k").fit(HAND, 6).to_arpa(tmp_path / "x.arpa", list("uxyabc"))
    lm = NGramLM(2).fit(HAND, 6)
    with pytest.raises(UserError, match="numpy.random.Generator"):
        lm.sample(2, 0, 5)
    with pytest.raises(UserError, match="prompts must hold"):
        lm.greedy(3, 5, prompts=[[3]])
    with pytest.raises(UserError, match="never seen the context"):
        NGramLM(2, "mle").fit(HAND, 6).sample(1, np.random.default_rng(0), 3, prompts=[[UNK]])
