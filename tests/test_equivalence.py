"""Exact sufficient statistics and explicit samples are two ways to draw the same chain:
the distribution of every metric must agree (two-sample KS test and means)."""

import numpy as np
import pytest
from scipy import stats as st

from helpers import values, run_one


@pytest.mark.parametrize("setting,metric", [
    (dict(family="gaussian", policy="replace", n_samples=15), "variance"),
    (dict(family="gaussian", policy="accumulate", n_samples=15, params={"dim": 2}), "cov_logdet"),
    (dict(family="gaussian", policy="mix", n_samples=15, params={"real_fraction": 0.2, "real_source": "fresh",
                                                                  "temperature": 0.8}), "kl_to_truth"),
    (dict(family="categorical", policy="replace", n_samples=40, params={"n_outcomes": 25}), "entropy"),
    (dict(family="categorical", policy="accumulate", n_samples=40,
          params={"n_outcomes": 25, "truncation": 0.9}), "support_size"),
])
def test_stats_and_samples_agree(setting, metric):
    params = setting.get("params", {})
    kw = dict(setting, generations=8, replicates=2000)
    fast = run_one(**{**kw, "params": {**params, "sufficient_stats": True}}, seed=1)
    slow = run_one(**{**kw, "params": {**params, "sufficient_stats": False}}, seed=2)
    a, b = values(fast, metric, 7), values(slow, metric, 7)
    assert st.ks_2samp(a, b).pvalue > 1e-3
    se = np.sqrt(a.var() / len(a) + b.var() / len(b))
    assert abs(a.mean() - b.mean()) < 4 * se


def test_auto_picks_stats_when_exact():
    from modelcollapse.api import make_study
    assert make_study(family="gaussian").cells[0].params["sufficient_stats"] is True
    assert make_study(family="gaussian", params={"truncation": 0.9}).cells[0].params["sufficient_stats"] is False
    assert make_study(family="gaussian", policy="mix").cells[0].params["sufficient_stats"] is False
    assert make_study(family="gmm").cells[0].params["sufficient_stats"] is False
