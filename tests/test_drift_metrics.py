"""tail_mass_centered, w2_to_gen0, kl_to_gen0, precision and recall: their closed forms on
Gaussian models, the Monte Carlo KL against the closed form within its error, invariance to
a mean shift, and independence of the chunking."""

import numpy as np
import pytest
from scipy.stats import norm

from helpers import run_one, values
from modelcollapse.metrics import METRICS, MetricContext
from modelcollapse.metrics.drift import N_DRAWS, common_draws, gaussian_kl, kl_to_gen0, shared_generator
from modelcollapse.metrics.state import EvaluationState
from modelcollapse.families.gaussian import Gaussian, GaussianModel, GaussianParams
from modelcollapse.randomness import SeedTree

GAUSS = ["mean", "variance", "tail_mass", "tail_mass_centered", "w2_to_gen0", "kl_to_gen0"]


@pytest.fixture(scope="module")
def chain():
    return run_one(family="gaussian", policy="replace", n_samples=15, generations=12, replicates=300,
                   seed=31, metrics=GAUSS + ["precision", "recall"])


def test_centered_tail_is_the_gaussian_formula(chain):
    for g in (0, 6, 11):
        s = np.sqrt(values(chain, "variance", g))
        np.testing.assert_allclose(values(chain, "tail_mass_centered", g), norm.cdf(-3 / s) / norm.cdf(-3),
                                   rtol=1e-6, atol=1e-12)


def test_centered_tail_ignores_a_drifted_mean():
    fam = Gaussian(GaussianParams(), 10)
    cov = np.full((2, 1, 1), 0.5)
    model = GaussianModel(np.array([[0.0], [4.0]]), cov)
    ctx = MetricContext(fam, model, None, 3, 10, EvaluationState(SeedTree(0, "k")))
    centered = METRICS.get("tail_mass_centered").fn(ctx)
    fixed = METRICS.get("tail_mass").fn(ctx)
    assert centered[0] == pytest.approx(centered[1])
    assert fixed[1] > 100 * fixed[0]   # the fixed-quantile tail counts the drifted bulk


def test_distances_to_gen0_are_the_closed_forms(chain):
    m0, v0 = values(chain, "mean", 0), values(chain, "variance", 0)
    assert np.all(values(chain, "w2_to_gen0", 0) == 0) and np.all(values(chain, "kl_to_gen0", 0) == 0)
    for g in (3, 11):
        m, v = values(chain, "mean", g), values(chain, "variance", g)
        np.testing.assert_allclose(values(chain, "w2_to_gen0", g),
                                   np.sqrt((m - m0) ** 2 + (np.sqrt(v) - np.sqrt(v0)) ** 2), rtol=1e-6, atol=1e-9)
        kl = 0.5 * (v0 / v + (m - m0) ** 2 / v - 1 + np.log(v / v0))
        np.testing.assert_allclose(values(chain, "kl_to_gen0", g), kl, rtol=1e-8, atol=1e-12)


def test_mixture_kl_to_gen0_within_monte_carlo_error():
    """The Monte Carlo implementation (used for GMM and KDE) on Gaussian models against the
    closed form, each replicate within 4 standard errors of its own Monte Carlo mean."""
    fam = Gaussian(GaussianParams(), 10)
    first = GaussianModel(np.array([[0.0], [0.3], [1.0]]), np.array([[[1.0]], [[0.5]], [[2.0]]]))
    now = GaussianModel(np.array([[0.2], [0.0], [-1.0]]), np.array([[[0.8]], [[0.7]], [[1.0]]]))
    state = EvaluationState(SeedTree(0, "k"), gen0=first)
    ctx = MetricContext(fam, now, None, 5, 10, state)
    estimate = kl_to_gen0(ctx)
    x = common_draws(first.mixture, N_DRAWS, shared_generator(ctx, "kl_to_gen0"))
    terms = first.mixture.logpdf(x) - now.mixture.logpdf(x)
    se = terms.std(axis=1, ddof=1) / np.sqrt(N_DRAWS)
    exact = gaussian_kl(first.mean_, first.cov_, now.mean_, now.cov_)
    np.testing.assert_allclose(estimate, terms.mean(axis=1))
    assert np.all(np.abs(estimate - exact) < 4 * se), (estimate, exact, se)


def test_precision_and_recall_see_collapse_and_shift():
    fam = Gaussian(GaussianParams(), 10)
    models = GaussianModel(np.array([[0.0], [0.0], [10.0]]), np.array([[[1.0]], [[1e-4]], [[1.0]]]))
    ctx = MetricContext(fam, models, None, 1, 10, EvaluationState(SeedTree(0, "k")))
    p, r = METRICS.get("precision").fn(ctx), METRICS.get("recall").fn(ctx)
    assert p[0] > 0.9 and r[0] > 0.9             # the truth itself
    assert p[1] > 0.9 and r[1] < 0.1             # collapsed to a point: faithful, no diversity
    assert p[2] < 0.05 and r[2] < 0.05           # shifted by 10 sigma: neither


def test_new_metrics_do_not_depend_on_chunking(chain):
    other = run_one(family="gaussian", policy="replace", n_samples=15, generations=12, replicates=300,
                    seed=31, metrics=GAUSS + ["precision", "recall"], params={"chunk_size": 7})
    for m in ("kl_to_gen0", "w2_to_gen0", "precision", "recall", "tail_mass_centered"):
        np.testing.assert_array_equal(values(chain, m, 11), values(other, m, 11))


def test_gmm_metrics_run():
    df = run_one(family="gmm", policy="replace", n_samples=200, generations=3, replicates=4, seed=32,
                 metrics=["kl_to_gen0", "precision", "recall", "tail_mass_centered"])
    assert np.all(values(df, "kl_to_gen0", 0) == 0) and np.all(values(df, "kl_to_gen0", 2) > 0)
    assert np.all((values(df, "precision", 2) >= 0) & (values(df, "recall", 2) <= 1))


def test_plots_draw_heavy_tailed_metrics_as_median_and_band():
    import pandas as pd
    from modelcollapse.report.plots import center_of, summarize
    assert center_of("tail_mass")[:3] == ("median", "q10", "q90")
    assert center_of("tail_mass_centered")[0] == "median"
    assert center_of("variance")[:3] == ("mean", "lo", "hi")
    assert center_of("tail_mass", "mean")[0] == "mean"
    values_ = np.r_[np.zeros(8), 10.0, 1000.0]   # two chains dominate the mean
    s = summarize(pd.DataFrame({"generation": 0, "value": values_}))
    assert s["median"].iloc[0] == 0.0 and s["mean"].iloc[0] == pytest.approx(101.0)
    assert s["q90"].iloc[0] == pytest.approx(np.quantile(values_, 0.9))


def test_one_dimensional_precision_recall_equal_the_distance_matrix():
    from modelcollapse.metrics import drift as D
    rng = np.random.default_rng(0)
    f = rng.standard_normal((5, 256, 1)) * rng.uniform(0.1, 2, (5, 1, 1)) + rng.uniform(-2, 2, (5, 1, 1))
    x = rng.standard_normal((1, 256, 1))
    real_r = np.sqrt(np.partition(D._sqdist(x, x), 3, axis=2)[:, :, 3])
    fake_r = np.sqrt(np.partition(D._sqdist(f, f), 3, axis=2)[:, :, 3])
    np.testing.assert_array_equal(D._knn_radius_1d(f[..., 0], 3), fake_r)
    cross = D._sqdist(f, x)
    xs = np.broadcast_to(x[..., 0], (5, 256))
    np.testing.assert_array_equal(D._covered_1d(f[..., 0], xs, np.broadcast_to(real_r, (5, 256))),
                                  (cross <= (real_r**2)[:, None, :]).any(axis=2).mean(axis=1))
    np.testing.assert_array_equal(D._covered_1d(xs, f[..., 0], fake_r),
                                  (cross <= (fake_r**2)[:, :, None]).any(axis=1).mean(axis=1))
