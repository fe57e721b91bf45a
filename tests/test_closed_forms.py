"""The closed forms added for issue 17 against simulation, within Monte Carlo error
(Z standard errors of the mean over replicates; fixed seeds, so deterministic):
Gaussian accumulate / accumulate-subsample / fresh-real mix (and its steady state),
E[W2^2] under replace, fixed-real mixing (Bertrand et al.'s setting, numpy chains),
Wright-Fisher support size, missing mass, absorption and loss times, categorical mix."""

import numpy as np
import pytest

from helpers import matrix, run_one, values
from modelcollapse import theory
from modelcollapse.api import make_study
from modelcollapse.closed_forms import categorical as wf
from modelcollapse.closed_forms import gaussian as gf
from modelcollapse.forgetting import forget_times

Z = 4.0


def _overlay(**kw):
    cell = make_study(**kw).cells[0]
    def at(metric, gens):
        c = theory.curve(cell.family, cell.policy, cell.params, cell.n_samples, metric, np.asarray(gens))
        assert c is not None and c.values is not None, metric
        return c.values
    return at


@pytest.mark.parametrize("policy,extra", [("accumulate", {}), ("accumulate_subsample", {"keep": 6}),
                                          ("mix", {"real_fraction": 0.25, "real_source": "fresh"})])
@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
def test_gaussian_pooled_policies(policy, extra, estimator, z):
    kw = dict(family="gaussian", policy=policy, n_samples=8, generations=12, replicates=3000, seed=21,
              metrics=["variance", "mean_error"], params={"estimator": estimator, **extra})
    df = run_one(**kw)
    at = _overlay(**kw)
    for g in (0, 4, 11):
        assert z(values(df, "variance", g), at("variance", [g])[0]) < Z, (g, "variance")
        assert z(values(df, "mean_error", g), at("mean_error", [g])[0]) < Z, (g, "mean_error")


def test_accumulate_mean_error_below_the_simple_sum_and_the_bound():
    v, r = gf.accumulate(1.0, 20, 200)
    simple = gf.accumulate_mean_sq_simple(1.0, 20, np.arange(1, 201))
    assert np.all(r <= simple + 1e-15) and r[-1] < gf.dey_donoho_bound(1.0, 20)
    assert simple[-1] == pytest.approx(np.pi**2 / 6 / 20, rel=0.01)
    # The unbiased fit keeps the sampler near sigma^2, so the simple sum is nearly exact.
    _, r1 = gf.accumulate(1.0, 20, 200, ddof=1)
    assert r1[-1] == pytest.approx(simple[-1], rel=0.01)


def test_mix_steady_state_is_the_limit():
    v, r, _ = gf.mix(1.0, 5, 15, 400, 0, "fresh")
    assert gf.steady_state(1.0, 5, 15, 0, "fresh") == pytest.approx((v[-1], r[-1]), rel=1e-10)
    assert wf.mix_collision(0.01, 10, 30, 500)[-1] == pytest.approx(wf.mix_collision_steady(0.01, 10, 30))
    # k = 0 is Seddik et al.'s replace form.
    np.testing.assert_allclose(wf.mix_collision(0.02, 0, 50, 10),
                               theory.collision_probability(0.02, 50, np.arange(1, 11)))


def test_w2_squared_under_replace(z):
    m = 10
    df = run_one(family="gaussian", policy="replace", n_samples=m, generations=15, replicates=4000,
                 seed=22, metrics=["w2_to_truth"])
    for g in (0, 7, 14):
        assert z(values(df, "w2_to_truth", g) ** 2, gf.replace_w2_squared(1.0, m, g + 1)) < Z


@pytest.mark.parametrize("ddof", [0, 1])
def test_fixed_real_mix_bertrand_setting(ddof, z):
    """The same k real points every generation plus s = lambda k synthetic ones; generation 0
    is the fit on the real points alone. Plain numpy chains (independent of the engine)."""
    k, s, gens, reps = 6, 12, 10, 6000
    rng = np.random.default_rng(23)
    real = rng.standard_normal((reps, k))
    mu0 = mu = real.mean(1)
    var = real.var(1, ddof=ddof)
    v, r, dist0 = gf.mix(1.0, k, s, gens, ddof, "fixed")
    for g in range(1, gens):
        x = np.concatenate([real, mu[:, None] + np.sqrt(var)[:, None] * rng.standard_normal((reps, s))], 1)
        mu, var = x.mean(1), x.var(1, ddof=ddof)
        if g in (1, 5, 9):
            assert z(var, v[g]) < Z and z(mu**2, r[g]) < Z and z((mu - mu0) ** 2, dist0[g]) < Z


def test_wright_fisher_support_and_missing_mass(z):
    kw = dict(family="categorical", policy="replace", n_samples=30, generations=25, replicates=3000,
              seed=24, metrics=["support_size", "missing_mass"],
              params={"n_outcomes": 40, "truth": "zipf", "zipf_beta": 1.1})
    df = run_one(**kw)
    at = _overlay(**kw)
    for g in (0, 8, 24):
        assert z(values(df, "support_size", g), at("support_size", [g])[0]) < Z
        assert z(values(df, "missing_mass", g), at("missing_mass", [g])[0]) < Z


def test_categorical_fresh_mix_collision(z):
    kw = dict(family="categorical", policy="mix", n_samples=40, generations=20, replicates=3000, seed=25,
              metrics=["collision_probability"],
              params={"n_outcomes": 60, "real_fraction": 0.25, "real_source": "fresh"})
    df = run_one(**kw)
    at = _overlay(**kw)
    for g in (0, 5, 19):
        assert z(values(df, "collision_probability", g), at("collision_probability", [g])[0]) < Z


def test_wright_fisher_absorption_and_loss_times(z):
    """Two equally likely outcomes, n = 16 draws: the generation at which one of them is
    lost (absorption) and, per outcome, the generation at which it is lost given that it is."""
    n = 16
    cell = make_study(family="categorical", policy="replace", n_samples=n, generations=400,
                      replicates=3000, seed=26, params={"n_outcomes": 2, "truth": "uniform"}).cells[0]
    ft = forget_times(cell)
    start = ft["count0"].to_numpy()
    lost = ft["forgotten_at"].to_numpy()
    assert (lost[ft["count0"] == 0] == 0).all()           # never drawn: lost at generation 0
    absorb = ft.groupby("replicate")["forgotten_at"].max().to_numpy()
    assert (absorb >= 0).all()                            # horizon 400 >> n: every chain absorbed
    t = wf.absorption_time(n)
    assert z(absorb, float((wf.binom.pmf(np.arange(n + 1), n, 0.5) * t).sum())) < Z
    # Per outcome, given loss: E[T | loss, count0 = c] = loss_time(n)[c] (the clock starts at
    # generation 0, which holds count0).
    lt = wf.loss_time(n)
    for c in (4, 8):
        sel = (start == c) & (lost >= 0)
        assert z(lost[sel], lt[c]) < Z
    # The diffusion approximations are close to the exact chain at moderate n.
    big = 400
    assert wf.absorption_time(big)[200] == pytest.approx(wf.absorption_time_diffusion(big, 0.5), rel=0.01)
    assert wf.loss_time(big)[10] == pytest.approx(wf.loss_time_diffusion(big, 10 / big), rel=0.03)


def test_forget_times_agree_with_support_size():
    kw = dict(family="categorical", policy="replace", n_samples=20, generations=12, replicates=50, seed=27,
              metrics=["support_size"], params={"n_outcomes": 30})
    df = run_one(**kw)
    ft = forget_times(make_study(**kw).cells[0])
    alive = matrix(df, "support_size")                    # (G, R)
    lost = ft.pivot(index="replicate", columns="outcome", values="forgotten_at").to_numpy()
    for g in (0, 5, 11):
        np.testing.assert_array_equal(((lost < 0) | (lost > g)).sum(axis=1), alive[g])


@pytest.mark.parametrize("source", ["fixed", "fresh"])
def test_gaussian_mix_with_absolute_sizes(source, z):
    """mix with n_real and n_synthetic: 'fixed' keeps the same n_real points (generation 0 is
    their fit: Bertrand et al.'s setting), 'fresh' draws new ones; both against the exact
    recursion through the engine."""
    kw = dict(family="gaussian", policy="mix", generations=10, replicates=3000, seed=28,
              metrics=["variance", "mean_error"],
              params={"n_real": 6, "n_synthetic": 12, "real_source": source})
    df = run_one(**kw)
    at = _overlay(**kw)
    for g in (0, 3, 9):
        assert z(values(df, "variance", g), at("variance", [g])[0]) < Z, (g, "variance")
        assert z(values(df, "mean_error", g), at("mean_error", [g])[0]) < Z, (g, "mean_error")
