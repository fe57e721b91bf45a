"""Regression tests for problems an internal review found (each would have failed before)."""

import pandas as pd
import pytest

from helpers import matrix, run_one
from modelcollapse.cli import main


def test_accumulate_subsample_draws_from_everything_accumulated(z):
    """keep n of the n (g+1) data accumulated by generation g: the real share is 1/(g+1)
    in expectation (hypergeometric), not the halving of "subsample the last set"."""
    df = run_one(family="categorical", policy="accumulate_subsample", n_samples=40, generations=6,
                 replicates=400, seed=3, metrics=["real_share"], params={"n_outcomes": 10})
    share = matrix(df, "real_share")
    for g in range(6):
        assert z(share[g], 1.0 / (g + 1)) < 4 if g else share[0].min() == 1.0


def test_regression_mix_uses_every_design_row_once():
    """Half real data on rows 0..15 and half synthetic on rows 16..31 of the fixed design:
    the error stays bounded instead of growing like replace's n sigma^2 d/(T-d-1)."""
    kw = dict(family="linear_regression", generations=10, replicates=500, seed=4, metrics=["test_error"])
    params = {"dim": 10, "n_train": 32, "noise": 1.0}
    replace = matrix(run_one(policy="replace", params=params, **kw), "test_error")[-1].mean()
    fresh = matrix(run_one(policy="mix", params={**params, "real_fraction": 0.5, "real_source": "fresh"},
                           **kw), "test_error")[-1].mean()
    fixed = matrix(run_one(policy="mix", params={**params, "real_fraction": 0.5}, **kw), "test_error")[-1].mean()
    assert replace > 4.0          # ~ 10 x 0.476 (theory: 4.76)
    assert fresh < 1.5 and fixed < 2.5


def test_collapsed_gaussian_runs_to_the_end():
    """A chain whose variance underflows to exactly 0 is the phenomenon, not an error."""
    df = run_one(family="gaussian", n_samples=2, generations=1200, replicates=3, seed=1,
                 metrics=["variance", "kl_to_truth", "cov_logdet"])
    last = df[df.generation == 1199]
    assert not last.value.isna().any()
    assert (last[last.metric == "variance"].value < 1e-100).all()


@pytest.mark.parametrize("args,expected", [
    (["--family", "gaussian", "--set", "temperature=inf"], "must be a finite number"),
    (["--family", "gaussian", "--set", "dim=5", "--n-samples", "3"], "must exceed params.dim (5)"),
    (["--family", "gaussian", "--policy", "accumulate_subsample", "--set", "keep=1"], "params.keep must be"),
    (["--family", "gaussian", "--out", "/proc/nope/x"], "cannot use"),
    (["--family", "gaussian", "--replicates", "100000000", "--generations", "1000"], "GiB of results"),
])
def test_more_bad_input(tmp_path, capsys, args, expected):
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "o")]
    assert main(["run", *args, "--no-plots", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # validation happens before anything is written


@pytest.mark.parametrize("text,expected", [
    ('family = "gaussian"\ngenerations = [5, 50]\n', "generations cannot be a sweep axis"),
    ('family = "gaussian"\nmetrics = []\n', "metrics is an empty list"),
    ('family = "gaussian"\nparams = 3\n', "params must be a table"),
    ('family = "gmm"\nn_samples = 5\n', "s.toml: n_samples (5) must be at least params.components"),
])
def test_bad_study_values(tmp_path, capsys, text, expected):
    (tmp_path / "s.toml").write_text(text)
    assert main(["run", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o")]) == 2
    assert expected in capsys.readouterr().err


def test_damaged_run_folders(tmp_path, capsys):
    out = tmp_path / "r"
    args = ["run", "--family", "gaussian", "--generations", "3", "--replicates", "2", "--out", str(out),
            "--no-plots", "--quiet"]
    assert main(args) == 0
    first = pd.read_parquet(out / "metrics.parquet")
    next(out.glob("cells/*/metrics.parquet")).unlink()          # a table deleted by hand
    assert main(["query", str(out), "select count(*) from metrics"]) == 0
    assert main(args) == 0                                       # ... is recomputed, identically
    pd.testing.assert_frame_equal(first, pd.read_parquet(out / "metrics.parquet"))
    assert main(["query", str(out), "  "]) == 2
    (out / "study.toml").write_text("garbage = ")
    capsys.readouterr()
    for cmd in (["query", str(out), "select 1"], ["report", str(out)]):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert "not a valid study file" in err and "Traceback" not in err


def test_query_keeps_a_swept_n_samples(tmp_path, capsys):
    (tmp_path / "s.toml").write_text('family = "gaussian"\nn_samples = [10, 20]\ngenerations = 2\n'
                                     'replicates = 2\n')
    assert main(["run", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o"), "--no-plots", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["query", str(tmp_path / "o"), "select distinct n_samples from metrics order by 1",
                 "--csv"]) == 0
    assert capsys.readouterr().out.split() == ["n_samples", "10", "20"]
