"""A catalogue of hostile inputs: run folders, studies, corpora and SQL from someone else.

Every case runs the command line in-process and asserts: exit code 2, exactly one line on
stderr, no traceback, no hang (an alarm), and nothing written or overwritten anywhere under
the test's folder (every file's hash, every link and every entry, before and after).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
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


# -- run and sweep: study names and study files ---------------------------------------------
def _study(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


GAUSS = 'family = "gaussian"\ngenerations = 2\nreplicates = 2\n'
NAMES = ['"../../x"', '"/tmp/abs"', '""', '"."', '".."', '"a/b"', '"a\\nb"', '".hidden"',
         '"x\\\\y"', "5", '"' + "n" * 101 + '"', '" padded "']


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_a_study_name_is_one_safe_folder_name(tmp_path, capsys, monkeypatch, command, name):
    monkeypatch.chdir(tmp_path)
    study = _study(tmp_path, f"name = {name}\n{GAUSS}")
    refused([command, study, "--quiet"], tmp_path, capsys, "name")


STUDY_FILES = {
    "deep nesting": ("x = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested"),
    "huge integer": (GAUSS + "seed = " + "9" * 5000 + "\n", "study file"),
    "not utf-8": (GAUSS + "name = \"\udcff\"\n", "UTF-8"),
    "bad toml": (GAUSS + "[params\n", "not a valid study file"),
    "seed above int64": (GAUSS + f"seed = {2**63}\n", "seed"),
    "unknown key": (GAUSS + "nmae = 'x'\n", "unknown key"),
}


@pytest.mark.parametrize("case", STUDY_FILES)
def test_hostile_study_files(tmp_path, capsys, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    text, needle = STUDY_FILES[case]
    refused(["run", _study(tmp_path, text), "--quiet"], tmp_path, capsys, needle)


def test_a_study_file_that_is_a_fifo_or_a_link_loop(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "fifo.toml")
    refused(["run", tmp_path / "fifo.toml"], tmp_path, capsys, "FIFO")
    (tmp_path / "loop.toml").symlink_to(tmp_path / "loop.toml")
    refused(["sweep", tmp_path / "loop.toml"], tmp_path, capsys, "loop")


# -- run: parameters (all refused before anything is written) -------------------------------
BASE = ["run", "--family", "gaussian", "--generations", "2", "--replicates", "2", "--quiet",
        "--no-plots", "--out", "out"]
SETTINGS = [
    (["--seed", str(2**70)], "seed"),
    (["--replicates", str(10**30)], "replicates"),
    (["--n-samples", str(10**30)], "n_samples"),
    (["--generations", "0"], "generations"),
    (["--generations", "-1"], "generations"),
    (["--generations", str(2**64)], "generations"),
    (["--set", "truth_std=1e300"], "truth_std"),
    (["--set", "truth_mean=1e300"], "truth_mean"),
    (["--set", "temperature=nan"], "temperature"),
    (["--set", "temperature=inf"], "temperature"),
    (["--set", "dim=1000000000000"], "dim"),
    (["--set", f"dim={2**70}"], "dim"),
    (["--set", "nope=1"], "nope"),
    (["--set", "=1"], "--set"),
    (["--workers", "0"], "workers"),
    (["--executor", "nope"], "executor"),
    (["--workers", "x"], "workers"),
    (["--bogus"], "bogus"),
]


@pytest.mark.parametrize("extra, needle", SETTINGS, ids=[" ".join(e)[:30] for e, _ in SETTINGS])
def test_bad_settings_leave_nothing_behind(tmp_path, capsys, monkeypatch, extra, needle):
    monkeypatch.chdir(tmp_path)
    refused([*BASE, *extra], tmp_path, capsys, needle)


def test_categorical_with_a_huge_support(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused(["run", "--family", "categorical", "--set", "n_outcomes=1000000000000",
             "--generations", "2", "--replicates", "2", "--quiet", "--out", "out"],
            tmp_path, capsys, "GiB")


@pytest.mark.parametrize("sets, needle", [(["n_head=3"], "n_head"), (["n_embd=10", "n_head=4"], "n_head"),
                                          (["dropout=1.5"], "dropout"), (["lr=1e300"], "lr")])
def test_transformer_build_checks_come_before_any_write(tmp_path, capsys, monkeypatch, sets, needle):
    monkeypatch.chdir(tmp_path)
    extra = [a for s in sets for a in ("--set", s)]
    refused(["run", "--family", "transformer", "--generations", "2", "--replicates", "1",
             "--quiet", "--out", "out", *extra], tmp_path, capsys, needle)


def test_an_out_path_that_is_a_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").write_text("mine")
    refused(BASE, tmp_path, capsys, "out")


def test_a_run_folder_with_a_link_out_is_not_resumed(run, capsys, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    (cell_dir(run) / "DONE").unlink()            # the cell would run again ...
    (cell_dir(run) / "chunks").symlink_to(victim)  # ... and clean its chunks folder
    refused(["run", "--family", "gaussian", "--policy", "replace", "--generations", "3",
             "--replicates", "2", "--n-samples", "20", "--out", run, "--quiet", "--no-plots"],
            tmp_path, capsys, "symbolic link")


# -- run: corpora ---------------------------------------------------------------------------
NGRAM = ["run", "--family", "ngram", "--generations", "2", "--replicates", "1", "--quiet",
         "--no-plots", "--out", "out", "--corpus"]


def _corpus(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


CORPORA = {
    "lone surrogate": ("c.jsonl", b'{"text": "a \\ud800 b"}\n' * 50, "surrogate"),
    "deep nesting": ("c.jsonl", b'{"text": ' + b"[" * 200_000 + b"]" * 200_000 + b"}\n", "nested"),
    "huge integer": ("c.jsonl", b'{"text": "x", "n": ' + b"7" * 5000 + b"}\n", "line 1"),
    "not an object": ("c.jsonl", b"[1, 2]\n", "line 1"),
    "binary": ("c.txt", b"abc\0def\n", "NUL"),
    "not utf-8": ("c.txt", b"abc\xff\n", "UTF-8"),
    "truncated gzip": ("c.txt.gz", gzip.compress(b"hello world\n" * 1000)[:60], "truncated"),
    "empty": ("c.txt", b"", "empty"),
    "identical lines": ("c.txt", b"the same line again\n" * 5000, "distinct"),
    "unknown suffix": ("c.exe", b"MZ", "unsupported"),
}


@pytest.mark.parametrize("case", CORPORA)
def test_hostile_corpora(tmp_path, capsys, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    name, data, needle = CORPORA[case]
    refused([*NGRAM, _corpus(tmp_path, name, data)], tmp_path, capsys, needle)


def test_a_line_longer_than_the_bound_names_file_and_line(tmp_path, capsys, monkeypatch):
    from modelcollapse.data import files
    monkeypatch.setattr(files, "MAX_LINE_BYTES", 1000)
    monkeypatch.chdir(tmp_path)
    path = _corpus(tmp_path, "c.txt", b"short line\n" * 10 + b"x" * 5000 + b"\n")
    assert "line 11" in refused([*NGRAM, path], tmp_path, capsys, "longer than")


def test_special_corpus_files(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "fifo.txt")
    refused([*NGRAM, tmp_path / "fifo.txt"], tmp_path, capsys, "FIFO")
    (tmp_path / "zero.txt").symlink_to("/dev/zero")
    refused([*NGRAM, tmp_path / "zero.txt"], tmp_path, capsys, "device")
    (tmp_path / "loop.txt").symlink_to(tmp_path / "loop.txt")
    refused([*NGRAM, tmp_path / "loop.txt"], tmp_path, capsys, "loop")
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    refused([*NGRAM, tmp_path / "dangling.txt"], tmp_path, capsys, "missing")
    refused([*NGRAM, tmp_path / "absent.txt"], tmp_path, capsys, "does not exist")
    (tmp_path / "dir.txt").mkdir()
    refused([*NGRAM, tmp_path / "dir.txt"], tmp_path, capsys, "directory")


# -- report ---------------------------------------------------------------------------------
def _samples(run: Path) -> Path:
    folder = cell_dir(run) / "samples" / "gen-000"
    folder.mkdir(parents=True)
    return folder


def test_report_refuses_a_sample_that_links_out(run, capsys, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    (_samples(run) / "replicates-0-1.jsonl").symlink_to(secret)
    refused(["report", run], tmp_path, capsys, "symbolic link")


def test_report_refuses_a_fifo_sample(run, capsys, tmp_path):
    os.mkfifo(_samples(run) / "replicates-0-1.jsonl")
    refused(["report", run], tmp_path, capsys, "FIFO")


def test_report_names_a_truncated_sample(run, capsys, tmp_path):
    path = _samples(run) / "replicates-0-1.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"text": "hello"}\n' * 500)[:40])
    refused(["report", run], tmp_path, capsys, str(path))


def test_report_refuses_a_cells_folder_that_links_out(run, capsys, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (run / "cells").rename(elsewhere)
    (run / "cells").symlink_to(elsewhere)
    refused(["report", run], tmp_path, capsys, "symbolic link")


def test_report_refuses_a_manifest_that_is_a_fifo(run, capsys, tmp_path):
    (run / "manifest.json").unlink()
    os.mkfifo(run / "manifest.json")
    refused(["report", run], tmp_path, capsys, "FIFO")


def test_report_on_a_corrupt_cell_table(run, capsys, tmp_path):
    table = cell_dir(run) / "metrics.parquet"
    table.write_bytes(b"PAR1 not really")
    refused(["report", run], tmp_path, capsys, str(table))


STORED = {
    "name traversal": None,
    "deep nesting": ("x = " + "[" * 100_000 + "]" * 100_000, "nested"),
    "cells not tables": ('name = "x"\nseed = 0\naxes = []\ncells = [1]', "table"),
    "generations a string": None,   # filled below from the real study.toml
    "newer format": ("format = 99", "newer"),
}


@pytest.mark.parametrize("case", STORED)
@pytest.mark.parametrize("command", ["report", "query"])
def test_hostile_study_toml_in_a_run_folder(run, capsys, tmp_path, case, command):
    path = run / "study.toml"
    if case == "name traversal":
        text, needle = re.sub(r'(?m)^name = .*$', 'name = "../../x"', path.read_text()), "name"
    elif STORED[case] is None:
        text = path.read_text().replace("generations = 3", 'generations = "3"', 1)
        needle = "generations"
    else:
        text, needle = STORED[case]
    path.write_text(text)
    refused([command, run, *(["select 1"] if command == "query" else [])], tmp_path, capsys,
            needle)


@pytest.mark.parametrize("command", ["report", "query"])
def test_missing_folders(tmp_path, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    extra = ["select 1"] if command == "query" else []
    refused([command, tmp_path / "absent", *extra], tmp_path, capsys)
    os.mkfifo(tmp_path / "fifo")
    refused([command, tmp_path / "fifo", *extra], tmp_path, capsys)


# -- audit ----------------------------------------------------------------------------------
@pytest.fixture
def reference(tmp_path) -> Path:
    lines = [f"human line number {i} about topic {i % 17} and more words {i * 7}" for i in range(400)]
    path = tmp_path / "human.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


AUDITED = {
    "lone surrogate": ("c.jsonl", b'{"text": "\\udfff"}\n', "surrogate"),
    "deep nesting": ("c.jsonl", b"[" * 200_000 + b"]" * 200_000 + b"\n", "nested"),
    "huge integer": ("c.jsonl", b'{"text": "a", "n": ' + b"1" * 5000 + b"}\n", "line 1"),
    "binary": ("c.txt", b"\0\0\0", "NUL"),
    "empty": ("c.txt", b"", "empty"),
}


@pytest.mark.parametrize("case", AUDITED)
def test_hostile_audit_candidates(tmp_path, capsys, monkeypatch, reference, case):
    monkeypatch.chdir(tmp_path)
    name, data, needle = AUDITED[case]
    refused(["audit", _corpus(tmp_path, name, data), "--reference", reference, "--quiet"],
            tmp_path, capsys, needle)


def test_special_audit_inputs(tmp_path, capsys, monkeypatch, reference):
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "fifo.txt")
    refused(["audit", tmp_path / "fifo.txt", "--reference", reference], tmp_path, capsys, "FIFO")
    (tmp_path / "zero.txt").symlink_to("/dev/zero")
    refused(["audit", tmp_path / "zero.txt", "--reference", reference], tmp_path, capsys, "device")
    refused(["audit", reference, "--reference", tmp_path / "fifo.txt"], tmp_path, capsys, "FIFO")
    refused(["audit", "--calibrate", tmp_path / "fifo.txt"], tmp_path, capsys, "FIFO")
    refused(["audit", reference], tmp_path, capsys, "--reference")
    refused(["audit", "--n-boot", "x"], tmp_path, capsys, "n-boot")


# -- list and the command line itself ---------------------------------------------------------
@pytest.mark.parametrize("argv", [["list", "extra"], ["list", "--bogus"], [], ["nope"],
                                  ["query"], ["report"]])
def test_command_line_errors_are_one_line(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    refused(argv, tmp_path, capsys)


# -- fast, true messages ---------------------------------------------------------------------
def test_an_unreachable_hub_fails_at_once_in_one_line(tmp_path, capsys, monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.chdir(tmp_path)
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")   # a closed port: no Hub
    refused([*NGRAM, "hf:nobody/no-such-dataset"], tmp_path, capsys, "did not answer")


def test_a_full_disk_names_the_file(run, capsys, tmp_path, monkeypatch):
    import errno as _errno

    def full(fd):
        raise OSError(_errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    refused(["report", run], tmp_path, capsys, str(run / "report.html"))


# -- sweep -----------------------------------------------------------------------------------
def _gauss_study(tmp_path: Path) -> Path:
    return _study(tmp_path, f'name = "g"\n{GAUSS}')


@pytest.mark.parametrize("extra, needle", [
    (["--executor", "ray", "--address", "nohost"], "HOST:PORT"),
    (["--executor", "ray", "--address", "127.0.0.1:9"], "cannot reach"),
    (["--address", "127.0.0.1:9"], "only used with --executor ray"),
    (["--workers", "-3"], "workers"),
])
def test_hostile_sweep_options(tmp_path, capsys, monkeypatch, extra, needle):
    monkeypatch.chdir(tmp_path)
    refused(["sweep", _gauss_study(tmp_path), "--out", "out", "--quiet", *extra], tmp_path,
            capsys, needle)


def test_a_sweep_into_a_folder_in_use_is_refused(run, capsys, tmp_path):
    from modelcollapse.runs.lock import run_lock
    study = _study(tmp_path, 'name = "gaussian-replace"\nfamily = "gaussian"\npolicy = "replace"\n'
                             'generations = 3\nreplicates = 2\nn_samples = 20\n')
    with run_lock(run):
        refused(["sweep", study, "--out", run, "--quiet", "--no-plots"], tmp_path, capsys,
                f"in use by process {os.getpid()}")


def test_a_sweep_of_a_missing_study(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused(["sweep", tmp_path / "absent.toml"], tmp_path, capsys, "does not exist")
