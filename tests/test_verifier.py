"""Feng et al. (2024): a verifier prunes labelled synthetic data; the labels family and the
verified policy against the closed forms, with tolerances from the Monte Carlo error."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from helpers import matrix, run_one
from modelcollapse.errors import UserError
from modelcollapse.families.base import Sampling
from modelcollapse.families.labels import Labels, LabelsParams, LabelStats
from modelcollapse.theory import verifier_breakdown, verifier_pruned_error

PHI, PSI = 0.9, 0.3
P_STAR = verifier_breakdown(PHI, PSI)   # 0.75


def verified(p: float, n_samples: int, generations: int = 2, replicates: int = 20,
             n_inputs: int = 50, **params) -> pd.DataFrame:
    return run_one(family="labels", policy="verified", n_samples=n_samples,
                   generations=generations, replicates=replicates,
                   params={"label_noise": p, "n_inputs": n_inputs, "phi": PHI, "psi": PSI, **params})


def within(values: np.ndarray, expected: float, k: float = 4.0) -> None:
    """The mean of ``values`` (one per replicate) is ``expected`` within k standard errors."""
    se = values.std(ddof=1) / np.sqrt(values.size)
    assert abs(values.mean() - expected) <= k * se, (values.mean(), expected, se)


def majority_error(p: float, n: int, k: int) -> float:
    """Exact expected error rate of a majority classifier fitted on verified data from a
    correct generator: per input, kept T ~ Binomial(n, a / K) with a = p psi + (1-p) phi,
    wrong W | T ~ Binomial(T, p'); wrong when W > T - W, a coin when W = T - W."""
    t = np.arange(n + 1)
    pt = stats.binom.pmf(t, n, (p * PSI + (1 - p) * PHI) / k)
    q = verifier_pruned_error(p, PHI, PSI)
    wrong = stats.binom.sf(t // 2, t, q) + 0.5 * np.where(t % 2 == 0, stats.binom.pmf(t // 2, t, q), 0.0)
    return float(pt @ wrong)


@pytest.mark.parametrize("p", [0.3, 0.8])
def test_train_error_is_the_pruned_error(p):
    df = verified(p, n_samples=5000, replicates=40)
    train = matrix(df, "train_error")
    assert (train[0] == 0.0).all()   # generation 0 learns from real data, all correct
    within(train[1], verifier_pruned_error(p, PHI, PSI))


@pytest.mark.parametrize("p", [0.6, 0.75, 0.85])
def test_error_rate_follows_the_exact_majority_law(p):
    # 16 examples per input: majorities are often wrong near p*, and ties (coins) happen.
    df = verified(p, n_samples=800, replicates=60)
    within(matrix(df, "error_rate")[1], majority_error(p, 800, 50))


def test_breakdown_is_sharp_and_a_wrong_model_recovers():
    below = matrix(verified(P_STAR - 0.1, n_samples=20000, generations=3), "error_rate")
    above = verified(P_STAR + 0.1, n_samples=20000, generations=3)
    err = matrix(above, "error_rate")
    assert below[1].mean() < 0.01 and below[2].mean() < 0.01
    assert err[1].mean() > 0.99
    # Wrong everywhere, the generator writes wrong labels at rate 1 - p < p*: the next
    # model is right again.
    within(matrix(above, "train_error")[2], verifier_pruned_error(1 - (P_STAR + 0.1), PHI, PSI))
    assert err[2].mean() < 0.01


def test_chunk_size_does_not_change_results():
    # 3 examples per input: empty inputs and ties exercise the fit stream's coins.
    kw = dict(n_samples=150, generations=4, replicates=5, n_inputs=50)
    a, b = verified(0.4, **kw), verified(0.4, chunk_size=1, **kw)
    pd.testing.assert_frame_equal(a, b)
    assert 0 < matrix(a, "error_rate")[1:].mean() < 1


def test_verify_keeps_rates_exactly_at_the_extremes():
    counts = np.arange(24, dtype=np.int64).reshape(3, 4, 2)
    gens = [np.random.default_rng(i) for i in range(3)]
    kept = LabelStats(counts, 0).verify(1.0, 0.0, gens)
    np.testing.assert_array_equal(kept.counts[..., 0], counts[..., 0])
    assert (kept.counts[..., 1] == 0).all() and (kept.wrong_share() == 0).all()
    with pytest.raises(ValueError, match="synthetic"):
        LabelStats(counts, 5).verify(0.9, 0.1, gens)


def test_sampling_bias_changes_the_flip_rate():
    family = Labels(LabelsParams(label_noise=0.2), 1000)
    assert family.noise(Sampling()) == pytest.approx(0.2)
    assert family.noise(Sampling(temperature=0.5)) == pytest.approx(0.04 / (0.04 + 0.64))
    assert family.noise(Sampling(truncation=0.8)) == 0.0   # the top-p nucleus is the prediction
    df = verified(0.2, n_samples=1000, replicates=3, truncation=0.8)
    assert (matrix(df, "train_error") == 0.0).all()


def test_mix_with_fresh_real_data_keeps_provenance():
    df = run_one(family="labels", policy="mix", n_samples=8000, generations=2, replicates=30,
                 params={"label_noise": 0.2, "n_inputs": 40, "real_fraction": 0.25,
                         "real_source": "fresh"})
    assert (matrix(df, "real_share")[1] == 0.25).all()
    within(matrix(df, "train_error")[1], 0.75 * 0.2)


@pytest.mark.parametrize("name, value", [("label_noise", 1.5), ("label_noise", -0.1),
                                         ("n_inputs", 0), ("phi", 0.0), ("phi", 1.2),
                                         ("psi", -0.1), ("psi", 1.01)])
def test_bad_params_are_user_errors(name, value):
    with pytest.raises(UserError, match=f"params.{name} must be"):
        run_one(family="labels", policy="verified", generations=2, replicates=2,
                params={name: value})


def test_verified_needs_labelled_data():
    with pytest.raises(UserError, match="policy verified needs a family with verifiable labels; family gaussian has none"):
        run_one(family="gaussian", policy="verified", generations=2, replicates=2)


@pytest.mark.parametrize("params", [{"sufficient_stats": False},
                                    {"real_fraction": 0.1}])   # mix from a fixed pool subsamples data
def test_labels_run_on_counts_only(params):
    with pytest.raises(UserError, match="keeps its data as sufficient statistics only"):
        run_one(family="labels", policy="mix" if "real_fraction" in params else "replace",
                generations=2, replicates=2, params=params)


def test_verifier_that_keeps_nothing_is_reported():
    with pytest.raises(UserError, match="kept none of the 2 samples for generation 1"):
        run_one(family="labels", policy="verified", n_samples=2, generations=2, replicates=2,
                params={"n_inputs": 1, "label_noise": 0.0, "phi": 1e-9, "psi": 0.0})
