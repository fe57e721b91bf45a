"""modelcollapse.summarize and modelcollapse.plot, and the categorical cell columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import modelcollapse as mc
from modelcollapse.errors import UserError


@pytest.fixture(scope="module")
def table():
    return mc.run(family=["gaussian", "categorical"], policy=["replace", "accumulate"],
                  generations=4, replicates=25)


def test_summarize_matches_direct_computation(table):
    s = mc.summarize(table)
    assert len(s) == table.groupby(["cell", "generation", "metric"], observed=True).ngroups
    row = s[(s.policy == "replace") & (s.family == "gaussian") & (s.generation == 3)
            & (s.metric == "variance")].iloc[0]
    v = table[(table.cell == row.cell) & (table.generation == 3)
              & (table.metric == "variance")].value.to_numpy()
    assert row.n == 25
    assert row["mean"] == pytest.approx(v.mean(), rel=1e-12)
    half = stats.t.ppf(0.975, 24) * v.std(ddof=1) / 5
    assert row.ci_low == pytest.approx(v.mean() - half, rel=1e-12)
    assert row.ci_high == pytest.approx(v.mean() + half, rel=1e-12)
    assert row["median"] == pytest.approx(np.median(v), rel=1e-12)
    assert row.q10 == pytest.approx(np.quantile(v, 0.1), rel=1e-12)
    assert row.q90 == pytest.approx(np.quantile(v, 0.9), rel=1e-12)
    assert list(s.columns[:6]) == ["cell", "label", "family", "policy", "generation", "metric"]


def test_summarize_coverage_of_the_ci():
    """The 95% interval of the mean covers the true mean about 95% of the time (one run per
    replicate set: E[variance] at generation 0 is (n-1)/n for the MLE)."""
    df = mc.run(family="gaussian", policy="replace", generations=1, replicates=4000,
                n_samples=20, metrics=["variance"])
    df = df.assign(cell=(df.replicate // 20).astype(str))   # 200 groups of 20 replicates
    s = mc.summarize(df, by=["cell"])
    covered = ((s.ci_low <= 19 / 20) & (19 / 20 <= s.ci_high)).mean()
    # binomial(200, 0.95): sd 0.015; the t interval on skewed chi-square data is a bit liberal
    assert 0.88 < covered < 0.99


def test_summarize_keeps_infinities_out():
    df = pd.DataFrame({"generation": [0, 0, 0], "metric": ["m", "m", "m"],
                       "value": [1.0, 3.0, -np.inf]})
    s = mc.summarize(df)
    assert s.loc[0, "n"] == 2 and s.loc[0, "mean"] == 2.0 and s.loc[0, "n_nonfinite"] == 1


def test_summarize_bad_input():
    with pytest.raises(UserError, match="tidy table"):
        mc.summarize(pd.DataFrame({"x": [1]}))
    with pytest.raises(UserError, match="level"):
        mc.summarize(pd.DataFrame({"generation": [0], "metric": ["m"], "value": [1.0]}), level=2)


def test_plot_from_memory_and_folder(table, tmp_path):
    fig = mc.plot(table, "variance", path=tmp_path / "v.png")
    assert (tmp_path / "v.png").stat().st_size > 1000
    ax = fig.axes[0]
    assert len(ax.lines) == 2   # two gaussian cells
    s = mc.summarize(table[table.metric == "variance"])
    first = s[s.label == ax.lines[0].get_label()]
    assert np.allclose(ax.lines[0].get_ydata(), first["mean"])
    fig = mc.plot(table, "variance", stat="median")
    assert np.allclose(fig.axes[0].lines[0].get_ydata(), first["median"])
    res = mc.run_study(mc.make_study(family="gaussian", generations=3, replicates=5),
                       tmp_path / "run", plots=False)
    assert len(mc.plot(tmp_path / "run", "variance").axes[0].lines) == 1
    assert len(mc.plot(res, "variance").axes[0].lines) == 1
    with pytest.raises(UserError, match="no rows"):
        mc.plot(table, "varianse")
    with pytest.raises(UserError, match="stat must be"):
        mc.plot(table, "variance", stat="mode")


def test_cell_columns_are_categorical(table, tmp_path):
    for col in ("cell", "label", "family", "policy", "metric"):
        assert isinstance(table[col].dtype, pd.CategoricalDtype), col
    # categories in study order, every row's value unchanged
    study = mc.make_study(family=["gaussian", "categorical"], policy=["replace", "accumulate"],
                          generations=4, replicates=25)
    assert list(table.cell.cat.categories) == [c.key for c in study.cells]
    assert table.groupby("cell", observed=True).size().to_dict() == {
        c.key: 4 * 25 * len(c.metrics) for c in study.cells}
    run = mc.run_study(study, tmp_path / "run", plots=False)
    back = mc.load(tmp_path / "run")
    assert back.astype({c: str for c in ("cell", "label", "family", "policy", "metric")}).equals(
        run.metrics.astype({c: str for c in ("cell", "label", "family", "policy", "metric")}))
