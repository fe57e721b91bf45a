"""Ridge / minimum-norm regression, power-law spectra, T0 != T, fixed and fresh designs:
the fit against scikit-learn and pinv, the incremental normal equations against a fit from
scratch, and the simulated test error against the exact expectation (closed form, or exact
given the design and averaged over designs by Monte Carlo: the tolerance then adds both
standard errors)."""

import numpy as np
import pytest

from helpers import run_one, values
from modelcollapse import theory
from modelcollapse.api import make_study
from modelcollapse.closed_forms import regression
from modelcollapse.errors import UserError
from modelcollapse.families.linear_regression import solve_ridge

Z = 4.0


def _gram(x, y):
    return np.swapaxes(x, 1, 2) @ x, np.einsum("rnd,rn->rd", x, y)


def test_fit_is_sklearn_ridge_and_min_norm_pinv():
    from sklearn.linear_model import Ridge
    rng = np.random.default_rng(0)
    for n, d in ((30, 5), (8, 20)):
        x, y = rng.standard_normal((3, n, d)), rng.standard_normal((3, n))
        for alpha in (0.0, 0.7, 10.0):
            w = solve_ridge(*_gram(x, y), alpha)
            for r in range(3):
                ref = (np.linalg.pinv(x[r]) @ y[r] if alpha == 0
                       else Ridge(alpha=alpha, fit_intercept=False).fit(x[r], y[r]).coef_)
                np.testing.assert_allclose(w[r], ref, rtol=1e-8, atol=1e-10)


def test_incremental_normal_equations_equal_a_fresh_fit():
    """Accumulate extends the previous Gram matrix with the new rows; a cell fitted from
    scratch each generation (accumulate_subsample keeping everything) gives the same fit."""
    kw = dict(family="linear_regression", generations=5, replicates=50, seed=3, metrics=["test_error"])
    from modelcollapse.families import linear_regression as lr
    inc = run_one(policy="accumulate", params={"dim": 6, "n_train": 12, "ridge": 0.5}, **kw)
    real_fit = lr.LinearRegression.fit

    def scratch(self, data, previous, stream):
        if previous is not None:
            previous.values_ = None   # forces the fit from scratch
        return real_fit(self, data, previous, stream)

    from unittest import mock
    with mock.patch.object(lr.LinearRegression, "fit", scratch):
        full = run_one(policy="accumulate", params={"dim": 6, "n_train": 12, "ridge": 0.5}, **kw)
    np.testing.assert_allclose(inc["value"], full["value"], rtol=1e-9)


def _cell(policy, **params):
    return make_study(family="linear_regression", policy=policy, generations=6, replicates=1000,
                      seed=11, metrics=["test_error"], params={"noise": 1.0, **params}).cells[0]


CASES = [
    ("replace", dict(dim=10, n_train=32, ridge=5.0)),                       # ridge: MC over X
    ("accumulate", dict(dim=10, n_train=32, ridge=5.0)),
    ("replace", dict(dim=40, n_train=20)),                                  # d > T: min-norm
    ("accumulate", dict(dim=40, n_train=20)),
    ("replace", dict(dim=40, n_train=20, n_gen=30, design="fresh")),        # fresh, T0 != T
    ("replace", dict(dim=10, n_train=32, n_gen=20, spectrum="power_law", spectrum_exponent=1.5)),
    ("accumulate", dict(dim=10, n_train=16, n_gen=24, ridge=2.0, design="fresh", spectrum="power_law")),
    ("replace", dict(dim=10, n_train=32, temperature=0.8, truncation=0.9)),
    ("accumulate", dict(dim=10, n_train=20, n_gen=30)),                     # fixed, T0 != T: MC
    ("mix", dict(dim=10, n_train=32, real_fraction=0.25, real_source="fresh", ridge=1.0)),
    ("mix", dict(dim=8, n_train=24, real_fraction=0.5, real_source="fresh", design="fresh")),
]


@pytest.mark.parametrize("policy,params", CASES)
def test_expected_test_error(policy, params):
    cell = _cell(policy, **params)
    df = run_one(family="linear_regression", policy=policy, generations=6, replicates=1000, seed=11,
                 metrics=["test_error"], params={"noise": 1.0, **params})
    curve = theory.curve(cell.family, cell.policy, cell.params, cell.n_samples, "test_error", np.arange(6))
    assert curve is not None and curve.values is not None
    for g in (0, 2, 5):
        v = values(df, "test_error", g)
        se = v.std(ddof=1) / np.sqrt(len(v))
        se_theory = 0.0 if curve.stderr is None else curve.stderr[g]
        assert abs(v.mean() - curve.values[g]) < Z * np.hypot(se, se_theory), (g, v.mean(), curve.values[g])


def test_closed_forms_agree_with_the_conditional_expectation():
    """The exact forms averaged over designs equal the Monte Carlo over X of the exact
    conditional expectation (independent of the simulator)."""
    for s, policy in [(regression.Setting(10, 32, 32, 1.0), "accumulate"),
                      (regression.Setting(30, 12, 12, 1.0), "replace"),
                      (regression.Setting(30, 12, 12, 1.0), "accumulate"),
                      (regression.Setting(30, 12, 20, 1.0, design="fresh"), "replace")]:
        exact, se, _ = regression.expected_error(s, policy, 8)
        assert se is None
        mc, mc_se = regression.monte_carlo(s, policy, 8, n_designs=3000, seed=1)
        assert np.all(np.abs(mc - exact) < Z * mc_se), (s, mc, exact)


def test_min_norm_is_no_longer_undefined_and_the_singular_range_is():
    params = dict(noise=1.0, dim=40, n_train=20, ridge=0.0, spectrum="isotropic", n_gen=0,
                  design="fixed", truncation=1.0, temperature=1.0, spectrum_exponent=1.0)
    c = theory.curve("linear_regression", "replace", params, 20, "test_error", np.arange(3))
    assert c.values is not None and c.values[0] == pytest.approx(0.5 + 20 / 19)
    c = theory.curve("linear_regression", "replace", {**params, "n_train": 41}, 41, "test_error", np.arange(3))
    assert c.values is None and "infinite" in c.reason
    c = theory.curve("linear_regression", "replace", {**params, "n_train": 41, "ridge": 1.0}, 41,
                     "test_error", np.arange(3))
    assert c.values is not None and c.stderr is not None


def test_bad_regression_params():
    with pytest.raises(UserError, match="params.ridge"):
        make_study(family="linear_regression", params={"ridge": -1.0})
    with pytest.raises(UserError, match="params.spectrum"):
        make_study(family="linear_regression", params={"spectrum": "zipf"})
    with pytest.raises(UserError, match="params.n_gen"):
        make_study(family="linear_regression", params={"n_gen": 1})


def test_fresh_real_rows_lie_on_the_fixed_design():
    """Under mix with fresh real data, the real part of a later training set is rows 0..k-1
    of the replicate's one fixed design and the synthetic part the remaining rows (the loop
    builds the real source twice per chunk; both must share the design)."""
    from unittest import mock
    from modelcollapse.families import linear_regression as lr
    seen = []
    real_fit = lr.LinearRegression.fit

    def fit(self, data, previous, stream):
        model = real_fit(self, data, previous, stream)
        seen.append((data.values[:, :, :4].copy(), model.design_))
        return model

    with mock.patch.object(lr.LinearRegression, "fit", fit):
        run_one(family="linear_regression", policy="mix", generations=3, replicates=3, seed=5,
                metrics=["test_error"], params={"dim": 4, "n_train": 12, "real_fraction": 0.25,
                                                "real_source": "fresh"})
    for x, design in seen:
        np.testing.assert_array_equal(x, design)   # rows 0..2 real, 3..11 synthetic: the design
