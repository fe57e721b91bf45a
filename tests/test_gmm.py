"""Batched EM against scikit-learn's GaussianMixture on identical data."""

import numpy as np
import pytest

from modelcollapse.families.gmm import fit_em
from modelcollapse.families.mixture import ring
from modelcollapse.randomness import SeedTree, Stream

sklearn = pytest.importorskip("sklearn.mixture")


def test_em_matches_sklearn_fit_quality():
    truth = ring(2, 4, 3.0, 0.6)
    r = 6
    x = np.stack([truth.sample(400, Stream(SeedTree(i, "data"), "real", [0]))[0] for i in range(r)])
    ours = fit_em(x, 4, None, Stream(SeedTree(0, "em"), "fit", range(r)), 200, 1e-6, 1e-6)
    for i in range(r):
        gm = sklearn.GaussianMixture(4, tol=1e-6, max_iter=200, random_state=0).fit(x[i])
        # Both are local optima of the same likelihood; on well-separated data they coincide.
        assert ours.log_likelihood_[i] == pytest.approx(gm.score(x[i]), abs=2e-3)


def test_em_replicates_are_independent_of_batch():
    truth = ring(2, 3, 3.0, 0.5)
    from modelcollapse.families.mixture import broadcast
    x = broadcast(truth, 4).sample(300, Stream(SeedTree(1, "d"), "real", range(4)))
    together = fit_em(x, 3, None, Stream(SeedTree(0, "em"), "fit", range(4)), 100, 1e-3, 1e-6)
    alone = fit_em(x[2:3], 3, None, Stream(SeedTree(0, "em"), "fit", [2]), 100, 1e-3, 1e-6)
    np.testing.assert_array_equal(together.mixture.means[2], alone.mixture.means[0])
    assert together.n_iter_[2] == alone.n_iter_[0]


def test_mixture_l2_distance_closed_form_vs_grid():
    from modelcollapse.families.mixture import Mixture, l2_distance
    a = ring(2, 3, 2.0, 0.7)
    b = Mixture(np.array([[0.5, 0.5]]), np.array([[[0.0, 0.0], [1.0, 1.0]]]),
                np.broadcast_to(np.eye(2), (1, 2, 2, 2)).copy())
    g = np.linspace(-7, 7, 561)
    xx, yy = np.meshgrid(g, g)
    pts = np.stack([xx.ravel(), yy.ravel()], axis=1)[None]
    diff = np.exp(a.logpdf(pts)) - np.exp(b.logpdf(pts))
    grid = np.sqrt((diff**2).sum() * (g[1] - g[0]) ** 2)
    assert l2_distance(a, b)[0] == pytest.approx(grid, rel=1e-4)
