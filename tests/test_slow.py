"""Long statistical checks, deselected by default: run with `pytest -m slow`."""

import numpy as np
import pytest

from helpers import values, run_one
from modelcollapse import theory

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("stats", [True, False])
def test_long_mle_chain_matches_theory(stats, z):
    """1,000 generations of the MLE refit at M = 100 (the benchmark setting). Late in the
    chain s2 is log-normal-like (sd of ln s2 ~ 4.5 at n = 1000), so its replicate mean is
    dominated by rare chains and says little; ln s2 is checked at every horizon instead, and
    s2 itself only while its spread is moderate (n = 100)."""
    df = run_one(family="gaussian", policy="replace", n_samples=100, generations=1000, replicates=2000,
                 seed=21, metrics=["variance", "mean_error", "cov_logdet"],
                 params={"sufficient_stats": stats})
    assert z(values(df, "variance", 99), theory.gaussian_variance(1.0, 100, 100)) < 4
    for g in (99, 499, 999):
        assert z(values(df, "cov_logdet", g), theory.gaussian_log_det(1.0, 100, g + 1)) < 4
        assert z(values(df, "mean_error", g), theory.gaussian_mean_sq(1.0, 100, g + 1)) < 4


def test_unbiased_log_variance_over_500_generations(z):
    df = run_one(family="gaussian", policy="replace", n_samples=20, generations=500, replicates=20000,
                 seed=22, metrics=["variance"], params={"estimator": "unbiased"})
    for g in (49, 499):
        logs = np.log(values(df, "variance", g))
        assert z(logs, theory.gaussian_unbiased_log_variance(1.0, 20, g + 1)) < 4
