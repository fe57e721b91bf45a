"""The text collapse loop: the ngram family, its metrics, stored samples, CLI and errors."""

from __future__ import annotations

import gzip
import json
import zlib

import numpy as np
import pytest
from scipy import stats

from helpers import matrix, run_one
from modelcollapse.metrics.state import EvaluationState
from modelcollapse.cli import main
from modelcollapse.lm import EOS, NGramLM
from modelcollapse.lm import decode
from modelcollapse.loop import run_cell
from modelcollapse.families.base import Sampling
from modelcollapse.families.ngram import NGram, NGramParams, RealText
from modelcollapse.metrics import METRICS, MetricContext
from modelcollapse.metrics.text import evaluations
from modelcollapse.errors import UserError
from modelcollapse.batches import REAL, SYNTHETIC, Documents
from modelcollapse.randomness import SeedTree, Stream
from modelcollapse import textmetrics as tm

WORDS = ("the cat dog bird sat ran on under a mat tree house quickly slowly red blue green "
         "small big old new river stone cloud window garden letter music").split()


def write_corpus(path, n_docs: int = 400, seed: int = 0) -> str:
    """A made-up corpus: Zipf-distributed words, documents of 15-40 words, one per line."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(WORDS) + 1)
    p /= p.sum()
    lines = []
    for i in range(n_docs):
        words = rng.choice(WORDS, size=rng.integers(15, 41), p=p)
        lines.append(" ".join(words) + f" {i % 7} .")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


SMALL = {"eval_tokens": 500, "bleu_docs": 40}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "corpus.txt")


def small(corpus, **params):
    return {"corpus": corpus, **SMALL, **params}


# -- decoding with exact lengths ------------------------------------------------------------
def test_min_len_gives_exact_lengths_and_the_conditional_distribution():
    V = 10
    rng = np.random.default_rng(1)
    train = [rng.integers(3, V, size=rng.integers(1, 5)) for _ in range(200)]
    lm = NGramLM(2).fit(train, V)
    want = np.array([0, 1, 3, 7] * 50)
    for kw in ({}, {"top_p": 1.0}):   # mixture sampler (rejection), full distributions (mask)
        docs = decode.generate(lm._fitted(), want.size, want, np.random.default_rng(2),
                               min_len=want, top_p=kw.get("top_p"))
        assert [d.size for d in docs] == want.tolist()
    # the first token, given that the document may not end yet: P(w | <s>, w != </s>)
    p = lm.next_probs([[]])[0]
    p[EOS] = 0
    p /= p.sum()
    n = 20_000
    for top_p in (None, 1.0):
        docs = decode.generate(lm._fitted(), n, 2, np.random.default_rng(3), min_len=np.full(n, 2),
                               top_p=top_p)
        counts = np.bincount([d[0] for d in docs], minlength=V)
        keep = p > 0
        exp = p[keep] * n
        assert counts[~keep].sum() == 0
        assert ((counts[keep] - exp) ** 2 / exp).sum() < stats.chi2.ppf(0.999, keep.sum() - 1)


# -- provenance of text batches -------------------------------------------------------------
def test_documents_batch_keeps_provenance():
    a = Documents.made([[np.array([3, 4]), np.array([5])], [np.array([6]), np.array([7, 8])]], REAL, 0)
    b = Documents.made([[np.array([9])], [np.array([10])]], SYNTHETIC, 2)
    c = a.concat(b)
    assert c.size == 3 and c.real_share().tolist() == [2 / 3, 2 / 3]
    assert [g.tolist() for g in c.generation] == [[0, 0, 2], [0, 0, 2]]
    t = c.take(np.array([[2, 0], [1, 2]]))
    assert [d.tolist() for d in t.docs[0]] == [[9], [3, 4]]
    assert [d.tolist() for d in t.docs[1]] == [[7, 8], [10]]
    assert [s.tolist() for s in t.source] == [[SYNTHETIC, REAL], [REAL, SYNTHETIC]]
    s = c.subsample(2, Stream(SeedTree(0, "k"), "policy", np.arange(2)))
    assert s.size == 2 and all(len(d) == 2 for d in s.docs)
    # a curated batch is ragged: each chain keeps what its filter let through
    kept = c.select([np.array([True, False, True]), np.array([False, False, True])])
    assert kept.sizes.tolist() == [2, 1] and kept.real_share().tolist() == [0.5, 0.0]
    assert kept.subsample(1, Stream(SeedTree(0, "k"), "policy", np.arange(2))).sizes.tolist() == [1, 1]


# -- the family -----------------------------------------------------------------------------
def test_generation_zero_is_the_real_train_split(corpus):
    df = run_one(family="ngram", policy="replace", generations=2, replicates=2, seed=3,
                 params=small(corpus), metrics=["perplexity_real", "real_share"])
    fam = NGram(NGramParams(corpus=corpus, **SMALL), 0)
    direct = NGramLM(3).fit(fam.data.train, len(fam.data.vocab)).perplexity(fam.data.test)
    ppl = matrix(df, "perplexity_real")
    assert ppl[0] == pytest.approx([direct, direct], rel=1e-12)
    assert ppl[1].min() > direct          # trained on its own samples: worse on real text
    assert matrix(df, "real_share").tolist() == [[1.0, 1.0], [0.0, 0.0]]


def test_all_real_mix_never_changes_the_model(corpus):
    df = run_one(family="ngram", policy="mix", generations=3, replicates=1, seed=0,
                 params=small(corpus, real_fraction=1.0), metrics=["perplexity_real"])
    ppl = matrix(df, "perplexity_real")[:, 0]
    assert np.ptp(ppl) == 0.0


def test_accumulate_grows_and_keeps_the_real_data(corpus):
    df = run_one(family="ngram", policy="accumulate", generations=3, replicates=1, seed=0,
                 params=small(corpus), metrics=["real_share"])
    assert matrix(df, "real_share")[:, 0] == pytest.approx([1.0, 0.5, 1 / 3])


@pytest.mark.parametrize("lengths", ["real", "fixed"])
def test_generated_lengths_follow_the_real_ones(corpus, lengths):
    fam = NGram(NGramParams(corpus=corpus, lengths=lengths, doc_length=12, **SMALL), 0)
    lm = NGramLM(3).fit(fam.data.train, len(fam.data.vocab))
    docs = fam.generate(lm, 2000, np.random.default_rng(0), Sampling())
    got = np.array([d.size for d in docs])
    if lengths == "fixed":
        assert np.all(got == 12)
    else:
        assert stats.ks_2samp(got, fam.data.train_lengths).pvalue > 1e-3
        assert set(got) <= set(fam.data.train_lengths)


def test_registered_metrics_are_the_textmetrics_functions(corpus):
    fam = NGram(NGramParams(corpus=corpus, **SMALL), 0)
    lm = NGramLM(3).fit(fam.data.train, len(fam.data.vocab))

    class Models:
        lms, replicates = [lm], np.array([0])

    ctx = MetricContext(fam, Models(), None, 0, 100, EvaluationState(SeedTree(0, "x"), Sampling()))
    (e,) = evaluations(ctx)
    assert len(e.docs) == 100 and sum(len(d) for d in e.equal) == SMALL["eval_tokens"]
    expected = {
        "distinct_2": tm.distinct_n(e.equal, 2), "unigram_entropy": tm.unigram_entropy(e.equal),
        "vocab_size": tm.vocab_size(e.equal), "self_bleu": tm.self_bleu(e.bleu),
        "repetition_rate": tm.repetition_rate(e.equal, 4),
        "mean_length": np.mean([d.size for d in e.docs]),
        "perplexity_gen0": lm.perplexity(e.docs),
        "tail_coverage": tm.tail_coverage([d.tolist() for d in fam.data.test],
                                          [d.tolist() for d in e.docs], n=2),
    }
    for name, value in expected.items():
        assert METRICS.get(name).fn(ctx)[0] == pytest.approx(value, rel=1e-12), name
    # the reference line: the same computation on real documents
    real = MetricContext(fam, RealText(), None, 0, 100, EvaluationState(SeedTree(0, "x")))
    (r,) = evaluations(real)
    assert METRICS.get("vocab_size").fn(real)[0] == tm.vocab_size(r.equal)


def test_results_do_not_depend_on_chunking(corpus):
    kw = dict(family="ngram", policy="accumulate_subsample", generations=3, replicates=3, seed=5,
              metrics=["perplexity_real", "distinct_2", "tail_coverage"])
    a = run_one(params=small(corpus, chunk_size=1), **kw)
    b = run_one(params=small(corpus), **kw)
    assert a["value"].tolist() == b["value"].tolist()


def test_sampling_bias_narrows_the_output(corpus):
    kw = dict(family="ngram", policy="replace", generations=3, replicates=2, seed=1,
              metrics=["vocab_size", "unigram_entropy"])
    plain = run_one(params=small(corpus), **kw)
    biased = run_one(params=small(corpus, temperature=0.6, top_p=0.8), **kw)
    assert (matrix(biased, "unigram_entropy")[-1] < matrix(plain, "unigram_entropy")[-1]).all()
    assert (matrix(biased, "vocab_size")[-1] < matrix(plain, "vocab_size")[-1]).all()


# -- CLI, stored samples, errors -------------------------------------------------------------
def test_cli_runs_on_a_user_file_and_stores_samples(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["run", "--family", "ngram", "--corpus", corpus, "--policy", "mix",
               "--set", "real_fraction=0.5", "--set", "eval_tokens=500", "--set", "bleu_docs=40",
               "--set", "order=2", "--generations", "3", "--replicates", "2", "--seed", "7",
               "--out", str(out), "--quiet", "--no-plots"])
    assert rc == 0, capsys.readouterr().err
    (cell,) = (out / "cells").iterdir()
    files = sorted((cell / "samples").glob("gen-*/*.jsonl.gz"))
    assert [f.parent.name for f in files] == ["gen-000", "gen-001"]
    rows = [json.loads(line) for line in gzip.open(files[0], "rt", encoding="utf-8")]
    fam = NGram(NGramParams(corpus=corpus, **SMALL), 0)
    assert {r["replicate"] for r in rows} == {0, 1}
    assert len(rows) == 2 * (len(fam.data.train) - round(0.5 * len(fam.data.train)))
    assert all(isinstance(r["text"], str) for r in rows)
    manifest = json.loads((out / "manifest.json").read_text())
    (record,) = manifest["data"].values()
    assert record["train_tokens"] == int(fam.data.train_lengths.sum())
    # the report shows the stored documents, escaped
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert "Text samples" in html and rows[0]["text"].split()[0] in html


def test_changed_corpus_content_is_a_different_run(tmp_path, capsys):
    path = write_corpus(tmp_path / "c.txt")
    args = ["run", "--family", "ngram", "--corpus", path, "--set", "eval_tokens=500",
            "--set", "bleu_docs=40", "--generations", "2", "--replicates", "1",
            "--metrics", "perplexity_real", "--out", str(tmp_path / "o"), "--quiet", "--no-plots"]
    assert main(args) == 0
    write_corpus(tmp_path / "c.txt", seed=1)
    assert main(args) == 2
    assert "different run" in capsys.readouterr().err


@pytest.mark.parametrize("sets, message", [
    (["eval_tokens=100000"], "fewer than eval_tokens"),
    (["decoding='greedy'"], "set prompt_tokens"),
    (["order=9"], "order must be from 1 to 6"),
    (["top_p=0.9", "truncation=0.9"], "same setting"),
])
def test_bad_settings_are_one_sentence(corpus, tmp_path, capsys, sets, message):
    argv = ["run", "--family", "ngram", "--corpus", corpus, "--out", str(tmp_path / "o"), "--quiet"]
    for s in ["eval_tokens=500", "bleu_docs=40", *sets]:
        argv += ["--set", s]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_too_many_documents_and_bad_files(corpus, tmp_path, capsys):
    base = ["run", "--family", "ngram", "--quiet", "--out", str(tmp_path / "o"),
            "--set", "eval_tokens=500"]
    assert main(base + ["--corpus", corpus, "--n-samples", "100000"]) == 2
    assert "exceeds" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(base + ["--corpus", str(empty)]) == 2
    assert "empty.txt" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine text here\nbad \xff byte\n")
    assert main(base + ["--corpus", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.txt" in err and "byte" in err
    assert not (tmp_path / "o").exists()


def test_embedding_metrics_are_wired(corpus, monkeypatch):
    # MiniLM is an optional extra; a deterministic stand-in embedding checks the wiring:
    # each document's embedding is its bag of token hashes, so identical documents coincide.
    def fake_embed(texts, **kw):
        out = np.zeros((len(texts), 16))
        for i, t in enumerate(texts):
            for w in t.split():
                out[i, zlib.crc32(w.encode()) % 16] += 1.0
        return out + 1e-3

    monkeypatch.setattr(tm, "embed", fake_embed)
    df = run_one(family="ngram", policy="replace", generations=2, replicates=1, seed=0,
                 params=small(corpus, embeddings=True, embed_docs=30),
                 metrics=["vendi_score", "cosine_distance", "embedding_recall",
                          "embedding_coverage"])
    assert set(df.metric) == {"vendi_score", "cosine_distance", "embedding_recall",
                              "embedding_coverage"}
    vendi = matrix(df, "vendi_score")
    assert np.all((vendi >= 1) & (vendi <= 30))
    rec = matrix(df, "embedding_recall")
    assert np.all((rec >= 0) & (rec <= 1))


class ParityMark:
    """A stand-in green list for the sampler test: token + previous token even is green."""

    delta, context_width = 1.5, 1

    def green(self, context, tokens):
        return (tokens + context[:, -1]) % 2 == 0

    def green_mask(self, context, vocab_size):
        return (np.arange(vocab_size)[None, :] + context[:, -1:]) % 2 == 0


@pytest.mark.parametrize("top_p", [None, 1.0])   # rejection from the exact sampler; full rows
def test_watermark_bias_draws_from_the_boosted_distribution(top_p):
    V = 9
    rng = np.random.default_rng(4)
    lm = NGramLM(2).fit([rng.integers(3, V, size=rng.integers(1, 6)) for _ in range(300)], V)
    mark = ParityMark()
    n = 30_000
    prompt = [np.array([4])] * n
    docs = decode.generate(lm._fitted(), n, 1, np.random.default_rng(5), prompts=prompt,
                           top_p=top_p, watermark=mark)
    first = np.array([d[1] if d.size > 1 else EOS for d in docs])
    p = lm.next_probs([[4]])[0] * np.where(mark.green_mask(np.array([[4]]), V)[0], np.exp(1.5), 1.0)
    p /= p.sum()
    counts = np.bincount(first, minlength=V)
    keep = p > 0
    exp = p[keep] * n
    assert counts[~keep].sum() == 0
    assert ((counts[keep] - exp) ** 2 / exp).sum() < stats.chi2.ppf(0.999, keep.sum() - 1)


@pytest.mark.parametrize("name, content, message", [
    ("hf", None, "offline"),
    ("truncated.jsonl.gz", "gz", "truncated or corrupt"),
    ("lines.jsonl", b'{"text": "one two three"}\nnot json\n', "line 2"),
    ("fields.jsonl", b'{"body": "one two three"}\n', "text"),
    ("blank.txt", b"   \n\t\n", "no documents"),
])
def test_bad_corpora_exit_2_with_one_sentence(tmp_path, capsys, monkeypatch, name, content,
                                               message):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))
    if name == "hf":
        spec = "hf:wikitext:wikitext-2-raw-v1"
    else:
        path = tmp_path / name
        if content == "gz":
            path.write_bytes(gzip.compress(b'{"text": "a b c"}\n' * 1000)[:-40])
        else:
            path.write_bytes(content)
        spec = str(path)
    out = tmp_path / "o"
    assert main(["run", "--family", "ngram", "--corpus", spec, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not out.exists()


def test_a_streamed_corpus_is_counted_chunk_by_chunk(tmp_path):
    # The README's recipe for a corpus larger than memory: two streaming passes (vocabulary,
    # then counts), never the whole corpus in memory; the same model as fitting it whole.
    import itertools

    from modelcollapse.data import Vocabulary, make_tokenizer, read_documents
    rng = np.random.default_rng(3)
    path = tmp_path / "big.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for _ in range(3000):
            fh.write(json.dumps({"text": " ".join(rng.choice(WORDS, size=rng.integers(5, 30)))}) + "\n")
    tok = make_tokenizer("word")
    vocab = Vocabulary.build(tok.tokenize(d.text) for d in read_documents(str(path)))
    texts = (d.text for d in read_documents(str(path)))
    chunks = (vocab.encode(tok.tokenize_many(list(batch)))
              for batch in iter(lambda: list(itertools.islice(texts, 500)), []))
    streamed = NGramLM(3).fit_stream(chunks, len(vocab))
    whole = NGramLM(3).fit(vocab.encode(tok.tokenize_many([d.text for d in read_documents(str(path))])),
                           len(vocab))
    assert streamed.n_ngrams_ == whole.n_ngrams_
    probe = [np.array([3, 4, 5]), np.array([6, 3])]
    for a, b in zip(streamed.logprob(probe), whole.logprob(probe)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_greedy_and_beam_continue_real_prompts(corpus):
    df = run_one(family="ngram", policy="replace", generations=2, replicates=1, seed=0,
                 params=small(corpus, decoding="greedy", prompt_tokens=3),
                 metrics=["mean_length", "perplexity_real"])
    assert len(df) == 4
    df = run_one(family="ngram", policy="replace", generations=2, replicates=1, seed=0,
                 params=small(corpus, decoding="beam", beam_width=3, prompt_tokens=3,
                              lengths="model", max_len=20),
                 metrics=["perplexity_real", "train_docs"])
    assert len(df) == 4   # beam search favours short documents: nothing to measure them on
    with pytest.raises(UserError, match="lengths = 'model'"):
        NGramParams(decoding="beam", prompt_tokens=3)


def test_unigram_watermark_and_total_collapse_run_to_the_end(corpus):
    # context width 0 is one fixed green list; a chain that collapses to a single word is a
    # result (its undefined metrics have no rows), not an error
    run_one(family="ngram", policy="replace", generations=2, replicates=1, seed=0,
            params=small(corpus, watermark=True, watermark_context=0), metrics=["vocab_size"])
    df = run_one(family="ngram", policy="replace", generations=4, replicates=1, seed=0,
                 params=small(corpus, order=1, temperature=0.05),
                 metrics=["vocab_size", "zipf_exponent"])
    assert matrix(df, "vocab_size")[-1, 0] == 1
    assert (df.metric == "zipf_exponent").sum() < 4   # undefined once one word is left


def test_a_corpus_edited_after_the_study_was_resolved_is_refused(tmp_path):
    path = write_corpus(tmp_path / "c.txt")
    from modelcollapse.api import make_study
    study = make_study(family="ngram", generations=2, replicates=1,
                       params={"corpus": path, **SMALL}, metrics=["perplexity_real"])
    write_corpus(tmp_path / "c.txt", seed=2)
    with pytest.raises(UserError, match="changed after the study was resolved"):
        run_cell(study.cells[0])


def test_samples_of_a_resumed_cell_are_not_duplicated(tmp_path):
    from modelcollapse.runs.store import ChunkCheckpoint
    ck = ChunkCheckpoint(tmp_path / "chunks", tmp_path / "samples")
    ck.save_samples(1, 0, 4, [["a"], ["b"], ["c"], ["d"]])
    ck.save_samples(1, 0, 2, [["a"], ["b"]])      # resumed with chunk_size = 2
    ck.save_samples(1, 2, 4, [["c"], ["d"]])
    names = sorted(f.name for f in (tmp_path / "samples" / "gen-001").iterdir())
    assert names == ["replicates-0-2.jsonl.gz", "replicates-2-4.jsonl.gz"]


@pytest.mark.parametrize("temperature", [0.3, 0.7])
def test_tempered_rejection_sampler_is_exact_with_watermark_and_min_len(temperature):
    # Kneser-Ney at temperature < 1 draws by rejection from the exact mixture sampler; the
    # target, with the watermark boost and no early </s>: (p e^{delta green})^{1/T}, </s> out.
    V = 9
    rng = np.random.default_rng(6)
    lm = NGramLM(3).fit([rng.integers(3, V, size=rng.integers(1, 6)) for _ in range(300)], V)
    mark = ParityMark()
    n = 30_000
    prompt = [np.array([4, 5])] * n
    docs = decode.generate(lm._fitted(), n, 1, np.random.default_rng(7), temperature, prompts=prompt,
                           min_len=np.ones(n, np.int64), watermark=mark)
    first = np.array([d[2] for d in docs])
    p = lm.next_probs([[4, 5]])[0] * np.where(mark.green_mask(np.array([[5]]), V)[0],
                                               np.exp(mark.delta), 1.0)
    p[EOS] = 0
    q = np.where(p > 0, p, 0) ** (1 / temperature)
    q /= q.sum()
    counts = np.bincount(first, minlength=V)
    keep = q > 0
    exp = q[keep] * n
    assert counts[~keep].sum() == 0
    assert ((counts[keep] - exp) ** 2 / exp).sum() < stats.chi2.ppf(0.999, keep.sum() - 1)
