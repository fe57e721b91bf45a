"""Bertrand et al. (2024)'s stability bound, checked on the loop: the Gaussian under mix with
the same n_real real points every generation plus lambda n_real synthetic ones (see
closed_forms/stability.py for exactly what is and is not checked)."""

from __future__ import annotations

import numpy as np
import pytest

from modelcollapse.api import run
from modelcollapse.closed_forms.stability import gaussian_fixed_mix, stability_bound

K, GENS, REPS = 20, 40, 2000


def _run(lam: float, estimator: str, dim: int, metrics: list[str]):
    s = int(round(lam * K))
    df = run(family="gaussian", policy="mix", generations=GENS, replicates=REPS, seed=31,
             metrics=metrics, params={"n_real": K, "n_synthetic": s, "real_source": "fixed",
                                      "estimator": estimator, "dim": dim})
    return s, {m: df[df.metric == m].pivot(index="replicate", columns="generation",
                                           values="value").to_numpy() for m in metrics}


@pytest.mark.parametrize("lam", [0.25, 1.0, 4.0])
@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
def test_distance_to_generation_0_stays_under_the_bound(lam, estimator):
    s, wide = _run(lam, estimator, 1, ["mean"])
    ddof = 0 if estimator == "mle" else 1
    forms = gaussian_fixed_mix(1.0, 1, K, s, GENS, ddof)
    sq = (wide["mean"] - wide["mean"][:, :1]) ** 2          # (R, G) |mu_g - mu_0|^2 per chain
    mean_sq, se = sq.mean(axis=0), sq.std(axis=0, ddof=1) / np.sqrt(REPS)
    # Under the bound (in mean square) within Monte Carlo error, at every generation ...
    assert np.all(mean_sq <= forms["bound_gen0"] ** 2 + 4 * se)
    # ... and the exact value is under it too; the simulation agrees with the exact value.
    assert np.all(forms["exact_gen0"] <= forms["bound_gen0"] + 1e-15)
    late = slice(10, None)
    assert np.all(np.abs(mean_sq[late] - forms["exact_gen0"][late] ** 2) < 4 * se[late] + 1e-12)
    # The bound is not vacuous: it levels off at lambda sqrt(v / n_s), sqrt(1 + 2 lambda)
    # times the exact stationary distance ...
    ratio = forms["bound_gen0"][-1] / forms["exact_gen0"][-1]
    assert ratio == pytest.approx(np.sqrt(1 + 2 * lam), rel=0.05)
    # ... and the accumulation over steps matters: one step's error alone is exceeded
    # (by the factor 1 / (1 - rho^2) in mean square, visible from lambda = 1 on).
    if lam >= 1:
        assert mean_sq[-1] > forms["step_error"][-1] ** 2 + 4 * se[-1]


@pytest.mark.parametrize("lam", [0.5, 4.0])
def test_distance_to_the_truth_stays_under_the_bound(lam):
    """sqrt(E|mu_g - mu_true|^2) <= sqrt(d sigma^2 / n_r) + the bound, in 3 dimensions."""
    s, wide = _run(lam, "mle", 3, ["mean_error"])
    forms = gaussian_fixed_mix(1.0, 3, K, s, GENS, 0)
    err = wide["mean_error"]                                  # (R, G) |mu_g - mu_true|^2
    mean_sq, se = err.mean(axis=0), err.std(axis=0, ddof=1) / np.sqrt(REPS)
    assert np.all(mean_sq <= forms["bound_truth"] ** 2 + 4 * se)


def test_the_general_bound():
    t = np.arange(6)
    assert np.allclose(stability_bound(0.5, 1.0, 4.0, t), 0.5**t * 4 + (1 - 0.5**t) / 0.5)
    assert np.isinf(stability_bound(1.0, 1.0, 0.0, t)).all()   # no contraction: no promise
    # the retraining rate is lambda / (1 + lambda): below 1 for every lambda
    forms = gaussian_fixed_mix(1.0, 1, 10, 1000, 5)
    assert forms["rate"][0] == pytest.approx(100 / 101)
    assert np.isfinite(forms["bound_gen0"]).all()
