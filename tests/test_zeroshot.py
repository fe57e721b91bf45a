"""Zero-shot scoring, detectors and AI-reference generation on a tiny random llama."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from modelcollapse.zeroshot import auroc, calibrate, corrected_share, criteria, token_stats  # noqa: E402
from modelcollapse.zeroshot.generate import GenerationSettings, ai_reference, rewrite  # noqa: E402
from modelcollapse.zeroshot.scoring import buckets  # noqa: E402
from tiny_lm import tiny_lm  # noqa: E402

TEXTS = [" ".join(f"w{(i * 7 + j * 3) % 40}" for j in range(5 + i % 23)) for i in range(40)]


@pytest.fixture(scope="module")
def lm():
    return tiny_lm(TEXTS)


def _per_document(model, tok, text):
    """The statistics the plain way: one forward pass, every position after the first two
    tokens (the first prediction is context only), ranks by sorting."""
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        lp = torch.log_softmax(model(input_ids=ids).logits[0, 1:-1].double(), -1)
    y = ids[0, 2:]
    p = lp.exp()
    ll = lp.gather(-1, y[:, None])[:, 0]
    mu = (p * lp).sum(-1)
    var = (p * lp ** 2).sum(-1) - mu ** 2
    order = torch.sort(lp, dim=-1, descending=True, stable=True).indices
    rank = torch.nonzero(order == y[:, None])[:, 1].double()
    return {"ll": float(ll.sum()), "mu": float(mu.sum()), "var": float(var.sum()),
            "lrank": float(torch.log1p(rank).sum()), "ll2": float((ll * ll).sum()),
            "top1": float((rank < 1).sum()), "top10": float((rank < 10).sum())}


def test_batched_equals_per_document_loop(lm):
    model, tok = lm
    stats = token_stats(model, tok, TEXTS, batch_tokens=64, precision="float32")
    for i in (0, 7, 22, 39):
        want = _per_document(model, tok, TEXTS[i])
        assert stats.n[i] == len(tok(TEXTS[i], add_special_tokens=False)["input_ids"]) - 2
        for f in ("ll", "mu", "var", "ll2"):
            assert getattr(stats, f)[i] == pytest.approx(want[f], rel=1e-4, abs=1e-4), f
        # ties of float32 log-probabilities may order differently from float64 ones
        assert stats.lrank[i] == pytest.approx(want["lrank"], rel=1e-3, abs=0.05)
        for f in ("top1", "top10"):
            assert abs(getattr(stats, f)[i] - want[f]) <= 1, f
    # the batching does not change the numbers
    other = token_stats(model, tok, TEXTS, batch_tokens=4096, precision="float32")
    np.testing.assert_allclose(stats.ll, other.ll, rtol=1e-4, atol=1e-4)
    # nor does a chunk of positions smaller than a document (the fused per-chunk sums)
    import modelcollapse.zeroshot.scoring as score
    old, score.STAT_FLOATS = score.STAT_FLOATS, 7 * len(tok)
    try:
        chunked = token_stats(model, tok, TEXTS, batch_tokens=4096, precision="float32")
    finally:
        score.STAT_FLOATS = old
    np.testing.assert_allclose(chunked.var, stats.var, rtol=1e-4, atol=1e-4)
    crit = criteria(stats)
    assert np.isfinite(crit["fast_detectgpt"]).all() and "binoculars" not in crit
    np.testing.assert_allclose(crit["log_rank"], -stats.lrank / stats.n)
    # two tokens are context only: nothing to score
    short = token_stats(model, tok, ["w1 w2", "w1 w2 w3"], precision="float32")
    assert short.n.tolist() == [0, 1] and np.isnan(short.ll[0])


def test_combination_is_a_logistic_regression_and_its_tpr_is_out_of_fold():
    """The fitted combination against closed forms: two Gaussian classes with equal
    covariance have a linear log-odds, so the fitted direction is Sigma^-1 (m1 - m0) and the
    AUROC is Phi(Delta / sqrt 2), Delta the Mahalanobis distance; features that carry no
    signal get weights near 0. The TPR that calibrate() measures on the out-of-fold AI
    scores matches 1 - Phi(z_(1-fpr) - Delta) within its Monte Carlo error."""
    from scipy.stats import norm

    from modelcollapse.zeroshot.criteria import Combination, cross_fitted_combination
    rng = np.random.default_rng(0)
    n, d = 3000, 8
    shift = np.array([1.0, 0.5, 0, 0, 0, 0, 0, 0])     # Delta = sqrt(1.25)
    human = rng.normal(size=(n, d)) * 2 + 5            # scale and center: standardized away
    ai = rng.normal(size=(n, d)) * 2 + 5 + 2 * shift
    comb = Combination.fit(human, ai)
    w = comb.weights / comb.scale
    assert w[1] / w[0] == pytest.approx(0.5, abs=0.08)
    assert np.abs(w[2:]).max() < 0.08 * w[0]
    delta = np.sqrt(1.25)
    held = rng.normal(size=(n, d)) * 2 + 5
    assert auroc(comb(held), comb(ai)) == pytest.approx(norm.cdf(delta / np.sqrt(2)), abs=0.02)
    final, h_scores, a_scores = cross_fitted_combination(human, held, ai[:1000], 0.05, rng)
    cal = calibrate("combined", h_scores, a_scores, 0.05, rng)
    expect = 1 - norm.cdf(norm.ppf(0.95) - delta)
    se = np.sqrt(expect * (1 - expect) / 1000)
    assert cal.tpr == pytest.approx(expect, abs=4 * se + 0.03)
    assert cal.fpr == pytest.approx(0.05, abs=4 * np.sqrt(0.05 * 0.95 / n))
    with pytest.raises(ValueError, match="30 documents per class"):
        Combination.fit(human[:10], ai)
    # every fold's fit needs 30 usable AI documents: 37 give 29 in a fold, 38 give 30;
    # rows with a NaN feature (documents too short to score) do not count
    assert cross_fitted_combination(human, held, ai[:37], 0.05, rng) is None
    assert cross_fitted_combination(human, held, ai[:38], 0.05, rng) is not None
    short = ai[:45].copy()
    short[:8, 3] = np.nan
    assert cross_fitted_combination(human, held, short, 0.05, rng) is None
    part = ai[:60].copy()
    part[:5, 0] = np.nan
    got = cross_fitted_combination(human, held, part, 0.05, rng)
    assert np.isnan(got[2][:5]).all() and np.isfinite(got[2][5:]).all()


def test_binoculars_with_a_performer(lm):
    model, tok = lm
    performer, _ = tiny_lm(TEXTS, seed=1)
    stats = token_stats(model, tok, TEXTS[:5], performer=performer)
    assert np.isfinite(criteria(stats)["binoculars"]).all()
    # observer = performer: the cross-entropy is the entropy, -mu
    same = token_stats(model, tok, TEXTS[:5], performer=model, precision="float32")
    np.testing.assert_allclose(same.xent, -same.mu, rtol=1e-4)
    np.testing.assert_allclose(same.perf_ll, same.ll, rtol=1e-5)


def test_bf16_and_the_full_forward_path_agree_with_float32(lm):
    from modelcollapse.zeroshot.scoring import resolve_precision, split_head
    model, tok = lm
    exact = token_stats(model, tok, TEXTS, precision="float32")
    fast = token_stats(model, tok, TEXTS, precision="bfloat16")
    # bf16 keeps 8 bits of mantissa: per-token errors of ~1e-2 that average over a document
    crit, crit_fast = criteria(exact), criteria(fast)
    for name in crit:
        np.testing.assert_allclose(crit_fast[name], crit[name], rtol=0.05, atol=0.05)
    assert np.corrcoef(crit["fast_detectgpt"], crit_fast["fast_detectgpt"])[0, 1] > 0.99
    # a model whose logits are scaled takes its own forward pass (same numbers as its head)
    assert split_head(model) is not None
    model.config.logit_scale = 2.0
    try:
        assert split_head(model) is None
        full = token_stats(model, tok, TEXTS, precision="float32")
    finally:
        del model.config.logit_scale
    np.testing.assert_allclose(full.ll, exact.ll, rtol=1e-4, atol=1e-4)
    assert resolve_precision("float32", "cpu") == "float32"
    with pytest.raises(Exception, match="scoring precision"):
        resolve_precision("int4", "cpu")


def test_buckets_bound_padded_tokens():
    lengths = np.random.default_rng(0).integers(1, 100, 500)
    got = buckets(lengths, 256)
    assert sorted(np.concatenate(got).tolist()) == list(range(500))
    assert all(len(b) * lengths[b].max() <= 256 for b in got)


def test_auroc_and_calibration_against_closed_forms():
    rng = np.random.default_rng(0)
    h, m = rng.normal(0, 1, 4000), rng.normal(1, 1, 4000)
    # AUROC of N(1,1) vs N(0,1) = Phi(1/sqrt 2) = 0.7602; Monte Carlo se ~0.005
    assert auroc(h, m) == pytest.approx(0.7602, abs=0.02)
    cal = calibrate("x", h, m, 0.05, rng)
    assert cal.fpr == pytest.approx(0.05, abs=3 * np.sqrt(0.05 * 0.95 / 4000) + 0.002)
    assert cal.tpr == pytest.approx(0.2595, abs=0.03)   # 1 - Phi(1.645 - 1)
    # a candidate at share 0.3 flagged at 0.3 TPR + 0.7 FPR
    n = 5000
    k = int(n * (0.3 * cal.tpr + 0.7 * cal.fpr))
    est, lo, hi = corrected_share(k, n, cal, rng)
    assert est == pytest.approx(0.3, abs=0.01) and lo < 0.3 < hi


def test_generation_is_per_document_and_cached(lm, tmp_path):
    model, tok = lm
    s = GenerationSettings(max_new_tokens=12, batch_size=4, seed=3)
    docs = TEXTS[:6]
    a = rewrite(model, tok, docs, s)
    b = rewrite(model, tok, docs[::-1], GenerationSettings(max_new_tokens=12, batch_size=2,
                                                          seed=3))[::-1]
    assert [m for m, _ in a] == [m for m, _ in b]
    assert {m for m, _ in a} <= {"continue", "paraphrase", "expand"}
    assert [t for _, t in a] == [t for _, t in b]   # independent of batch composition
    first = ai_reference(model, tok, docs, s, "tiny", folder=tmp_path)
    assert first == a
    calls = []
    again = ai_reference(model, tok, docs, s, "tiny", folder=tmp_path,
                         progress=lambda *x: calls.append(x))
    assert again == a and calls == []   # all from the cache


def test_zeroshot_curation_block(lm):
    from modelcollapse.curation import DETECTORS, Batch, ZeroShotDetector
    from modelcollapse.batches import REAL, SYNTHETIC
    model, tok = lm
    assert DETECTORS.get("zeroshot") is ZeroShotDetector
    vocab = tok.get_vocab()
    inv = {i: w for w, i in vocab.items()}
    det = ZeroShotDetector((model, tok), target_fpr=0.1,
                           decode=lambda ids: " ".join(inv[int(i)] for i in ids))
    docs = [np.asarray(tok(t, add_special_tokens=False)["input_ids"]) for t in TEXTS]
    det.fit(docs[:30])
    batch = Batch(docs[30:], np.array([REAL] * 5 + [SYNTHETIC] * 5), np.zeros(10))
    decision = det(batch, np.random.default_rng(0))
    scores = det.score_texts(TEXTS[30:])
    np.testing.assert_array_equal(decision.flagged, scores > det.threshold_.high)
    with pytest.raises(Exception, match="performer"):
        ZeroShotDetector((model, tok), criterion="binoculars")
