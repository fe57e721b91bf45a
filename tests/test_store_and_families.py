"""The result store's promises and the common checks every family and policy must pass."""

import numpy as np
import pandas as pd
import pytest

from modelcollapse import FAMILIES, POLICIES
from modelcollapse.api import load, make_study, run_study
from modelcollapse.errors import UserError
from modelcollapse.loop import build
from modelcollapse.families.base import Streams
from modelcollapse.batches import REAL, SYNTHETIC, Samples
from modelcollapse.randomness import SeedTree
from modelcollapse.runs import store as store_mod


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.parquet"
    store_mod.write_parquet(path, pd.DataFrame({"value": [1.0]}))
    before = path.read_bytes()

    def disk_full(fh):
        fh.write(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        store_mod.atomic_write(path, disk_full)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.parquet"]


def test_marker_missing_means_cell_reruns(tmp_path):
    study = make_study(family="gaussian", generations=3, replicates=2)
    first = run_study(study, tmp_path / "r", plots=False)
    (tmp_path / "r" / "cells" / study.cells[0].key / "DONE").unlink()
    again = run_study(study, tmp_path / "r", plots=False)
    assert again.ran == [study.cells[0].key]
    pd.testing.assert_frame_equal(first.metrics, again.metrics)
    pd.testing.assert_frame_equal(load(tmp_path / "r"), first.metrics)


def test_newer_format_is_refused(tmp_path):
    study = make_study(family="gaussian", generations=2, replicates=2)
    run_study(study, tmp_path / "r", plots=False)
    f = tmp_path / "r" / "study.toml"
    f.write_text(f.read_text().replace("format = 1", "format = 99"))
    with pytest.raises(UserError, match="newer modelcollapse"):
        run_study(study, tmp_path / "r", plots=False)


def test_chunk_size_change_is_the_same_run(tmp_path):
    run_study(make_study(family="gaussian", generations=2, replicates=2), tmp_path / "r", plots=False)
    res = run_study(make_study(family="gaussian", generations=2, replicates=2, params={"chunk_size": 1}),
                    tmp_path / "r", plots=False)
    assert res.ran == []


# ngram: tests/test_text_loop.py; transformer: tests/test_transformer.py; labels (label
# counts only): tests/test_verifier.py; image families: tests/test_images.py
@pytest.mark.parametrize("family", [f for f in FAMILIES.names()
                                    if f not in ("ngram", "transformer", "labels", "vae",
                                                 "diffusion", "pca_gmm", "image_kde")])
def test_family_common_checks(family):
    n = 32 if family == "linear_regression" else 40
    study = make_study(family=family, n_samples=n, generations=2, replicates=3,
                       params={"sufficient_stats": False})
    fam, pol, sampling, metrics = build(study.cells[0])
    streams = Streams(SeedTree(0, "common"), np.arange(3))
    real = fam.real_source(streams, False)(n, 0)
    assert isinstance(real, Samples) and real.values.shape[:2] == (3, n)
    assert (real.source == REAL).all() and (real.generation == 0).all()
    model = fam.fit(real, None, streams["fit"])
    synth = fam.sample(model, 10, 4, streams["sample"], sampling, False)
    assert synth.values.shape[:2] == (3, 10) and synth.values.shape[2:] == real.values.shape[2:]
    assert (synth.source == SYNTHETIC).all() and (synth.generation == 4).all()
    df = pd.DataFrame(run_study(study).metrics)
    assert np.isfinite(df.value).all() and df.metric.nunique() == len(study.cells[0].metrics)


# filtered and curated curate text: tests/test_curation_loop.py
@pytest.mark.parametrize("policy", [p for p in POLICIES.names() if p not in ("filtered", "curated")])
def test_policy_provenance(policy):
    family, params = ("labels", {"n_inputs": 10}) if policy == "verified" else (
        "categorical", {"n_outcomes": 10})
    params |= {"real_fraction": 0.25} if policy == "mix" else {}
    params |= {"recover_at": 3, "recovery_fraction": 0.5} if policy == "recovery" else {}
    study = make_study(family=family, policy=policy, n_samples=40, generations=4, replicates=2,
                       metrics=["real_share"], params=params)
    share = run_study(study).metrics.pivot(index="generation", columns="replicate", values="value")
    assert (share.loc[0] == 1.0).all()
    expected = {"replace": 0.0, "mix": 0.25, "accumulate": 1 / 4, "verified": 0.0,
                "recovery": 0.5}.get(policy)
    if expected is not None:
        assert share.loc[3].to_numpy() == pytest.approx(expected)
    else:  # accumulate_subsample: a random subset of 1 real + 3 synthetic batches
        assert (share.loc[3] < 1.0).all()


def test_truncation_and_temperature_shrink_categorical_support():
    from modelcollapse.families.base import Sampling
    from modelcollapse.families.categorical import biased
    q = np.array([[0.5, 0.3, 0.15, 0.05]])
    np.testing.assert_allclose(biased(q, Sampling(truncation=0.8)), [[0.625, 0.375, 0.0, 0.0]])
    cold = biased(q, Sampling(temperature=0.5))
    assert cold[0, 0] == pytest.approx(0.25 / (0.25 + 0.09 + 0.0225 + 0.0025))
