"""Curation policies in the text loop: filtered, curated, recovery; their metrics and errors."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import matrix, run_one
from modelcollapse.cli import main
from modelcollapse.errors import UserError
from modelcollapse.families.ngram import NGram, NGramParams
from test_text_loop import SMALL, write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "corpus.txt", n_docs=600)


def run(corpus, policy, generations=4, replicates=3, **params):
    return run_one(family="ngram", policy=policy, generations=generations, replicates=replicates,
                   seed=11, params={"corpus": corpus, **SMALL, **params})


def pooled(df, metric):
    """A metric's values at generations >= 1 (curation happened), by generation and replicate."""
    sel = df[(df.metric == metric) & (df.generation >= 1)].sort_values(["generation", "replicate"])
    return sel["value"].to_numpy()


def test_oracle_filter_measures_what_it_was_told(corpus):
    # The oracle flags synthetic documents with probability 0.7 and real ones with 0.2; the
    # measured recall and FPR must agree within the binomial error of the pool sizes.
    rf, recall, fpr = 0.4, 0.7, 0.2
    df = run(corpus, "filtered", real_fraction=rf, oracle_recall=recall, oracle_fpr=fpr)
    assert df[(df.metric == "detector_recall")].generation.min() == 1  # nothing filtered at 0
    dropped = pooled(df, "dropped_detector")
    share = pooled(df, "dropped_share")
    pool = dropped / share
    n_syn = np.round(pool * (1 - rf))
    n_real = pool - n_syn
    for name, p, size in [("detector_recall", recall, n_syn), ("detector_fpr", fpr, n_real)]:
        values = pooled(df, name)
        se = np.sqrt(p * (1 - p) / size.sum())
        assert abs(np.average(values, weights=size) - p) < 4 * se, name
    expected_drop = rf * fpr + (1 - rf) * recall
    assert abs(share.mean() - expected_drop) < 4 * np.sqrt(expected_drop * (1 - expected_drop) / pool.sum())
    precision = pooled(df, "detector_precision")
    theory = (1 - rf) * recall / ((1 - rf) * recall + rf * fpr)
    assert abs(precision.mean() - theory) < 0.05


def test_a_better_filter_keeps_fewer_machine_documents(corpus):
    weak = run(corpus, "filtered", real_fraction=0.3, oracle_recall=0.2, oracle_fpr=0.0)
    strong = run(corpus, "filtered", real_fraction=0.3, oracle_recall=0.95, oracle_fpr=0.0)
    assert pooled(strong, "kept_synthetic_share").max() < pooled(weak, "kept_synthetic_share").min()
    assert matrix(strong, "real_share")[-1].min() > matrix(weak, "real_share")[-1].max()
    assert matrix(strong, "perplexity_real")[-1].mean() < matrix(weak, "perplexity_real")[-1].mean()


def test_watermark_filter_catches_watermarked_text_only(corpus):
    df = run(corpus, "filtered", real_fraction=0.5, detector="watermark", watermark=True,
             watermark_delta=4.0)
    assert pooled(df, "detector_fpr").max() == 0.0       # z >= 4 on human text: p ~ 3e-5
    assert pooled(df, "detector_recall").mean() > 0.8


def test_likelihood_filter_holds_its_false_positive_rate(corpus):
    # Calibrated on the test split, applied to the pool's human documents (train split): an
    # out-of-sample FPR, off the target by the calibration set's and the pool's binomial
    # errors together.
    p = 0.1
    df = run(corpus, "filtered", real_fraction=0.5, detector="likelihood", target_fpr=p)
    data = NGram(NGramParams(corpus=corpus, **SMALL), 0).data
    se = np.sqrt(p * (1 - p) * (1 / len(data.test) + 1 / len(data.train)))
    assert abs(pooled(df, "detector_fpr").mean() - p) < 4 * se
    assert pooled(df, "detector_recall").mean() > 0.1


def test_classifier_filter_runs_and_reports(corpus):
    df = run(corpus, "filtered", generations=2, replicates=1, real_fraction=0.5,
             detector="classifier", target_fpr=0.1)
    for name in ("detector_precision", "detector_recall", "detector_fpr"):
        v = pooled(df, name)
        assert np.all((v >= 0) & (v <= 1))


def test_curated_drop_counts_add_up(corpus):
    df = run(corpus, "curated", real_fraction=0.3, quality_keep=0.8, diversity_keep=0.9)
    reasons = ["dropped_exact_duplicate", "dropped_near_duplicate", "dropped_low_quality",
               "dropped_low_diversity"]
    total = sum(pooled(df, r) for r in reasons)
    share = pooled(df, "dropped_share")
    pool = total / share
    assert np.allclose(pool, np.round(pool)) and np.ptp(pool) == 0  # the same pool every time
    assert pooled(df, "dropped_low_quality").min() > 0


def test_recovery_returns_to_the_real_model(corpus):
    df = run(corpus, "recovery", generations=5, recover_at=3)
    ppl = matrix(df, "perplexity_real")
    assert (ppl[2] > ppl[0]).all()               # collapsed for two generations ...
    assert np.array_equal(ppl[3], ppl[0])        # ... then trained on the real pool again


def test_curation_errors(corpus, tmp_path, capsys):
    with pytest.raises(UserError, match="needs a family with text generation"):
        run_one(family="gaussian", policy="filtered")
    with pytest.raises(UserError, match="watermark = true"):
        run(corpus, "filtered", detector="watermark")
    with pytest.raises(UserError, match="needs at least 20000 human documents"):
        run(corpus, "filtered", detector="likelihood", target_fpr=0.0001)
    with pytest.raises(UserError, match="watermark gamma"):
        run(corpus, "replace", watermark=True, watermark_gamma=1.5)
    with pytest.raises(UserError, match="target_fpr must be in"):
        run(corpus, "filtered", detector="likelihood", target_fpr=0.0)
    argv = ["run", "--family", "ngram", "--corpus", corpus, "--policy", "filtered",
            "--set", "oracle_recall=1.0", "--set", "oracle_fpr=1.0", "--set", "real_fraction=0.5",
            "--set", "eval_tokens=500", "--set", "bleu_docs=40", "--generations", "3",
            "--out", str(tmp_path / "o"), "--quiet", "--no-plots"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "dropped every one" in err and err.count("\n") == 1


def test_a_larger_pool_keeps_the_training_set_size(corpus):
    # A crawl four times the training set, a quarter of it human (the whole real pool): the
    # filter changes what the model trains on, not how much (n_samples documents).
    recall, fpr = 0.9, 0.01
    df = run(corpus, "filtered", real_fraction=0.25, pool_factor=4.0, oracle_recall=recall,
             oracle_fpr=fpr)
    kept_real, kept_syn = 1 - fpr, 3 * (1 - recall)
    expected = kept_real / (kept_real + kept_syn)
    share = pooled(df, "real_share")
    assert abs(share.mean() - expected) < 0.03
    n = matrix(df, "train_docs")[0, 0]
    assert (pooled(df, "train_docs") == n).all()
    with pytest.raises(UserError, match="exceeds 1"):
        run(corpus, "filtered", real_fraction=0.5, pool_factor=4.0)


def test_fresh_pools_need_enough_distinct_human_documents(corpus):
    with pytest.raises(UserError, match="train split holds"):
        run(corpus, "filtered", real_fraction=0.5, pool_factor=4.0, real_source="fresh")


def test_curation_results_do_not_depend_on_chunking(corpus):
    kw = dict(detector="oracle", real_fraction=0.25, pool_factor=2.0)
    a = run(corpus, "filtered", generations=3, chunk_size=1, **kw)
    b = run(corpus, "filtered", generations=3, **kw)
    assert a["value"].tolist() == b["value"].tolist()
    c = run(corpus, "curated", generations=3, chunk_size=1, quality_keep=0.8, diversity_keep=0.8)
    d = run(corpus, "curated", generations=3, quality_keep=0.8, diversity_keep=0.8)
    assert c["value"].tolist() == d["value"].tolist()


# -- configured pipelines (curation/pipeline.py) -------------------------------------------
def test_a_pipeline_runs_the_blocks_the_flags_would(corpus):
    # paired: the two cells differ only in policy parameters, so they share every seed
    flags = run_one(family="ngram", policy="curated", generations=4, replicates=3, seed=11,
                    paired=True, params={"corpus": corpus, **SMALL, "real_fraction": 0.25,
                                         "dedup": True, "near_dedup": 0.8, "quality_keep": 0.8})
    piped = run_one(family="ngram", policy="curated", generations=4, replicates=3, seed=11,
                    paired=True, params={"corpus": corpus, **SMALL, "real_fraction": 0.25,
                                         "pipeline": "exact_dedup, near_dedup=0.8, top_quality=0.8"})
    common = sorted(set(flags.metric) & set(piped.metric))
    assert "dropped_low_quality" in common and "perplexity_real" in common
    a = flags[flags.metric.isin(common)].sort_values(["metric", "generation", "replicate"])
    b = piped[piped.metric.isin(common)].sort_values(["metric", "generation", "replicate"])
    np.testing.assert_array_equal(a["value"].to_numpy(), b["value"].to_numpy())


def test_a_pipeline_with_a_detector_records_its_measures(corpus):
    df = run(corpus, "curated", real_fraction=0.4, pipeline="exact_dedup, oracle=0.7")
    assert {"detector_recall", "detector_fpr", "dropped_detector", "dropped_exact_duplicate"} \
        <= set(df.metric)
    recall = pooled(df, "detector_recall")
    assert abs(recall.mean() - 0.7) < 0.15


@pytest.mark.parametrize("pipeline,message", [
    ("exact_dedup, near_dupe=0.8", "unknown curation block 'near_dupe' (did you mean 'near_dedup'?)"),
    ("top_quality=1.5", "top_quality's share kept must be in (0, 1]"),
    ("exact_dedup=0.3", "block exact_dedup takes no setting"),
    ("near_dedup=high", "block near_dedup takes a number"),
    (" , ", "names no block"),
    ("watermark", "block watermark needs the family to watermark its samples"),
])
def test_bad_pipelines_are_one_sentence(corpus, pipeline, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("?", r"\?")):
        run(corpus, "curated", pipeline=pipeline, watermark=False)
    with pytest.raises(UserError, match="give the pipeline alone"):
        run(corpus, "curated", pipeline="exact_dedup", quality_keep=0.5)


def test_every_registered_block_counts_add_up(corpus, tmp_path):
    """Common check over the block registry: kept + dropped per reason = the pool, and every
    reason given is one the block declares."""
    from modelcollapse.curation.base import Batch, run_chain
    from modelcollapse.curation.pipeline import BLOCKS
    from modelcollapse.loop import build
    from modelcollapse.policies import Step
    from modelcollapse.batches import REAL, SYNTHETIC
    from modelcollapse.randomness import SeedTree, Stream
    from helpers import make_study
    cell = make_study(family="ngram", policy="curated", params={"corpus": corpus, **SMALL,
                                                                "watermark": True}).cells[0]
    family, _, sampling, _ = build(cell)
    stream = Stream(SeedTree(0, "blocks"), "policy", [0])
    params = None
    if "zeroshot" in BLOCKS:   # its scorer: a tiny random language model saved in the test
        pytest.importorskip("transformers")
        from modelcollapse.curation.curated import CurateParams
        from tiny_lm import tiny_lm_folder
        with open(corpus, encoding="utf-8") as f:
            folder = tiny_lm_folder(f.readlines(), tmp_path / "scorer")
        params = CurateParams(scorer=folder)
    step = Step(0, 40, None, None, None, None, None, stream, family, None, sampling, params)
    docs = family.data.train[:60]
    source = np.array([REAL] * 30 + [SYNTHETIC] * 30)
    batch = Batch(list(docs) + list(docs[:5]), np.r_[source, [SYNTHETIC] * 5],
                  np.zeros(65), None)
    for name, spec in BLOCKS.items():
        blk = spec.build(spec.default, step)
        result = run_chain([blk], batch, np.random.default_rng(0))
        assert result.keep.sum() + sum(result.dropped.values()) == len(batch), name
        assert set(result.dropped) <= set(spec.reasons), (name, result.dropped)
