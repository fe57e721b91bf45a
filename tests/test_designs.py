"""Research designs: mix with absolute real/synthetic sizes, and paired (common random
numbers) studies whose cells differ only in policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import matrix, run_one
from modelcollapse.api import make_study, run
from modelcollapse.errors import UserError
from modelcollapse.loop import run_cell


# -- mix with absolute sizes --------------------------------------------------------------
def test_absolute_sizes_set_the_real_pool_and_the_real_share():
    df = run_one(family="gaussian", policy="mix", generations=4, replicates=20,
                 params={"n_real": 30, "n_synthetic": 90, "real_source": "fixed"})
    share = matrix(df, "real_share")
    assert np.all(share[0] == 1.0)
    assert np.allclose(share[1:], 30 / 120)
    study = make_study(family="gaussian", policy="mix", params={"n_real": 30, "n_synthetic": 90})
    assert study.cells[0].n_samples == 30   # generation 0 is the fit on the real set alone


@pytest.mark.parametrize("stats", [True, False])
def test_fixed_real_set_without_synthetic_refits_the_same_data(stats):
    """n_synthetic = 0 under 'fixed': every generation fits the very same n_real points."""
    df = run_one(family="gaussian", policy="mix", generations=5, replicates=30,
                 params={"n_real": 25, "n_synthetic": 0, "sufficient_stats": stats})
    v = matrix(df, "variance")
    assert np.allclose(v, v[0], rtol=1e-12, atol=0)


def test_fresh_real_set_without_synthetic_is_independent_fits(z):
    """n_synthetic = 0 under 'fresh': each generation is an MLE fit on n_real new points,
    E[s^2] = (n - 1)/n sigma^2 at every generation (and generations are uncorrelated)."""
    n = 10
    df = run_one(family="gaussian", policy="mix", generations=4, replicates=4000,
                 params={"n_real": n, "n_synthetic": 0, "real_source": "fresh"})
    v = matrix(df, "variance")
    for g in range(4):
        assert z(v[g], (n - 1) / n) < 4
    assert abs(np.corrcoef(v[0], v[3])[0, 1]) < 4 / np.sqrt(4000)


def test_fully_synthetic_with_another_size_matches_the_closed_form(z):
    """n_real = 0: generation 0 is an MLE fit on n_samples = n real points, then each
    generation on m synthetic ones: E[s^2_g] = (n-1)/n ((m-1)/m)^g sigma^2."""
    n, m = 100, 20
    df = run_one(family="gaussian", policy="mix", n_samples=n, generations=11, replicates=3000,
                 params={"n_real": 0, "n_synthetic": m})
    v = matrix(df, "variance")
    for g in (0, 1, 5, 10):
        assert z(v[g], (n - 1) / n * ((m - 1) / m) ** g) < 4


def test_augmentation_with_a_fixed_real_set_keeps_the_variance_away_from_zero():
    """MAD's synthetic augmentation loop only delays collapse and Bertrand's small lambda
    is stable: with the real set in every generation, the variance stays near the truth
    where the fully synthetic loop (n_real = 0) loses it."""
    df = run(family="gaussian", policy="mix", n_samples=20, generations=60, replicates=300,
             metrics=["variance"], params={"n_real": [0, 20], "n_synthetic": 20})
    last = df[df.generation == 59].groupby("label").value.mean()
    assert last["n_real=0"] < 0.3
    assert 0.8 < last["n_real=20"] < 1.05


def test_existing_mix_cells_keep_their_keys():
    """real_fraction studies resolve to the cells (and seeds) they always had."""
    study = make_study(family=["gaussian", "gmm", "categorical"],
                       policy=["replace", "accumulate", "mix"], generations=50, replicates=30,
                       params={"real_fraction": 0.1})
    assert [c.key for c in study.cells] == [
        "354a2813d56d", "d0d9b27c6be5", "02979b160fe0", "51b01d50d153", "7d8c26e51eba",
        "3208c263339f", "fd7105bed512", "3794bf4073d4", "a4e6cefd237c"]
    assert all("n_real" not in c.params for c in study.cells)


@pytest.mark.parametrize("params, n_samples, message", [
    ({"n_real": 10}, None, "needs params.n_synthetic"),
    ({"n_synthetic": 10}, None, "needs params.n_real"),
    ({"n_real": -1, "n_synthetic": 10}, None, "n_real must be >= 0"),
    ({"n_real": 0, "n_synthetic": 1}, None, ">= 2"),
    ({"n_real": 50, "n_synthetic": 10}, 100, "fixes the real set at 50"),
    ({"n_real": 50, "n_synthetic": 10, "real_fraction": 0.2}, None, "give one or the other"),
    ({"n_real": 0, "n_synthetic": 3, "dim": 3}, 10, "later training sets hold 3"),
])
def test_absolute_sizes_bad_input(params, n_samples, message):
    with pytest.raises(UserError, match=message):
        make_study(family="gaussian", policy="mix", n_samples=n_samples, params=params)


def test_no_real_data_makes_fixed_and_fresh_one_cell():
    study = make_study(family="gaussian", policy="mix", n_samples=20,
                       params={"n_real": 0, "n_synthetic": 20, "real_source": ["fixed", "fresh"]})
    assert len(study.cells) == 1


# -- paired studies -------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["gaussian", "gmm", "categorical"])
def test_paired_cells_share_generation_zero(family):
    df = run(family=family, policy=["replace", "accumulate", "mix"], generations=3,
             replicates=12, paired=True, params={"real_fraction": [0.1, 0.5]})
    assert df.cell.nunique() == 4   # replace, accumulate, mix at two fractions
    g0 = df[df.generation == 0].pivot_table(index=["metric", "replicate"], columns="cell",
                                           values="value")
    assert g0.shape[1] == 4
    spread = (g0.max(axis=1) - g0.min(axis=1)).to_numpy()
    assert np.all(spread == 0.0)
    g1 = df[(df.generation == 1) & (df.metric == df.metric.iloc[0])]
    assert g1.groupby("cell").value.mean().nunique() > 1   # the policies do differ later


def test_unpaired_cells_do_not_share_generation_zero():
    df = run(family="gaussian", policy=["replace", "accumulate"], generations=2, replicates=10,
             metrics=["variance"])
    g0 = df[df.generation == 0].pivot_table(index="replicate", columns="policy", values="value")
    assert not np.allclose(g0["replace"], g0["accumulate"])


def test_paired_contrast_has_a_smaller_variance():
    """Common random numbers: the replicate-wise difference replace - accumulate varies
    far less when the chains share generation 0 and the sampling noise."""
    spread = {}
    for paired in (False, True):
        df = run(family="gaussian", policy=["replace", "accumulate"], generations=3,
                 replicates=400, paired=paired, metrics=["variance"],
                 params={"estimator": "unbiased"})
        w = df[df.generation == 2].pivot_table(index="replicate", columns="policy", values="value")
        spread[paired] = float((w["replace"] - w["accumulate"]).var())
    # expected ratio about 0.2; the sampling error of each variance is about 7% at R = 400
    assert spread[True] < 0.5 * spread[False]


def test_paired_fresh_real_data_is_the_same_stream():
    """Two mix settings that both train every generation on 20 fresh real points and
    nothing else (n_real = 20 with no synthetic data; real_fraction = 1): paired, they read
    the same real-data stream, so every generation matches, not only generation 0."""
    kw = dict(family="gaussian", policy="mix", n_samples=20, generations=4, replicates=30,
              paired=True)
    a = make_study(**kw, params={"n_real": 20, "n_synthetic": 0, "real_source": "fresh"}).cells[0]
    b = make_study(**kw, params={"real_fraction": 1.0, "real_source": "fresh"}).cells[0]
    assert a.key != b.key and a.seed_key == b.seed_key
    assert np.array_equal(matrix(run_cell(a), "variance"), matrix(run_cell(b), "variance"))
    unpaired = make_study(**{**kw, "paired": False},
                          params={"real_fraction": 1.0, "real_source": "fresh"}).cells[0]
    assert not np.array_equal(matrix(run_cell(a), "variance"),
                              matrix(run_cell(unpaired), "variance"))


def test_paired_resolves_sufficient_statistics_per_group():
    """mix from a fixed pool needs samples; its replace partner then draws samples too, so
    both draw the same generation-0 data."""
    study = make_study(family="gaussian", policy=["replace", "mix"], paired=True)
    assert {c.params["sufficient_stats"] for c in study.cells} == {False}
    assert {c.seed_key for c in study.cells} == {study.cells[0].seed_key}
    alone = make_study(family="gaussian", policy=["replace", "mix"])
    assert {c.params["sufficient_stats"] for c in alone.cells} == {True, False}


def test_paired_is_a_boolean_and_not_an_axis():
    with pytest.raises(UserError, match="paired cannot be a sweep axis"):
        make_study(family="gaussian", paired=[True, False])
    with pytest.raises(UserError, match="paired must be true or false"):
        make_study(family="gaussian", paired="yes")


@pytest.mark.parametrize("path", sorted(Path(__file__).resolve().parents[1].glob("studies/*.toml")),
                         ids=lambda p: p.stem)
def test_shipped_studies_resolve(path):
    """Every shipped loop study still resolves (the size checks of mix must not catch other
    policies). Not the audit's calibration and validation files (another format) nor the studies of
    pretrained checkpoints (downloaded or fetched first)."""
    if path.stem in ("audit_calibration", "shumailov_opt125m") or path.stem.startswith(
            ("pretrained", "audit_llm")):
        pytest.skip("not a loop study that resolves offline (another format, or a model to fetch)")
    if path.stem.startswith("transformer"):
        pytest.importorskip("torch")
    study = make_study(path)
    assert study.cells
