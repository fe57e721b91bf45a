"""Sweeps: identical numbers whatever the executor or worker count, resume after SIGKILL
at any point, SQL queries, MLflow logging and clear errors."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from modelcollapse.cli import main

EXE = str(Path(sys.executable).with_name("modelcollapse"))

STUDY = """
name = "sweep-test"
family = "gaussian"
policy = ["replace", "mix"]
generations = 12
replicates = 9
seed = 7
[params]
real_fraction = [0.1, 0.5]
chunk_size = 4
sufficient_stats = false
"""

# About 7 s with 2 workers here: long enough for the kills below to land mid-cell
# (the test asserts that they did, so a faster engine cannot make it pass vacuously).
SLOW = """
name = "slow"
family = "gmm"
policy = ["replace", "mix"]
n_samples = 3000
generations = 70
replicates = 6
[params]
real_fraction = [0.1, 0.3, 0.6]
chunk_size = 2
"""


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "MODELCOLLAPSE_FAULT"}
    env.update(RAY_USAGE_STATS_ENABLED="0", **extra)
    return env


def sweep(study: Path, out: Path, *args: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, "sweep", str(study), "--out", str(out), "--no-plots", "--quiet", *args],
                          capture_output=True, text=True, env=_env(**env), timeout=300)


@pytest.fixture(scope="module")
def study_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("study") / "study.toml"
    path.write_text(STUDY)
    return path


@pytest.fixture(scope="module")
def reference(study_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    res = sweep(study_file, out)
    assert res.returncode == 0, res.stderr
    return pd.read_parquet(out / "metrics.parquet")


def _same(out: Path, reference: pd.DataFrame) -> None:
    df = pd.read_parquet(out / "metrics.parquet")
    assert not df.duplicated(["cell", "generation", "replicate", "metric"]).any()
    pd.testing.assert_frame_equal(df, reference)


def test_two_workers_equal_serial(study_file, reference, tmp_path):
    res = sweep(study_file, tmp_path / "w2", "--workers", "2")
    assert res.returncode == 0, res.stderr
    _same(tmp_path / "w2", reference)


def test_ray_equals_local(study_file, reference, tmp_path):
    res = sweep(study_file, tmp_path / "ray", "--executor", "ray", "--workers", "2")
    assert res.returncode == 0, res.stderr
    _same(tmp_path / "ray", reference)


def test_ray_retries_a_killed_worker(study_file, reference, tmp_path):
    flag = tmp_path / "fired"
    res = sweep(study_file, tmp_path / "ray", "--executor", "ray", "--workers", "2",
                MODELCOLLAPSE_FAULT="after-chunk:2", MODELCOLLAPSE_FAULT_ONCE=str(flag))
    assert flag.exists()                      # a worker really died mid-cell ...
    assert res.returncode == 0, res.stderr    # ... and Ray's retry finished the sweep
    _same(tmp_path / "ray", reference)


@pytest.mark.parametrize("fault", ["after-parquet:1", "after-parquet:3", "after-chunk:2", "after-chunk:5"])
def test_sigkill_at_fault_points_then_resume(study_file, reference, tmp_path, fault):
    out = tmp_path / "run"
    killed = sweep(study_file, out, MODELCOLLAPSE_FAULT=fault)
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "metrics.parquet").exists()
    resumed = sweep(study_file, out)
    assert resumed.returncode == 0, resumed.stderr
    _same(out, reference)


def test_external_sigkill_of_parallel_sweep_then_resume(tmp_path):
    study = tmp_path / "slow.toml"
    study.write_text(SLOW)
    ref = sweep(study, tmp_path / "ref", "--workers", "2")
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "run"
    for _ in range(2):
        proc = subprocess.Popen([EXE, "sweep", str(study), "--out", str(out), "--no-plots", "--quiet",
                                 "--workers", "2"], env=_env(), start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Kill once a new chunk checkpoint appears (not after a fixed delay: a loaded machine
        # starts slower), so the kill lands mid-cell whatever the machine's speed.
        before = len(list(out.glob("cells/*/chunks/*.npy")))
        deadline = time.monotonic() + 60
        while len(list(out.glob("cells/*/chunks/*.npy"))) <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (out / "metrics.parquet").exists()  # the kill landed mid-sweep
    assert list(out.glob("cells/*/chunks/*.npy"))     # ... and mid-cell: chunks were kept
    resumed = sweep(study, out, "--workers", "2")
    assert resumed.returncode == 0, resumed.stderr
    _same(out, pd.read_parquet(tmp_path / "ref" / "metrics.parquet"))


def test_changed_study_refused_with_difference(study_file, tmp_path):
    out = tmp_path / "run"
    assert sweep(study_file, out).returncode == 0
    changed = tmp_path / "changed.toml"
    changed.write_text(STUDY.replace("generations = 12", "generations = 13"))
    before = (out / "metrics.parquet").read_bytes()
    res = sweep(changed, out)
    assert res.returncode == 2 and "already holds a different run" in res.stderr
    assert "generations = 13" in res.stderr and "Traceback" not in res.stderr
    assert (out / "metrics.parquet").read_bytes() == before
    res = sweep(changed, out, "--new-folder")
    assert res.returncode == 0 and (tmp_path / "run-2" / "metrics.parquet").exists()


def test_unreachable_ray_address(study_file, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]   # closed again below: nothing listens there
    res = sweep(study_file, tmp_path / "r", "--executor", "ray", "--address", f"127.0.0.1:{port}")
    assert res.returncode == 2 and "cannot reach a Ray cluster at 127.0.0.1" in res.stderr
    assert "Traceback" not in res.stderr


def test_query(study_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert sweep(study_file, out).returncode == 0
    assert main(["query", str(out), "select policy, real_fraction, count(*) n from metrics "
                 "group by all order by all", "--csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "policy,real_fraction,n"
    assert len(lines) == 4  # replace (no real_fraction) and mix at two fractions
    assert main(["query", str(out), "select nope from metrics"]) == 2
    err = capsys.readouterr().err
    assert "query failed" in err and len(err.strip().splitlines()) == 1


def test_query_hides_unfinished_cells(study_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert sweep(study_file, out, MODELCOLLAPSE_FAULT="after-parquet:2").returncode == -signal.SIGKILL
    assert main(["query", str(out), "select count(distinct cell) n from metrics", "--csv"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[1] == "1"


def test_mlflow_logs_each_cell(study_file, tmp_path):
    out = tmp_path / "run"
    res = sweep(study_file, out, "--mlflow")
    assert res.returncode == 0, res.stderr
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient
    client = MlflowClient((out / "mlruns").resolve().as_uri())
    runs = client.search_runs([client.get_experiment_by_name("sweep-test").experiment_id])
    assert len(runs) == 3
    history = client.get_metric_history(runs[0].info.run_id, "variance")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(range(12))
