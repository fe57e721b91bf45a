"""The rank-k tail cut ("A tale of tails", Dohmatob, Feng, Yang, Charton and Kempe 2024): the
categorical sampler's top_k, and its overlay against the loop within Monte Carlo error."""

from __future__ import annotations

import numpy as np
import pytest

from modelcollapse import theory
from modelcollapse.api import make_study, run
from modelcollapse.closed_forms.categorical import top_k_plateau, top_k_replace
from modelcollapse.errors import UserError
from modelcollapse.families.base import Sampling
from modelcollapse.families.categorical import biased, top_k_cut, zipf_probs


def test_top_k_cut_keeps_the_k_largest_with_ties_to_the_lower_index():
    q = np.array([[0.1, 0.3, 0.2, 0.2, 0.2],
                  [0.5, 0.5, 0.0, 0.0, 0.0]])
    out = top_k_cut(q, 2)
    assert np.allclose(out[0], [0, 0.6, 0.4, 0, 0])    # 0.3, then the first 0.2
    assert np.array_equal(out[1], q[1])                # two outcomes: nothing to cut
    assert np.array_equal(top_k_cut(q, 5), q)
    # top-k first, then top-p on what is left (as samplers usually chain them)
    both = biased(q[:1], Sampling(truncation=0.5), top_k=3)
    assert np.allclose(both, [[0, 0.6, 0.4, 0, 0]])


def test_top_k_is_validated_and_not_stored_when_unset():
    with pytest.raises(UserError, match="top_k must be >= 0"):
        make_study(family="categorical", params={"top_k": -1})
    cell = make_study(family="categorical").cells[0]
    assert "top_k" not in cell.params   # existing cells keep their keys and seeds


def test_rank_k_cut_matches_its_closed_form_within_monte_carlo_error():
    k, n, gens, reps = 20, 100, 8, 2000
    params = {"n_outcomes": 200, "zipf_beta": 1.2, "top_k": k}
    df = run(family="categorical", policy="replace", n_samples=n, generations=gens,
             replicates=reps, seed=3, metrics=["support_size", "missing_mass"], params=params)
    p = zipf_probs(200, 1.2)
    support, support_se, missing, missing_se = top_k_replace(p, n, k, gens, draws=20000, seed=1)
    plateau = top_k_plateau(p, k)
    for metric, mean, se in (("support_size", support, support_se),
                             ("missing_mass", missing, missing_se)):
        wide = df[df.metric == metric].pivot(index="replicate", columns="generation", values="value")
        sim, sim_se = wide.mean().to_numpy(), wide.std(ddof=1).to_numpy() / np.sqrt(reps)
        z = np.abs(sim - mean) / np.sqrt(sim_se**2 + se**2)
        assert z.max() < 4, (metric, sim, mean, z)
        if metric == "missing_mass":   # the plateau holds chain by chain from generation 1
            assert (wide.loc[:, 1:].to_numpy() >= plateau - 1e-12).all()
            assert missing[1] > missing[0] + 10 * missing_se[1]   # the cut costs mass at once
        else:
            assert (wide.loc[:, 1:].to_numpy() <= k).all()
    # The overlay the plots draw is this form, with its standard error.
    c = theory.curve("categorical", "replace", {**params, "truth": "zipf", "temperature": 1.0,
                                                "truncation": 1.0}, n, "missing_mass",
                     np.arange(gens))
    assert c is not None and c.stderr is not None and c.values.shape == (gens,)
    assert np.all(np.abs(c.values - missing) < 4 * np.sqrt(c.stderr**2 + missing_se**2) + 1e-12)


def test_the_plateau_is_the_mass_beyond_rank_k():
    """The first cut generation's missing mass exceeds the truth's mass beyond rank k and
    tends to it as the sample grows (the paper's plateau; 0.00605 for beta = 2, support 1e6,
    k = 100)."""
    p = zipf_probs(1000, 2.0)
    plateau = top_k_plateau(p, 10)
    excess = []
    for n in (300, 1000, 3000):
        _, _, missing, se = top_k_replace(p, n, 10, 2, draws=200)
        excess.append(missing[1] - plateau)
        assert excess[-1] > 0
    assert excess[0] > excess[1] > excess[2] and excess[2] < 0.03 * plateau
    big = np.arange(1, 10**6 + 1, dtype=float) ** -2.0
    assert top_k_plateau(big / big.sum(), 100) == pytest.approx(0.00605, abs=5e-5)
