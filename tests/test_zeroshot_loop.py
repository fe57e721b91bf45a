"""The zeroshot detector in the loop: a real (here tiny, random) language model as the
``filtered`` policy's detector and as a ``curated`` pipeline block, on the n-gram text family."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")

from helpers import run_one  # noqa: E402
from modelcollapse.cli import main  # noqa: E402
from modelcollapse.errors import UserError  # noqa: E402
from test_text_loop import SMALL, write_corpus  # noqa: E402
from tiny_lm import tiny_lm_folder  # noqa: E402


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "corpus.txt", n_docs=600)


@pytest.fixture(scope="module")
def scorer(corpus, tmp_path_factory):
    """A folder holding a tiny random llama over the corpus's words (saved as transformers
    saves any model: the loop loads it as it would load a real one)."""
    with open(corpus, encoding="utf-8") as f:
        return tiny_lm_folder(f.readlines(), tmp_path_factory.mktemp("scorer") / "tiny")


def run(corpus, policy, **params):
    return run_one(family="ngram", policy=policy, generations=2, replicates=2, seed=5,
                   params={"corpus": corpus, **SMALL, **params})


def pooled(df, metric):
    return df[(df.metric == metric) & (df.generation >= 1)]["value"].to_numpy()


def test_filtered_with_a_zeroshot_detector_holds_its_fpr(corpus, scorer):
    # Calibrated on the test split, applied to the pool's human (train) documents: with a
    # random scorer the two are exchangeable, so the pool's FPR is the target up to the
    # binomial errors of the calibration set and of the pool.
    from modelcollapse.families.ngram import NGram, NGramParams
    p = 0.1
    df = run(corpus, "filtered", real_fraction=0.5, detector="zeroshot", scorer=scorer,
             target_fpr=p)
    data = NGram(NGramParams(corpus=corpus, **SMALL), 0).data
    fpr = pooled(df, "detector_fpr")
    assert fpr.size == 2 and np.isfinite(fpr).all()
    se = np.sqrt(p * (1 - p) * (1 / len(data.test) + 1 / (2 * len(data.train) * 0.5)))
    assert abs(fpr.mean() - p) < 4 * se
    assert (pooled(df, "dropped_detector") > 0).all()
    assert df.generation.max() == 1


def test_zeroshot_block_in_a_pipeline(corpus, scorer):
    df = run(corpus, "curated", real_fraction=0.4, scorer=scorer,
             zeroshot_criterion="log_likelihood", pipeline="exact_dedup, zeroshot=0.1")
    assert {"detector_recall", "detector_fpr", "dropped_detector"} <= set(df.metric)
    assert 0 < pooled(df, "dropped_detector").sum()


def test_the_block_declares_what_it_needs():
    from modelcollapse.curation.pipeline import BLOCKS
    spec = BLOCKS.get("zeroshot")
    from modelcollapse.capabilities import GeneratesText
    assert spec.requires == (GeneratesText,) and spec.detector and spec.calibrates == "high"


@pytest.mark.parametrize("params,message", [
    ({"detector": "zeroshot", "scorer": "no-such-model"},
     "params.scorer: unknown model name 'no-such-model'"),
    ({"detector": "zeroshot", "scorer": "./missing/folder"},
     "params.scorer: ./missing/folder is neither a .gguf file nor a model folder"),
    ({"detector": "zeroshot", "target_fpr": 0.001}, "needs at least 1000 human documents"),
    ({"detector": "zeroshot", "zeroshot_criterion": "perplexity"}, "zeroshot_criterion"),
    ({"pipeline": "exact_dedup, zeroshot=0.001"}, "block zeroshot=0.001 needs at least 1000"),
    ({"pipeline": "zeroshot", "scorer": "nope/../x"}, "params.scorer"),
])
def test_bad_zeroshot_parameters_are_one_sentence(corpus, scorer, params, message):
    policy = "curated" if "pipeline" in params else "filtered"
    params = {"scorer": scorer, **params}
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(".", r"\.")):
        run(corpus, policy, **params)


def test_bad_scorer_writes_nothing(corpus, tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["run", "--family", "ngram", "--corpus", corpus, "--policy", "filtered",
            "--set", "detector=zeroshot", "--set", "scorer=no-such-model",
            "--set", "eval_tokens=500", "--set", "bleu_docs=40",
            "--generations", "2", "--out", str(out), "--quiet", "--no-plots"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "params.scorer" in err and err.count("\n") == 1
    assert not out.exists()
