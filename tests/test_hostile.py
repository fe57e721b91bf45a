"""A catalogue of hostile inputs: run folders, studies, corpora and SQL from someone else.

Every case runs the command line in-process and asserts: exit code 2, exactly one line on
stderr, no traceback, no hang (an alarm), and nothing written or overwritten anywhere under
the test's folder (every file's hash, every link and every entry, before and after).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import signal
import stat
from pathlib import Path

import pytest

from modelcollapse.cli import main

TIMEOUT_S = 60


# -- the harness ---------------------------------------------------------------------------
def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (links not followed): file hashes, link targets, kinds."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            mode = os.lstat(p).st_mode
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(mode):
                out[rel] = "link:" + os.readlink(p)
            elif stat.S_ISREG(mode):
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISDIR(mode):
                out[rel] = "dir"
            else:
                out[rel] = f"special:{stat.S_IFMT(mode)}"
    return out


class _Hang(Exception):
    pass


def refused(argv: list[str], root: Path, capsys, needle: str | None = None) -> str:
    """Run the CLI; assert the hostile-input contract; return the message."""
    capsys.readouterr()
    before = snapshot(root)

    def alarm(*_):
        raise _Hang(f"hung for {TIMEOUT_S} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(TIMEOUT_S)
    try:
        rc = main([str(a) for a in argv])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("modelcollapse: error: ")
    assert snapshot(root) == before, "something was written"
    if needle is not None:
        assert needle.lower() in err.lower(), err
    return err


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A small finished run folder (Gaussian, 3 generations, 2 replicates)."""
    out = tmp_path_factory.mktemp("base") / "run"
    assert main(["run", "--family", "gaussian", "--policy", "replace", "--generations", "3",
                 "--replicates", "2", "--n-samples", "20", "--out", str(out), "--quiet",
                 "--no-plots"]) == 0
    return out


@pytest.fixture
def run(finished, tmp_path, monkeypatch) -> Path:
    """A copy of the finished run folder in this test's own folder (also the working folder)."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    shutil.copytree(finished, out, symlinks=True)
    return out


def cell_dir(run: Path) -> Path:
    return next((run / "cells").iterdir())


# -- query ---------------------------------------------------------------------------------
QUERIES = [
    ("select * from read_csv('/etc/passwd')", "refused"),
    ("select * from read_text('/etc/passwd')", "refused"),
    ("select * from read_blob('/etc/hostname')", "refused"),
    ("select * from glob('/root/*')", "refused"),
    ("select * from read_parquet('cells/*/metrics.parquet')", "refused"),
    ("select * from 'run/metrics.parquet'", "refused"),
    ("copy (select 1) to 'out.csv'", "COPY"),
    ("copy (select 1 as a) to 'run/metrics.parquet' (format parquet, use_tmp_file false)", "COPY"),
    ("attach 'x.db' as x", "ATTACH"),
    ("install httpfs", "refused"),
    ("load httpfs", "refused"),
    ("set enable_external_access = true", "refused"),
    ("set lock_configuration = false", "refused"),
    ("pragma enable_profiling", "refused"),
    ("export database 'dump'", "refused"),
    ("create table t as select 1", "refused"),
    ("select 1; copy (select 1) to 'x.csv'", "COPY"),
    ("select * from cells; attach 'y.db'", "ATTACH"),
    ("", "empty"),
    ("   ", "empty"),
    ("select nope from metrics", "query failed"),
    ("selec 1", "query failed"),
    ("create secret (type s3, key_id 'a', secret 'b')", "refused"),
]


@pytest.mark.parametrize("sql, needle", QUERIES, ids=[q[:40] for q, _ in QUERIES])
def test_query_is_confined_to_the_views(run, capsys, sql, needle):
    refused(["query", run, sql], run.parent, capsys, needle)


def test_query_still_answers(run, capsys):
    assert main(["query", str(run), "select count(*) n from metrics", "--csv"]) == 0
    assert capsys.readouterr().out.split() == ["n", str(3 * 2 * len(_metric_names(run)))]


def _metric_names(run: Path) -> set[str]:
    import pandas as pd
    return set(pd.read_parquet(run / "metrics.parquet").metric)


def test_query_on_a_corrupt_cell_table_with_a_done_marker(run, capsys):
    table = cell_dir(run) / "metrics.parquet"
    table.write_bytes(table.read_bytes()[:100])
    refused(["query", run, "select * from metrics"], run.parent, capsys, str(table))


def test_query_refuses_a_cell_table_that_links_out(run, capsys, tmp_path):
    table = cell_dir(run) / "metrics.parquet"
    outside = tmp_path / "elsewhere.parquet"
    shutil.copy(table, outside)
    table.unlink()
    table.symlink_to(outside)
    refused(["query", run, "select * from metrics"], run.parent, capsys, "link")


def test_query_refuses_a_fifo_cell_table(run, capsys):
    table = cell_dir(run) / "metrics.parquet"
    table.unlink()
    os.mkfifo(table)
    refused(["query", run, "select * from metrics"], run.parent, capsys, "FIFO")


def test_query_on_a_folder_without_a_study(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    refused(["query", tmp_path / "empty", "select 1"], tmp_path, capsys, "study.toml")
