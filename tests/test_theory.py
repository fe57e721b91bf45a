"""Simulation against the closed forms of the literature.

Each check compares a Monte Carlo mean over replicates with the closed form and fails when
they differ by more than Z standard errors of that mean (Z = 4: a correct engine fails one
check in ~16,000 by chance; the seeds are fixed, so the outcome is deterministic).
"""

import numpy as np
import pytest

from helpers import matrix, run_one, values
from modelcollapse import theory

Z = 4.0


def test_reference_numbers():
    # Figures quoted in REFERENCES.md, recomputed from our formulas.
    assert theory.gaussian_variance(1.0, 100, 50) == pytest.approx(0.6050, abs=1e-4)
    assert theory.gaussian_mean_sq(1.0, 100, 50) == pytest.approx(0.3950, abs=1e-4)
    assert theory.gaussian_unbiased_log_variance(1.0, 100, 50) == pytest.approx(-0.507, abs=1e-3)
    assert theory.regression_replace_error(1.0, 10, 32, 10) == pytest.approx(4.762, abs=1e-3)
    assert theory.regression_accumulate_error(1.0, 10, 32, np.array([10]))[0] == pytest.approx(0.7380, abs=1e-4)
    assert theory.zipf_tail_cut_error(2.0, 10**6, 1e12, k=100) == pytest.approx(0.00605, abs=1e-5)
    assert theory.zipf_tail_cut_error(2.0, 10**6, 1e5) == pytest.approx(0.00218, abs=1e-5)
    assert theory.verifier_breakdown(0.9, 0.3) == pytest.approx(0.75)
    assert theory.verifier_pruned_error(0.4, 0.9, 0.3) == pytest.approx(0.182, abs=1e-3)
    assert theory.collision_probability(0.0, 10, 1) == pytest.approx(0.1)


@pytest.mark.parametrize("stats", [True, False])
def test_gaussian_mle_variance_and_mean(stats, z):
    m, gens = 20, 30
    df = run_one(family="gaussian", policy="replace", n_samples=m, generations=gens, replicates=4000,
                 seed=1, metrics=["variance", "mean_error"], params={"sufficient_stats": stats})
    for g in (0, 9, 29):
        assert z(values(df, "variance", g), theory.gaussian_variance(1.0, m, g + 1)) < Z
        assert z(values(df, "mean_error", g), theory.gaussian_mean_sq(1.0, m, g + 1)) < Z


@pytest.mark.parametrize("estimator,ddof", [("mle", 0), ("unbiased", 1)])
def test_gaussian_log_det_multivariate(estimator, ddof, z):
    m, d = 12, 3
    df = run_one(family="gaussian", policy="replace", n_samples=m, generations=25, replicates=4000,
                 seed=9, metrics=["cov_logdet"], params={"dim": d, "estimator": estimator})
    for g in (0, 24):
        assert z(values(df, "cov_logdet", g), theory.gaussian_log_det(1.0, m, g + 1, d, ddof)) < Z
    # d = 1, ddof 1 is exactly Shumailov et al.'s E[ln s2].
    assert theory.gaussian_log_det(1.0, 100, 50, 1, 1) == pytest.approx(
        theory.gaussian_unbiased_log_variance(1.0, 100, 50))


def test_gaussian_multivariate_trace(z):
    m, d = 30, 3
    df = run_one(family="gaussian", policy="replace", n_samples=m, generations=20, replicates=3000,
                 seed=2, metrics=["cov_trace"], params={"dim": d, "truth_std": 2.0})
    assert z(values(df, "cov_trace", 19), d * theory.gaussian_variance(4.0, m, 20)) < Z


def test_gaussian_unbiased_log_variance_drifts(z):
    """Shumailov et al. Thm 3.1: E[s2] stays at sigma^2 while E[ln s2] -> -inf."""
    m, gens = 10, 40
    df = run_one(family="gaussian", policy="replace", n_samples=m, generations=gens, replicates=4000,
                 seed=3, metrics=["variance", "mean"], params={"estimator": "unbiased"})
    last = gens - 1
    logs = np.log(values(df, "variance", last))
    assert z(logs, theory.gaussian_unbiased_log_variance(1.0, m, gens)) < Z
    assert theory.gaussian_unbiased_log_variance(1.0, m, gens) < -3  # a real drift
    # Var(X^n) = E[s2_n] + Var(mu_n) = sigma^2 (1 + n/M), pooled over chains. Its estimator
    # is heavy-tailed (s2 is a product of chi-squares), so compare with a bootstrap SE.
    v, mu = values(df, "variance", 9), values(df, "mean", 9)
    est = v.mean() + mu.var(ddof=1)
    rng = np.random.default_rng(0)
    boots = [v[i].mean() + mu[i].var(ddof=1) for i in rng.integers(0, len(v), (300, len(v)))]
    assert abs(est - theory.gaussian_unbiased_sample_variance(1.0, m, 10)) < Z * np.std(boots)


def test_gaussian_temperature_closed_form(z):
    m = 50
    df = run_one(family="gaussian", policy="replace", n_samples=m, generations=10, replicates=3000,
                 seed=4, metrics=["variance"], params={"temperature": 0.9})
    assert z(values(df, "variance", 9), theory.gaussian_variance(1.0, m, 10, 0, 0.9)) < Z


@pytest.mark.parametrize("policy,formula", [("replace", theory.regression_replace_error),
                                            ("accumulate", theory.regression_accumulate_error)])
def test_linear_regression(policy, formula, z):
    d, t, gens = 10, 32, 10
    df = run_one(family="linear_regression", policy=policy, generations=gens, replicates=3000, seed=5,
                 metrics=["test_error"], params={"dim": d, "n_train": t, "noise": 1.0})
    for g in (0, 4, 9):
        expected = np.atleast_1d(formula(1.0, d, t, np.array([g + 1])))[0]
        assert z(values(df, "test_error", g), expected) < Z


@pytest.mark.parametrize("stats", [True, False])
def test_categorical_collision_probability(stats, z):
    n, k = 50, 200
    df = run_one(family="categorical", policy="replace", n_samples=n, generations=15, replicates=3000,
                 seed=6, metrics=["collision_probability"],
                 params={"n_outcomes": k, "truth": "zipf", "zipf_beta": 1.2, "sufficient_stats": stats})
    p = np.arange(1, k + 1, dtype=float) ** -1.2
    s0 = ((p / p.sum()) ** 2).sum()
    for g in (0, 7, 14):
        assert z(values(df, "collision_probability", g), theory.collision_probability(s0, n, g + 1)) < Z


def test_zipf_tail_cut_memorizer(z):
    """A memorizer trained on T draws from a Zipf truth cut at rank k: its realized error
    (true mass of unseen outcomes) matches sum_i p_i (1 - q_i)^T."""
    beta, support, k, t = 2.0, 2000, 50, 500
    p = np.arange(1, support + 1, dtype=float) ** -beta
    p /= p.sum()
    q = np.where(np.arange(support) < k, p, 0.0)
    q /= q.sum()
    rng = np.random.default_rng(7)
    counts = rng.multinomial(t, q, size=4000)
    errors = ((counts == 0) * p).sum(axis=1)
    assert z(errors, theory.zipf_tail_cut_error(beta, support, t, k)) < Z


def test_hutter_error_metric_is_the_formula():
    """The metric on a model equal to the tail-cut truth is exactly the closed form."""
    from modelcollapse.metrics import METRICS, MetricContext
    from modelcollapse.families.categorical import Categorical, CategoricalModel, CategoricalParams
    beta, support, k, t = 2.0, 5000, 100, 10_000
    fam = Categorical(CategoricalParams(n_outcomes=support, zipf_beta=beta, hutter_T=t), 100)
    p = fam.truth_probs()
    q = np.where(np.arange(support) < k, p, 0.0)
    ctx = MetricContext(fam, CategoricalModel((q / q.sum())[None]), None, 0, 100)
    assert METRICS.get("hutter_error").fn(ctx)[0] == pytest.approx(
        theory.zipf_tail_cut_error(beta, support, t, k), rel=1e-10)


def test_theory_curve_absent_when_undefined():
    curve = theory.curve("linear_regression", "replace", {"noise": 1.0, "dim": 10, "n_train": 11,
                         "truncation": 1.0, "temperature": 1.0}, 11, "test_error", np.arange(3))
    assert curve.values is None and "T=11" in curve.reason


def test_accumulate_stops_gaussian_collapse():
    df = run_one(family="gaussian", policy="accumulate", n_samples=20, generations=30, replicates=500,
                 seed=8, metrics=["variance"])
    final = matrix(df, "variance")[-1]
    # Replace would be at ((19/20)^30) = 0.21; accumulate keeps the variance near 1.
    assert final.mean() > 0.8
