"""Process and network hygiene: pool workers die with their parent (no orphan writes),
SIGTERM stops a sweep like Ctrl-C, one writer per run folder, and a Ray cluster started by
the tool listens on loopback only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil")

from modelcollapse.cli import main  # noqa: E402
from modelcollapse.runs.lock import LOCK_NAME, run_lock  # noqa: E402

SRC = str(Path(__file__).parents[1] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}

# Eight cells of a few seconds each: long enough to be caught mid-sweep.
SLOW = textwrap.dedent("""
    name = "slow"
    family = "gaussian"
    policy = ["replace", "accumulate"]
    n_samples = [200, 300, 400, 500]
    generations = 60
    replicates = 3000
    seed = 0
    [params]
    dim = 4
    """)


def _files(folder: Path) -> dict[str, int]:
    out = {}
    for p in folder.rglob("*"):
        if p.is_file():
            out[str(p.relative_to(folder))] = p.stat().st_mtime_ns
    return out


def _start_sweep(tmp_path: Path, out: Path) -> tuple[subprocess.Popen, list[int]]:
    study = tmp_path / "slow.toml"
    study.write_text(SLOW)
    proc = subprocess.Popen([sys.executable, "-m", "modelcollapse.cli", "sweep", str(study),
                             "--out", str(out), "--workers", "2", "--quiet", "--no-plots"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while time.monotonic() < deadline and len(workers) < 2:
        try:
            workers = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    assert len(workers) >= 2, proc.communicate(timeout=60)
    assert (out / LOCK_NAME).exists()
    return proc, workers


def _gone(pids: list[int], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return True
        time.sleep(0.2)
    return False


def test_sigkill_of_a_sweep_leaves_no_worker_and_no_later_write(tmp_path):
    out = tmp_path / "run"
    proc, workers = _start_sweep(tmp_path, out)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert _gone(workers), "pool workers outlived their parent"
    before = _files(out)
    time.sleep(3)
    assert _files(out) == before, "a worker wrote after its parent was killed"


def test_sigterm_stops_a_sweep_like_ctrl_c_and_the_rerun_resumes(tmp_path):
    out = tmp_path / "run"
    proc, workers = _start_sweep(tmp_path, out)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "rerun resumes" in lines[0] and "Traceback" not in err.decode()
    assert _gone(workers)
    assert not (out / LOCK_NAME).exists()
    again = subprocess.run([sys.executable, "-m", "modelcollapse.cli", "sweep",
                            str(tmp_path / "slow.toml"), "--out", str(out), "--workers", "2",
                            "--quiet", "--no-plots"], env=ENV, capture_output=True, timeout=900)
    assert again.returncode == 0, again.stderr.decode()


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["run", "--family", "gaussian", "--generations", "2", "--replicates", "2",
            "--quiet", "--no-plots", "--out", "out"]
    assert main(args) == 0
    with run_lock(tmp_path / "out"):   # another writer holds the folder
        capsys.readouterr()
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"in use by process {os.getpid()}" in err and len(err.strip().splitlines()) == 1
    assert main(args) == 0               # released: the folder is usable again
    assert not (tmp_path / "out" / LOCK_NAME).exists()


def test_two_sweeps_on_one_folder_one_is_refused(tmp_path):
    out = tmp_path / "run"
    proc, _ = _start_sweep(tmp_path, out)
    try:
        second = subprocess.run([sys.executable, "-m", "modelcollapse.cli", "sweep",
                                 str(tmp_path / "slow.toml"), "--out", str(out), "--quiet"],
                                env=ENV, capture_output=True, timeout=120)
        assert second.returncode == 2
        assert f"in use by process {proc.pid}" in second.stderr.decode()
    finally:
        proc.kill()
        proc.communicate(timeout=60)


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["run", "--family", "gaussian", "--generations", "2", "--replicates", "2",
            "--quiet", "--no-plots", "--out", "out"]
    assert main(args) == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "out" / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename}))
    assert main(args) == 0
    assert not (tmp_path / "out" / LOCK_NAME).exists()


PROBE = textwrap.dedent("""
    import json, os, sys
    import psutil
    from modelcollapse.sweep.executors import RayExecutor

    def square(x, shared):
        return x * x + shared

    ex = RayExecutor(workers=1)
    with ex.session() as ray:
        assert ray.get([ray.remote(square).remote(i, 1) for i in range(3)]) == [1, 2, 5]
        session = ray._private.worker._global_node.get_session_dir_path()
        me = psutil.Process()
        family = {p.pid for p in me.children(recursive=True)} | {me.pid}
        rows = []
        for p in psutil.process_iter():
            try:
                if p.pid not in family and session not in " ".join(p.cmdline()):
                    continue
                for c in p.net_connections(kind="inet"):
                    if c.status == psutil.CONN_LISTEN:
                        rows.append([p.pid, p.name(), c.laddr.ip, c.laddr.port])
            except psutil.Error:
                pass
        print(json.dumps(rows))
    """)


def test_a_local_ray_cluster_listens_on_loopback_only(tmp_path):
    pytest.importorskip("ray")
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    env = {k: v for k, v in ENV.items() if not k.startswith("RAY_")}
    res = subprocess.run([sys.executable, str(probe)], env=env, capture_output=True,
                         timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr.decode()[-3000:]
    rows = json.loads(res.stdout.decode().strip().splitlines()[-1])
    names = {r[1] for r in rows}
    assert "gcs_server" in names and "raylet" in names, rows   # the probe sees Ray's servers
    loopback = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
    assert all(r[2] in loopback for r in rows), rows
