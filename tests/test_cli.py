"""The command line: runs, resumes, and one clear sentence with exit code 2 on bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from modelcollapse.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_writes_a_complete_folder(tmp_path, capsys):
    out = tmp_path / "r"
    code, stdout, _ = run_cli(capsys, "run", "--family", "gaussian", "--policy", "replace",
                              "--n-samples", "30", "--generations", "5", "--replicates", "8",
                              "--seed", "3", "--set", "estimator=unbiased", "--out", str(out))
    assert code == 0, stdout
    for name in ("study.toml", "manifest.json", "metrics.parquet", "plots/overview.png",
                 "plots/gaussian__variance.png"):
        assert (out / name).exists(), name
    df = pd.read_parquet(out / "metrics.parquet")
    assert {"generation", "replicate", "metric", "value"} <= set(df.columns)
    assert len(df) == 5 * 8 * df.metric.nunique()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["version"]
    assert "estimator = \"unbiased\"" in (out / "study.toml").read_text()


def test_rerun_resumes_and_identical_values(tmp_path, capsys):
    args = ["run", "--family", "categorical", "--generations", "4", "--replicates", "3",
            "--out", str(tmp_path / "r"), "--no-plots"]
    assert run_cli(capsys, *args)[0] == 0
    first = pd.read_parquet(tmp_path / "r" / "metrics.parquet")
    code, stdout, _ = run_cli(capsys, *args)
    assert code == 0 and "0 run, 1 already done" in stdout
    pd.testing.assert_frame_equal(first, pd.read_parquet(tmp_path / "r" / "metrics.parquet"))


def test_study_file_grid(tmp_path, capsys):
    study = tmp_path / "s.toml"
    study.write_text('family = "gaussian"\npolicy = ["replace", "mix"]\ngenerations = 3\n'
                     'replicates = 2\n[params]\nreal_fraction = [0.1, 0.5]\n')
    code, stdout, _ = run_cli(capsys, "run", str(study), "--out", str(tmp_path / "o"), "--no-plots")
    assert code == 0
    df = pd.read_parquet(tmp_path / "o" / "metrics.parquet")
    assert df.cell.nunique() == 3  # replace once, mix twice
    assert set(df.real_fraction.dropna()) == {0.1, 0.5}


@pytest.mark.parametrize("args,expected", [
    (["--family", "gausian"], "unknown family 'gausian' (did you mean 'gaussian'?)"),
    (["--family", "gaussian", "--policy", "acumulate"], "did you mean 'accumulate'?"),
    (["--family", "gaussian", "--set", "estimatr=mle"], "params.estimatr is not a parameter"),
    (["--family", "gaussian", "--set", "estimator=mlee"], "params.estimator must be 'mle' or 'unbiased'"),
    (["--family", "gaussian", "--n-samples", "1"], "n_samples must be >= 2"),
    (["--family", "gaussian", "--policy", "mix", "--set", "real_fraction=1.5"], "real_fraction must be in [0, 1]"),
    (["--family", "gaussian", "--set", "dim=0"], "params.dim must be >= 1"),
    (["--family", "gaussian", "--set", "real_fraction=0.1"], "params.real_fraction is not used by any cell"),
    (["--family", "gaussian", "--metrics", "varience"], "did you mean 'variance'?"),
    (["--family", "gaussian", "--metrics", "test_error"], "applies to none of the cells"),
    (["--family", "linear_regression", "--n-samples", "10"], "params.n_train (32)"),
    (["--family", "gaussian", "--set", "temperature=0"], "temperature must be > 0"),
    (["--family", "gaussian", "--set", "sufficient_stats=true", "--set", "truncation=0.5"],
     "sufficient_stats = true is not possible"),
    (["--family", "gaussian", "--generations", "0"], "generations must be >= 1"),
    (["--family", "gmm", "--set", "dim=[]"], "params.dim is an empty list"),
])
def test_bad_input_is_one_sentence_and_exit_2(tmp_path, capsys, args, expected):
    code, _, err = run_cli(capsys, "run", *args, "--out", str(tmp_path / "o"))
    assert code == 2
    assert expected in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_bad_study_files(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('family = "gaussian"\npolicy = \n')
    code, _, err = run_cli(capsys, "run", str(bad))
    assert code == 2 and "bad.toml is not valid TOML" in err and "line 2" in err
    code, _, err = run_cli(capsys, "run", str(tmp_path / "missing.toml"))
    assert code == 2 and "does not exist" in err
    typo = tmp_path / "typo.toml"
    typo.write_text('family = "gaussian"\ngeneration = 3\n')
    code, _, err = run_cli(capsys, "run", str(typo))
    assert code == 2 and "unknown key 'generation' (did you mean 'generations'?)" in err
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"family = \xff\xfe\n")
    code, _, err = run_cli(capsys, "run", str(binary))
    assert code == 2 and "not UTF-8" in err


def test_different_run_in_same_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "r"
    base = ["run", "--family", "gaussian", "--generations", "3", "--replicates", "2", "--out", str(out),
            "--no-plots"]
    assert run_cli(capsys, *base)[0] == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, _, err = run_cli(capsys, *base[:-3], "--n-samples", "50", "--out", str(out), "--no-plots")
    assert code == 2 and "already holds a different run" in err and "n_samples" in err
    assert before == {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_foreign_folder_is_refused(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, "run", "--family", "gaussian", "--out", str(tmp_path / "x"))
    assert code == 2 and "not empty" in err


def test_undefined_theory_is_stated_on_the_plot(tmp_path, capsys):
    code, _, _ = run_cli(capsys, "run", "--family", "linear_regression", "--set", "dim=10",
                         "--set", "n_train=11", "--generations", "3", "--replicates", "4",
                         "--out", str(tmp_path / "r"))
    assert code == 0
    assert (tmp_path / "r" / "plots" / "linear_regression__test_error.png").exists()


def test_list_shows_every_registered_entry(capsys):
    from modelcollapse import FAMILIES, METRICS, POLICIES
    code, stdout, _ = run_cli(capsys, "list")
    assert code == 0
    for name in [*FAMILIES.names(), *POLICIES.names(), *METRICS.names()]:
        assert name in stdout


def test_entry_point_no_traceback(tmp_path):
    exe = Path(sys.executable).with_name("modelcollapse")
    res = subprocess.run([str(exe), "run", "--family", "nope"], capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr and "unknown family" in res.stderr


def test_readme_test_command_is_ci():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = [line for line in ci.splitlines() if line.startswith("python3 -m venv")]
    assert len(command) == 1 and command[0] in readme
