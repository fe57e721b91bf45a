"""Curation blocks: known answers, and statistical checks whose tolerances come from the
Monte Carlo (binomial) error of the quantity checked."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from modelcollapse import theory
from modelcollapse.curation import (DETECTORS, Batch, Block, ClassifierDetector, Decision,
                                    DetectorFilter, DiversitySelection, ExactDedup,
                                    LikelihoodDetector, NearDedup, OracleDetector, TopQuality,
                                    Watermark, WatermarkDetector,
                                    calibrate, duplicate_share, filter_metrics,
                                    min_calibration_size,
                                    run_chain)
from modelcollapse.curation._text import distinct_ngrams
from modelcollapse.errors import UserError
from modelcollapse.batches import REAL, SYNTHETIC

K = 4.0   # tolerances: K standard errors (two-sided false alarm ~6e-5 per check)


def binom_tol(p, n):
    return K * math.sqrt(p * (1 - p) / n)


def random_docs(rng, n, length, lo=3, hi=1000):
    return [rng.integers(lo, hi, size=length) for _ in range(n)]


def markov_docs(rng, P, n, length, temperature=1.0):
    """n documents of ``length`` tokens from a first-order chain over words 3..V-1 with
    transition matrix P (W, W), sampled at ``temperature`` (vectorized over documents)."""
    Q = P ** (1.0 / temperature)
    cum = np.cumsum(Q / Q.sum(axis=1, keepdims=True), axis=1)
    state = rng.integers(0, P.shape[0], size=n)
    out = np.empty((n, length), np.int64)
    for t in range(length):
        state = np.minimum((cum[state] < rng.random(n)[:, None]).sum(axis=1), P.shape[0] - 1)
        out[:, t] = state
    return list(out + 3)


def chain_matrix(rng, W=40, concentration=0.3):
    return rng.dirichlet(np.full(W, concentration), size=W)


class DropOdd(Block):
    reason = "odd"

    def __call__(self, batch, rng):
        return Decision.drop(np.array([d[0] % 2 == 1 for d in batch.docs]), self.reason)


class DropFirst(Block):
    reason = "first"

    def __call__(self, batch, rng):
        drop = np.zeros(len(batch), bool)
        drop[:1] = True
        return Decision.drop(drop, self.reason)


# -- base ------------------------------------------------------------------------------------
def test_chain_counts_each_drop_under_the_first_block_that_drops_it():
    docs = [np.array([i + 3]) for i in range(6)]          # first tokens 3, 4, 5, 6, 7, 8
    batch = Batch.of(docs, SYNTHETIC)
    result = run_chain([DropOdd(), DropFirst()], batch, np.random.default_rng(0))
    keep, dropped = result.keep, result.dropped
    # DropOdd drops 3, 5, 7; DropFirst sees 4, 6, 8 and drops 4 (not the original first).
    assert keep.tolist() == [False, False, False, True, False, True]
    assert dropped == {"odd": 3, "first": 1}
    # Once nothing is left, later blocks are skipped but their reasons still count 0.
    result = run_chain([DropFirst(), DropFirst()], Batch.of(docs[:1], REAL),
                       np.random.default_rng(0))
    keep, dropped = result.keep, result.dropped
    assert not keep.any() and dropped == {"first": 1}


def test_decision_dropped_counts_per_reason():
    d = Decision(np.array([True, False, False, False]),
                 np.array(["", "a", "b", "a"], dtype=object))
    assert d.dropped() == {"a": 2, "b": 1}


def test_filter_metrics_known_answer_and_conventions():
    src = np.array([SYNTHETIC] * 4 + [REAL] * 6, np.int8)
    batch = Batch([np.array([3])] * 10, src, np.zeros(10, np.int32))
    flagged = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0], bool)   # 3 TP, 1 FN, 1 FP, 5 TN
    m = filter_metrics(batch, ~flagged, flagged)
    assert m["dropped_share"] == pytest.approx(0.4)
    assert m["detector_precision"] == pytest.approx(3 / 4)
    assert m["detector_recall"] == pytest.approx(3 / 4)
    assert m["detector_fpr"] == pytest.approx(1 / 6)
    assert m["kept_synthetic_share"] == pytest.approx(1 / 6)
    # Nothing flagged: precision 1, recall 0. Only real documents: recall 1. No real: fpr 0.
    none = filter_metrics(batch, np.ones(10, bool), np.zeros(10, bool))
    assert none["detector_precision"] == 1.0 and none["detector_recall"] == 0.0
    real_only = Batch.of([np.array([3])] * 3, REAL)
    assert filter_metrics(real_only, np.ones(3, bool), np.zeros(3, bool))["detector_recall"] == 1.0
    syn_only = Batch.of([np.array([3])] * 3, SYNTHETIC)
    assert filter_metrics(syn_only, np.ones(3, bool), np.ones(3, bool))["detector_fpr"] == 0.0
    empty = filter_metrics(Batch.of([], REAL), np.zeros(0, bool), np.zeros(0, bool))
    assert all(np.isfinite(v) for v in empty.values())
    # Restricted to what the detector saw: the unseen synthetic document is not a miss.
    screened = np.ones(10, bool)
    screened[3] = False
    assert filter_metrics(batch, ~flagged, flagged, screened)["detector_recall"] == 1.0


def test_batch_checks_its_provenance():
    with pytest.raises(UserError, match="one source and one generation per document"):
        Batch([np.array([3])], np.zeros(2, np.int8), np.zeros(1, np.int32))
    with pytest.raises(UserError, match="REAL"):
        Batch([np.array([3])], np.array([5]), np.zeros(1, np.int32))


# -- watermark -------------------------------------------------------------------------------
def test_watermark_z_known_answers():
    wm = Watermark(gamma=0.5)
    assert float(wm.z_score(16, 16)) == pytest.approx(4.0)
    assert float(wm.z_score(8, 16)) == pytest.approx(0.0)
    T, green, z = wm.score([np.zeros(0, np.int64)])
    assert T[0] == 0 and green[0] == 0 and z[0] == 0.0      # an empty document: no evidence
    assert Watermark.p_value(4.0) == pytest.approx(norm.sf(4.0))
    # A document built only of green tokens after its context scores z = sqrt(T) at gamma 0.5.
    wm1 = Watermark(gamma=0.5, context_width=1)
    doc, prev = [], 1
    for _ in range(16):
        tok = int(np.flatnonzero(wm1.green_mask(np.array([[prev]]), 500)[0, 3:])[0] + 3)
        doc.append(tok)
        prev = tok
    T, green, z = wm1.score([np.array(doc)])
    assert (T[0], green[0]) == (16, 16) and z[0] == pytest.approx(4.0)


def test_watermark_scores_with_the_generation_context_rule():
    wm = Watermark(gamma=0.3, context_width=2, key=7)
    doc = np.array([5, 9, 11, 5, 9, 40])
    ctx = np.array([[1, 1], [1, 5], [5, 9], [9, 11], [11, 5], [5, 9]])   # BOS-padded
    T, green, _ = wm.score([doc])
    assert T[0] == 6 and green[0] == wm.green(ctx, doc).sum()
    # green_mask agrees with green token by token.
    mask = wm.green_mask(ctx, 64)
    assert (mask[np.arange(6), doc] == wm.green(ctx, doc)).all()
    assert (mask == wm.green(ctx, np.tile(np.arange(64), (6, 1)))).all()
    # ignore_repeated: only the document's distinct (context, token) pairs count.
    rep = np.array([7, 7, 7, 7, 7, 7])   # contexts (1,1),(1,7),(7,7),(7,7),(7,7),(7,7)
    assert wm.score([rep], ignore_repeated=True)[0][0] == 3
    assert wm.score([rep])[0][0] == 6


def test_green_share_is_gamma_over_many_pairs():
    rng = np.random.default_rng(1)
    n = 200_000
    for gamma in (0.1, 0.25, 0.5):
        wm = Watermark(gamma=gamma, context_width=1)
        share = wm.green(rng.integers(0, 50_000, (n, 1)), rng.integers(0, 50_000, n)).mean()
        assert abs(share - gamma) < binom_tol(gamma, n)
    # Another key gives an independent green list: agreement gamma^2 + (1 - gamma)^2.
    ctx, tok = rng.integers(0, 50_000, (n, 1)), rng.integers(0, 50_000, n)
    a = Watermark(gamma=0.25, key=1).green(ctx, tok)
    b = Watermark(gamma=0.25, key=2).green(ctx, tok)
    agree = 0.25 ** 2 + 0.75 ** 2
    assert abs((a == b).mean() - agree) < binom_tol(agree, n)


def test_watermark_null_z_is_standard_normal():
    rng = np.random.default_rng(2)
    n_docs = 4000
    _, _, z = Watermark(gamma=0.25, context_width=2).score(random_docs(rng, n_docs, 100, hi=5000))
    assert abs(z.mean()) < K / math.sqrt(n_docs)
    # sd of the sample variance of n normals: sqrt(2 / (n - 1)) (plus little skew here).
    assert abs(z.var(ddof=1) - 1) < K * math.sqrt(2 / (n_docs - 1)) * 1.2


def test_watermarked_sampling_is_detected_and_matches_the_biased_green_share():
    rng = np.random.default_rng(3)
    wm = Watermark(gamma=0.25, delta=2.0, context_width=1)
    V, n_docs, length = 200, 400, 50
    probs = np.zeros((n_docs, V))
    probs[:, 3:] = 1.0 / (V - 3)                   # a uniform "model" over the words
    prev = np.ones((n_docs, 1), np.int64)          # BOS
    out = np.empty((n_docs, length), np.int64)
    for t in range(length):
        P = wm.reweight(probs, prev)
        assert np.allclose(P.sum(axis=1), 1)
        tok = (P.cumsum(axis=1) < rng.random(n_docs)[:, None]).sum(axis=1)
        out[:, t] = tok
        prev = tok[:, None]
    T, green, z = wm.score(list(out))
    # Expected green share: gamma e^delta / (gamma e^delta + 1 - gamma), up to the green-list
    # size varying around gamma V per context (a small extra spread, well inside 4 se).
    e = 0.25 * math.exp(2) / (0.25 * math.exp(2) + 0.75)
    assert abs(green.sum() / T.sum() - e) < 1.5 * binom_tol(e, T.sum())
    det = WatermarkDetector(wm, z_threshold=4.0)
    assert det.flag(list(out)).mean() > 0.95
    batch = Batch(list(out) + random_docs(rng, 400, 50, hi=V), np.r_[np.ones(400), np.zeros(400)],
                  np.zeros(800))
    decision = det(batch, rng)
    assert set(decision.dropped()) == {"watermark"}
    assert decision.flagged[400:].mean() < 0.01      # expected_fpr ~ 3e-5
    assert det.expected_fpr == pytest.approx(norm.sf(4.0))


def test_watermark_validates_its_parameters():
    with pytest.raises(UserError, match=r"watermark gamma must be in \(0, 1\); got 1.5"):
        Watermark(gamma=1.5)
    with pytest.raises(UserError, match="delta"):
        Watermark(delta=-1)
    with pytest.raises(UserError, match="context_width"):
        Watermark(context_width=-1)
    with pytest.raises(UserError, match=r"shape \(B, 1\)"):
        Watermark().green(np.ones((3, 2), np.int64), np.ones(3, np.int64))
    assert Watermark(gamma=0.3).as_record()["gamma"] == 0.3


# -- detectors -------------------------------------------------------------------------------
def test_likelihood_detector_fpr_is_calibrated_and_low_temperature_text_is_flagged():
    rng = np.random.default_rng(4)
    P = chain_matrix(rng)
    V = P.shape[0] + 3
    ref, cal, test = (markov_docs(rng, P, n, 30) for n in (2000, 2000, 4000))
    alpha = 0.05
    det = LikelihoodDetector(order=2, target_fpr=alpha).fit(ref, cal, V)
    assert det.calibration_fpr_ == pytest.approx(alpha, abs=1 / len(cal))
    # The realized FPR varies with the calibration sample and the test sample:
    # var ~ alpha (1 - alpha) (1/n_cal + 1/n_test).
    fpr = det.flag(test).mean()
    assert abs(fpr - alpha) < K * math.sqrt(alpha * (1 - alpha) * (1 / 2000 + 1 / 4000))
    # Text sampled at temperature 0.5 is too typical: low log-perplexity, flagged on "low".
    cold = markov_docs(rng, P, 500, 30, temperature=0.5)
    assert det.flag(cold).mean() > 0.9
    assert det.scores(cold).mean() < det.scores(test).mean()
    # The ratio to a model of generated text separates them too.
    ratio = LikelihoodDetector(order=2, target_fpr=alpha, statistic="ratio").fit(
        ref, cal, V, contrast_docs=markov_docs(rng, P, 2000, 30, temperature=0.5))
    assert ratio.flag(cold).mean() > 0.9


def test_calibration_quantile_known_answer():
    scores = np.random.default_rng(0).permutation(np.arange(1.0, 101.0))   # 1..100
    # k = floor(0.05 * 100) = 5 per one-sided rule, floor(2.5) = 2 per side two-sided.
    def flagged(side):
        return np.sort(scores[calibrate(scores, 0.05, side).flag(scores)]).tolist()

    assert flagged("high") == [96, 97, 98, 99, 100]
    assert flagged("low") == [1, 2, 3, 4, 5]
    assert flagged("two-sided") == [1, 2, 99, 100]
    # Ties at the threshold are not flagged: never more than k.
    tied = np.r_[np.zeros(90), np.ones(10)]
    assert calibrate(tied, 0.05, "high").flag(tied).sum() == 0


def test_calibration_refuses_too_few_documents_with_the_number_needed():
    rng = np.random.default_rng(5)
    P = chain_matrix(rng)
    docs = markov_docs(rng, P, 200, 20)
    assert min_calibration_size(0.01) == 100 and min_calibration_size(0.01, "two-sided") == 200
    with pytest.raises(UserError, match="at least 100 human calibration documents"):
        LikelihoodDetector(target_fpr=0.01).fit(docs, docs[:99], P.shape[0] + 3)
    LikelihoodDetector(target_fpr=0.01).fit(docs, docs[:100], P.shape[0] + 3)
    with pytest.raises(UserError, match="target_fpr must be a number in"):
        LikelihoodDetector(target_fpr=0.0)
    with pytest.raises(UserError, match="contrast_docs"):
        LikelihoodDetector(statistic="ratio").fit(docs, docs, P.shape[0] + 3)
    with pytest.raises(UserError, match="did you mean"):
        LikelihoodDetector(side="lo")


def test_classifier_detector_separates_collapsed_text_at_the_calibrated_fpr():
    rng = np.random.default_rng(6)
    # Human text uses words 3..202; the "collapsed" generator lost the upper half (the tail).
    human = random_docs(rng, 1500, 40, hi=203)
    generated = random_docs(rng, 500, 40, hi=103)
    alpha = 0.02
    det = ClassifierDetector(target_fpr=alpha, n_features=2 ** 12).fit(
        human[:500], generated[:250], human[500:1000])
    assert det.flag(generated[250:]).mean() >= 0.99
    fpr = det.flag(human[1000:]).mean()
    assert abs(fpr - alpha) < K * math.sqrt(alpha * (1 - alpha) * (1 / 500 + 1 / 500))
    assert ((det.proba(generated[250:]) > 0) & (det.proba(generated[250:]) < 1 + 1e-12)).all()
    with pytest.raises(UserError, match="not fitted"):
        ClassifierDetector().scores(human)
    with pytest.raises(UserError, match="ngram_range"):
        ClassifierDetector(ngram_range=(2, 1))


def test_oracle_detector_has_its_set_recall_and_fpr():
    rng = np.random.default_rng(7)
    n_syn, n_real = 20_000, 20_000
    batch = Batch([np.array([3])] * (n_syn + n_real), np.r_[np.ones(n_syn), np.zeros(n_real)],
                  np.zeros(n_syn + n_real))
    result = run_chain([DetectorFilter(OracleDetector(recall=0.9, fpr=0.05))], batch, rng)
    assert set(result.dropped) == {"detector"}
    m = filter_metrics(batch, result.keep, result.flagged, result.screened)
    assert abs(m["detector_recall"] - 0.9) < binom_tol(0.9, n_syn)
    assert abs(m["detector_fpr"] - 0.05) < binom_tol(0.05, n_real)
    precision = 0.9 * n_syn / (0.9 * n_syn + 0.05 * n_real)
    n_flagged = 0.9 * n_syn + 0.05 * n_real
    assert abs(m["detector_precision"] - precision) < binom_tol(precision, n_flagged)
    assert m["dropped_share"] == pytest.approx(result.flagged.mean())
    with pytest.raises(UserError, match="oracle detector recall"):
        OracleDetector(recall=1.5)
    assert set(DETECTORS) == {"watermark", "likelihood", "classifier", "oracle", "zeroshot"}


# -- dedup -----------------------------------------------------------------------------------
def test_exact_dedup_keeps_first_copies():
    rng = np.random.default_rng(8)
    a, b = random_docs(rng, 2, 20)
    docs = [a, b, a.astype(np.int32), a.copy(), np.zeros(0, np.int64), np.zeros(0, np.int32)]
    d = ExactDedup()(Batch.of(docs, SYNTHETIC))
    assert d.keep.tolist() == [True, True, False, False, True, False]
    assert d.dropped() == {"exact_duplicate": 3}
    assert duplicate_share(docs) == pytest.approx(3 / 6)


def test_near_dedup_catches_a_one_token_edit_and_keeps_unrelated_documents():
    rng = np.random.default_rng(9)
    docs = random_docs(rng, 50, 60)
    near = docs[10].copy()
    near[30] = 2 if near[30] != 2 else 3           # one token changed: Jaccard 55/61 ~ 0.90
    docs.append(near)
    d = NearDedup(threshold=0.8)(Batch.of(docs, SYNTHETIC))
    assert d.keep.tolist() == [True] * 50 + [False]
    assert d.scores[50] == 10                        # cluster id = index of the first member
    assert d.dropped() == {"near_duplicate": 1}
    # Editing 20 of 60 tokens leaves Jaccard well below 0.8: kept.
    far = docs[3].copy()
    far[::3] = rng.integers(1000, 2000, 20)
    assert NearDedup(threshold=0.8).groups([docs[3], far]).tolist() == [0, 1]
    assert duplicate_share(docs, NearDedup()) == pytest.approx(1 / 51)


def test_near_dedup_signatures_match_datasketch():
    datasketch = pytest.importorskip("datasketch")
    from modelcollapse.curation._text import Flat, ngram_hashes
    rng = np.random.default_rng(10)
    docs = random_docs(rng, 3, 25) + [np.array([5, 6])]
    nd = NearDedup(num_perm=64, shingle=3, seed=4)
    sig = nd.signatures(docs)
    h, doc = ngram_hashes(Flat(docs), 3, key=4)
    for i in range(len(docs)):
        m = datasketch.MinHash(num_perm=64, seed=4, scheme="affine64", hashfunc=lambda x: x)
        m.update_batch([int(x) for x in h[doc == i]])
        assert (m.hashvalues == sig[i]).all()
    with pytest.raises(UserError, match=r"near-dedup threshold must be in \(0, 1\]"):
        NearDedup(threshold=0)


def test_near_dedup_without_datasketch_says_how_to_install(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "datasketch", None)     # import now raises ImportError
    with pytest.raises(UserError, match="pip install .datasketch>=2."):
        NearDedup().groups([np.array([3, 4, 5])])
    assert ExactDedup().groups([np.array([3]), np.array([3])]).tolist() == [0, 0]


def test_blocks_record_their_parameters():
    assert NearDedup(0.7).as_record() == {"block": "NearDedup", "threshold": 0.7,
                                          "num_perm": 128, "shingle": 3, "seed": 1}
    rec = DetectorFilter(WatermarkDetector(Watermark(gamma=0.5))).as_record()
    assert rec["reason"] == "detector" and rec["detector"]["gamma"] == 0.5


# -- selection -------------------------------------------------------------------------------
def test_top_quality_keeps_the_top_share_with_ties_by_index():
    docs = [np.array([3 + i]) for i in range(6)]
    scores = np.array([0.5, 2.0, 1.0, 2.0, 1.0, -1.0])
    d = TopQuality(q=0.5, scorer=lambda docs: scores)(Batch.of(docs, SYNTHETIC))
    assert d.keep.tolist() == [False, True, True, True, False, False]
    assert d.dropped() == {"low_quality": 3}
    # With a reference model: documents off the reference distribution are dropped.
    rng = np.random.default_rng(11)
    P = chain_matrix(rng)
    V = P.shape[0] + 3
    good = markov_docs(rng, P, 50, 30)
    junk = random_docs(rng, 50, 30, hi=V)
    sel = TopQuality(q=0.5, order=2).fit(markov_docs(rng, P, 1000, 30), V)
    keep = sel(Batch.of(good + junk, SYNTHETIC)).keep
    assert keep[:50].all() and not keep[50:].any()
    with pytest.raises(UserError, match=r"q must be a share in \(0, 1\]"):
        TopQuality(q=0)


def collapsed_batch(rng, n_modes=5, copies=48, n_tail=60, length=40):
    """A collapsed sample: many near-copies of a few mode documents plus a few tail ones."""
    modes = random_docs(rng, n_modes, length, hi=300)
    docs = []
    for m in modes:
        for _ in range(copies):
            c = m.copy()
            c[rng.integers(0, length, 2)] = rng.integers(3, 300, 2)
            docs.append(c)
    docs += random_docs(rng, n_tail, length, hi=300)
    order = rng.permutation(len(docs))
    return [docs[i] for i in order]


def test_diversity_selection_keeps_more_distinct_ngrams_than_uniform_selection():
    rng = np.random.default_rng(12)
    docs = collapsed_batch(rng)
    batch = Batch.of(docs, SYNTHETIC)
    n = len(docs)
    k = n // 2
    uniform = [distinct_ngrams([docs[i] for i in rng.choice(n, k, replace=False)], 2)
               for _ in range(200)]
    sel = DiversitySelection(q=0.5, n=2)
    diverse = []
    for _ in range(20):
        d = sel(batch, rng)
        assert d.keep.sum() == k and d.dropped() == {"low_diversity": n - k}
        diverse.append(distinct_ngrams([docs[i] for i in np.flatnonzero(d.keep)], 2))
    se = math.sqrt(np.var(uniform, ddof=1) / len(uniform) + np.var(diverse, ddof=1) / len(diverse))
    assert np.mean(diverse) - np.mean(uniform) > K * se
    # alpha = 0 is a uniform draw: no gain beyond the Monte Carlo error.
    flat = [distinct_ngrams([docs[i] for i in np.flatnonzero(
        DiversitySelection(q=0.5, alpha=0.0)(batch, rng).keep)], 2) for _ in range(50)]
    se0 = math.sqrt(np.var(uniform, ddof=1) / len(uniform) + np.var(flat, ddof=1) / len(flat))
    assert abs(np.mean(flat) - np.mean(uniform)) < K * se0


def test_diversity_selection_caps_each_near_duplicate_cluster():
    rng = np.random.default_rng(13)
    base = random_docs(rng, 3, 60)
    docs = [b.copy() for b in base for _ in range(5)] + random_docs(rng, 5, 60)
    batch = Batch.of(docs, SYNTHETIC)
    d = DiversitySelection(q=1.0, max_per_cluster=2)(batch, rng)
    assert d.dropped() == {"cluster_cap": 9}           # 3 clusters of 5 keep 2 each
    assert d.keep.tolist() == [True, True, False, False, False] * 3 + [True] * 5


def test_every_block_accepts_an_empty_batch():
    rng = np.random.default_rng(15)
    docs = random_docs(rng, 300, 20, hi=50)
    blocks = [ExactDedup(), NearDedup(), WatermarkDetector(Watermark()), OracleDetector(),
              LikelihoodDetector(order=2, target_fpr=0.05).fit(docs, docs, 50),
              ClassifierDetector(target_fpr=0.05, n_features=256).fit(
                  docs[:100], [d[::-1] for d in docs[:100]], docs[100:]),
              TopQuality(order=2).fit(docs, 50), DiversitySelection(max_per_cluster=1)]
    empty = Batch([], np.zeros(0), np.zeros(0), np.zeros(0, bool))
    for block in blocks:
        assert block(empty, rng).keep.shape == (0,), type(block).__name__
