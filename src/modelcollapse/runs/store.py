"""The result store: one folder per study, written atomically and resumable.

Layout::

    OUT/study.toml                  the resolved study (every cell's full config)
    OUT/manifest.json               format, package version, git hash, library versions
    OUT/cells/<key>/metrics.parquet one cell's tidy metrics
    OUT/cells/<key>/DONE            completion marker, written last
    OUT/metrics.parquet             all cells, with cell columns (rebuilt after each run)
    OUT/plots/*.png

Every file is written to a temporary name, flushed to disk and renamed into place, so an
interrupted write leaves the previous file intact. A cell counts as finished only when its
marker exists; rerunning the same study skips finished cells, and a folder that holds a
different study is refused, never overwritten.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import errno
import gzip
import io
import json
import os
import platform
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import tomli_w

from ..errors import UserError
from .config import ENGINE_ONLY, CellConfig
from .study import Study, check_name
from ..safepaths import check_regular_inside, check_tree

FORMAT_VERSION = 1


def fault_point(name: str) -> None:
    """Fault injection for the reliability tests: with MODELCOLLAPSE_FAULT=name:k in the
    environment, the process kills itself with SIGKILL the k-th time it passes ``name``.
    Points: 'after-parquet' (a cell's table written, its marker not yet), 'after-chunk'
    (a chunk checkpoint written mid-cell), 'after-generation' (a chain's state saved after
    a generation, families that are ``Persistent``), 'after-final-state' (a chunk's final
    chain state saved, numpy families). With MODELCOLLAPSE_FAULT_ONCE=PATH, only the
    first process to get there dies (it creates PATH), so a retried task survives."""
    spec = os.environ.get("MODELCOLLAPSE_FAULT", "")
    point, _, count = spec.partition(":")
    if point != name:
        return
    fault_point.counts[name] = fault_point.counts.get(name, 0) + 1  # type: ignore[attr-defined]
    if fault_point.counts[name] >= int(count or 1):  # type: ignore[attr-defined]
        once = os.environ.get("MODELCOLLAPSE_FAULT_ONCE")  # a flag file: fire in one process only
        if once:
            try:
                os.close(os.open(once, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return
        os.kill(os.getpid(), signal.SIGKILL)


fault_point.counts = {}  # type: ignore[attr-defined]


class WriteError(UserError, OSError):
    """A write the system refused (disk full, quota, read-only), naming the file: a user's
    error for the CLI (one sentence), still an OSError for callers that catch those."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write ``path`` via a temporary sibling, fsync, then rename (atomic on POSIX)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:   # disk full, quota, read-only: name the file (write errors carry none)
        if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EFBIG):
            raise WriteError(e.errno, f"cannot write {path}: {e.strerror}; the previous file, "
                                      f"if any, is intact") from None
        raise
    finally:
        if tmp.exists():
            tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def write_parquet(path: Path, df: pd.DataFrame) -> None:
    atomic_write(path, lambda fh: df.to_parquet(fh, index=False, compression="zstd"))


def _comparable(study_dict: dict[str, Any], sizes: bool = True) -> dict[str, Any]:
    """The parts of a resolved study that decide its numbers (not the chunk size; without
    ``sizes``, not the generations and replicates either: what ``--extend`` may grow)."""
    out = {k: v for k, v in study_dict.items() if k != "format"}
    grown = () if sizes else ("generations", "replicates")
    out["cells"] = [{**{k: v for k, v in c.items() if k not in grown},
                     "params": {k: v for k, v in c["params"].items() if k not in ENGINE_ONLY}}
                    for c in study_dict.get("cells", [])]
    return out


def _growth(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """None when ``new`` is ``old`` with more (or as many) generations and replicates per
    cell and nothing else changed; else why it is not."""
    if _comparable(old, sizes=False) != _comparable(new, sizes=False):
        return "it changes more than generations and replicates"
    from ..capabilities import Persistent
    from ..catalog import FAMILIES
    for a, b in zip(old["cells"], new["cells"]):
        for size in ("generations", "replicates"):
            if b[size] < a[size]:
                return (f"cell {a['key']} would have fewer {size} ({b[size]} < {a[size]}); "
                        f"--extend only adds")
        if b["generations"] > a["generations"] and issubclass(FAMILIES.get(a["family"]), Persistent):
            # their chains would retrain every stored generation over the weights on disk
            return (f"cell {a['key']} ({a['family']}) keeps its models on disk; it can take "
                    f"more replicates, not more generations")
    return None


def git_commit() -> str | None:
    """The git commit of the package's source tree, when it is a checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _library_versions() -> dict[str, str]:
    """Installed versions of the libraries that can touch results (without importing them)."""
    from importlib import metadata
    out = {}
    for name in ("numpy", "scipy", "pandas", "pyarrow", "matplotlib", "duckdb", "ray", "mlflow-skinny",
                 "tokenizers", "datasets", "sacrebleu", "torch", "transformers", "safetensors"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def manifest(study: Study) -> dict[str, Any]:
    from .. import __version__
    return {
        "format": FORMAT_VERSION,
        "package": "modelcollapse",
        "version": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "libraries": _library_versions(),
        "seed": study.seed,
        "cells": {c.key: study.label(c) for c in study.cells},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "data": _data_records(study),
    }


def _data_records(study: Study) -> dict[str, Any]:
    """Per text cell, where its corpus came from and how it was split and tokenized."""
    from ..catalog import FAMILIES
    out = {}
    for cell in study.cells:
        cls = FAMILIES.get(cell.family)
        record = cls(cell.sub_params(cls.Params), cell.n_samples).describe_data()
        if record is not None:
            out[cell.key] = record
    return out


class RunStore:
    """A study's result folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def cell_dir(self, cell: CellConfig) -> Path:
        return self.root / "cells" / cell.key

    def check(self, study: Study, extend: bool = False) -> bool:
        """Every reason to refuse this folder for ``study``, writing nothing: True when the
        folder already holds this study (with ``extend``: this study or a smaller one of it),
        False when it is new or empty."""
        study_file = self.root / "study.toml"
        resolved = {"format": FORMAT_VERSION, **study.to_dict()}
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"output path {self.root} exists and is not a folder")
        if self.root.is_dir():
            check_tree(self.root)   # no links, FIFOs or devices to write through
        resolved = {"format": FORMAT_VERSION, **study.to_dict()}
        if study_file.exists() or study_file.is_symlink():
            if extend:
                why = _growth(self._read_resolved(study_file), resolved)
                if why is not None:
                    raise UserError(f"cannot extend the run in {self.root}: {why}")
            else:
                self._check_same(study_file, resolved)
            return True
        if self.root.exists() and self._entries():
            raise UserError(f"output folder {self.root} is not empty and holds no study.toml; "
                            f"choose another --out")
        return False

    def _entries(self) -> list[Path]:
        """The folder's entries but the lock file (which a killed run may leave behind)."""
        from .lock import LOCK_NAME
        return [p for p in self.root.iterdir() if p.name != LOCK_NAME]

    def open(self, study: Study, extend: bool = False) -> None:
        """Create the folder for ``study``, or check that it already holds this very study.
        With ``extend``, the folder may hold it with fewer generations or replicates per cell:
        study.toml is then rewritten with the larger sizes (finished cells keep their tables
        until ``run_cell`` has computed the new work; see ``previous_values``)."""
        resolved = {"format": FORMAT_VERSION, **study.to_dict()}
        study_file = self.root / "study.toml"
        if self.check(study, extend):
            if extend:
                old = self._read_resolved(study_file)
                if _comparable(old) != _comparable(resolved):
                    self._record_extension(old)
                    write_bytes(study_file, tomli_w.dumps(resolved).encode())
            return
        write_bytes(self.root / "manifest.json", json.dumps(manifest(study), indent=2).encode())
        write_bytes(study_file, tomli_w.dumps(resolved).encode())

    def _read_resolved(self, study_file: Path) -> dict[str, Any]:
        from .study import parse_toml_file
        check_regular_inside(study_file, self.root, "study file")
        old = parse_toml_file(study_file, "study file")
        if not isinstance(old.get("format", 0), int) or old.get("format", 0) > FORMAT_VERSION:
            raise UserError(f"{self.root} was written by a newer modelcollapse (format "
                            f"{str(old.get('format'))[:20]} > {FORMAT_VERSION}); upgrade or "
                            f"choose another --out")
        return old

    def _record_extension(self, old: dict[str, Any]) -> None:
        """The manifest keeps each extension: when, by which command and version, from what sizes."""
        from .. import __version__
        path = self.root / "manifest.json"
        try:
            record = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            record = {}
        record.setdefault("extensions", []).append({
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "version": __version__, "git_commit": git_commit(), "command": sys.argv,
            "from": {c["key"]: [c["generations"], c["replicates"]] for c in old.get("cells", [])}})
        write_bytes(path, json.dumps(record, indent=2).encode())

    def _check_same(self, study_file: Path, resolved: dict[str, Any]) -> None:
        old = self._read_resolved(study_file)
        if _comparable(old) != _comparable(resolved):
            hint = ("; it is this run with fewer generations or replicates: add --extend to "
                    "compute only the new ones, or choose another --out"
                    if _growth(old, resolved) is None else "; choose another --out")
            diff = difflib.unified_diff(
                tomli_w.dumps(_comparable(old)).splitlines(),
                tomli_w.dumps(_comparable(resolved)).splitlines(),
                "existing study.toml", "this run", lineterm="", n=0)
            shown = [line for line in diff if not line.startswith("@@")][:12]
            raise UserError(f"output folder {self.root} already holds a different run{hint}. "
                            f"Difference:\n  " + "\n  ".join(shown))

    def holds_other(self, study: Study) -> bool:
        """True when this folder exists, is not empty, and is not a run of ``study``."""
        if not self.root.exists() or (self.root.is_dir() and not self._entries()):
            return False
        try:
            self._check_same(self.root / "study.toml", {"format": FORMAT_VERSION, **study.to_dict()})
        except UserError:
            return True
        return not (self.root / "study.toml").exists()

    def finished_sizes(self, cell: CellConfig) -> tuple[int, int] | None:
        """(generations, replicates) of the cell's finished table, or None when unfinished
        (a table deleted by hand makes the cell run again rather than break every reader)."""
        folder = self.cell_dir(cell)
        if not ((folder / "DONE").exists() and (folder / "metrics.parquet").exists()):
            return None
        from .study import parse_toml_file
        try:   # markers since --extend carry the sizes; older ones: the config beside them
            done = json.loads((folder / "DONE").read_text("utf-8"))
            if "generations" not in done:
                done = parse_toml_file(folder / "config.toml", "cell config")
            return int(done["generations"]), int(done["replicates"])
        except (OSError, ValueError, KeyError, TypeError, UserError, RecursionError):
            return cell.generations, cell.replicates   # a marker from before sizes were kept

    def is_done(self, cell: CellConfig) -> bool:
        """Finished at this cell's generations and replicates."""
        return self.finished_sizes(cell) == (cell.generations, cell.replicates)

    def previous_values(self, cell: CellConfig) -> Any:
        """(G0, M, R0) values of a finished, smaller run of ``cell`` (what ``--extend`` keeps),
        NaN where a sparse metric wrote no row; None when there is none."""
        import numpy as np
        sizes = self.finished_sizes(cell)
        if sizes is None or sizes == (cell.generations, cell.replicates):
            return None
        g0, r0 = sizes
        df = self.load_cell(cell)
        out = np.full((g0, len(cell.metrics), r0), np.nan)
        index = {m: i for i, m in enumerate(cell.metrics)}
        m = df["metric"].astype(str).map(index).to_numpy()
        out[df["generation"].to_numpy(), m, df["replicate"].to_numpy()] = df["value"].to_numpy()
        return out

    def save_cell(self, cell: CellConfig, df: pd.DataFrame) -> None:
        """Write the cell's table, then its marker (so a crash between them reruns the cell)."""
        folder = self.cell_dir(cell)
        # An extended cell drops its old marker first: never a marker beside a table and
        # config of other sizes.
        (folder / "DONE").unlink(missing_ok=True)
        write_bytes(folder / "config.toml", tomli_w.dumps(cell.to_dict()).encode())
        write_parquet(folder / "metrics.parquet", df)
        fault_point("after-parquet")
        write_bytes(folder / "DONE", json.dumps({"rows": len(df), "generations": cell.generations,
                                                 "replicates": cell.replicates}).encode())
        chunks = folder / "chunks"
        if chunks.is_dir() and not chunks.is_symlink():  # complete: checkpoints not needed
            for f in chunks.iterdir():
                f.unlink()
            chunks.rmdir()

    def checkpoint(self, cell: CellConfig) -> "ChunkCheckpoint":
        folder = self.cell_dir(cell)
        return ChunkCheckpoint(folder / "chunks", folder / "samples", folder / "models",
                               lambda: self.previous_values(cell), folder / "final")

    def load_cell(self, cell: CellConfig) -> pd.DataFrame:
        path = self.cell_dir(cell) / "metrics.parquet"
        check_regular_inside(path, self.root, "cell table")
        try:
            return pd.read_parquet(path)
        except Exception as e:  # pyarrow raises several types for a damaged file
            raise UserError(f"{path} is unreadable ({type(e).__name__}); delete "
                            f"{self.cell_dir(cell) / 'DONE'} to recompute that cell") from None

    def read_study(self) -> Study:
        """The study stored in this folder."""
        from .study import parse_toml_file
        path = self.root / "study.toml"
        if not path.exists() and not path.is_symlink():
            raise UserError(f"{self.root} holds no study.toml; is it a modelcollapse run folder?")
        check_regular_inside(path, self.root, "study file")
        check_tree(self.root)
        d = parse_toml_file(path, "study file")
        if not isinstance(d.get("format", 0), int) or d.get("format", 0) > FORMAT_VERSION:
            raise UserError(f"{self.root} was written by a newer modelcollapse (format "
                            f"{str(d.get('format'))[:20]})")
        try:
            cells = [CellConfig.from_dict(_checked_cell(c, path)) for c in d["cells"]]
            axes = d["axes"]
            if not isinstance(axes, list) or not all(isinstance(a, str) for a in axes):
                raise UserError(f"{path}: axes must be a list of names")
            paired = d.get("paired", False)
            if not isinstance(paired, bool):
                raise UserError(f"{path}: paired must be true or false")
            return Study(check_name(d["name"], f"{path}: "), _int64(d["seed"], path, "seed"),
                         cells, list(axes), paired)
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise UserError(f"{path} is not a modelcollapse study file "
                            f"({type(e).__name__}: {str(e)[:80]})") from None


def _int64(value: Any, path: Path, what: str) -> int:
    if type(value) is not int or not 0 <= value < 2**63:
        raise UserError(f"{path}: {what} must be an integer in [0, 2^63); got {str(value)[:40]}")
    return value


def _checked_cell(c: Any, path: Path) -> dict[str, Any]:
    """A stored cell's fields, with the types every reader relies on (a study.toml from
    someone else is data: a wrong type is one sentence, not a traceback later)."""
    if not isinstance(c, dict):
        raise UserError(f"{path}: every entry of cells must be a table")
    for key in ("family", "policy"):
        if not isinstance(c.get(key), str):
            raise UserError(f"{path}: a cell's {key} must be a name")
    for key in ("n_samples", "generations", "replicates", "seed"):
        _int64(c.get(key), path, f"a cell's {key}")
    if not isinstance(c.get("metrics"), list) or not all(isinstance(m, str) for m in c["metrics"]):
        raise UserError(f"{path}: a cell's metrics must be a list of names")
    if not isinstance(c.get("params"), dict):
        raise UserError(f"{path}: a cell's params must be a table")
    if not isinstance(c.get("stream_key", ""), str):
        raise UserError(f"{path}: a cell's stream_key must be text")
    return c


def cell_columns(study: Study, cell: CellConfig) -> dict[str, Any]:
    """The columns that identify a cell in tidy tables: cell, label, family, policy and
    every swept parameter (None where it does not apply to the cell)."""
    cols: dict[str, Any] = {"cell": cell.key, "label": study.label(cell),
                            "family": cell.family, "policy": cell.policy}
    for axis in study.axes:
        if axis not in cols:
            cols[axis] = getattr(cell, axis) if axis == "n_samples" else cell.params.get(axis)
    return cols


#: Cell columns stored as categoricals: one small code per row instead of a string.
CATEGORICAL = ("cell", "label", "family", "policy")


def combine(study: Study, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One tidy table for the study: cell columns (see ``cell_columns``) followed by
    generation, replicate, metric, value. cell, label, family, policy and metric are
    categoricals (categories in study order), and so is a swept column that is None where it
    does not apply; millions of rows then cost a byte or two each for them rather than an
    object. A swept column of mixed types is stored as text."""
    import numpy as np
    cells = [c for c in study.cells if c.key in tables]
    if not cells:
        return pd.DataFrame(columns=["cell", "label", "family", "policy", "generation",
                                     "replicate", "metric", "value"])
    every = [cell_columns(study, c) for c in study.cells]
    dtypes = {name: pd.CategoricalDtype(list(dict.fromkeys(cols[name] for cols in every)))
              for name in CATEGORICAL}
    as_text = set()
    for axis in study.axes:
        if axis in CATEGORICAL:
            continue
        values = [cols[axis] for cols in every]
        present = [v for v in values if v is not None]
        if len({type(v) for v in present}) > 1:
            as_text.add(axis)
        elif len(present) < len(values):
            dtypes[axis] = pd.CategoricalDtype(list(dict.fromkeys(present)))
    metrics = pd.CategoricalDtype(list(dict.fromkeys(m for c in study.cells for m in c.metrics)))
    frames = []
    for cell in cells:
        df, cols = tables[cell.key], cell_columns(study, cell)
        n = len(df)
        for name, dtype in dtypes.items():
            code = -1 if cols[name] is None else dtype.categories.get_loc(cols[name])
            cols[name] = pd.Categorical.from_codes(np.full(n, code, dtype=np.int32), dtype=dtype)
        for axis in as_text:
            cols[axis] = str(cols[axis])
        metric = df["metric"]
        df = df.assign(metric=(metric if isinstance(metric.dtype, pd.CategoricalDtype)
                               else metric.astype(str)).astype(metrics))
        frames.append(df.assign(**cols)[[*cols, *df.columns]])
    return pd.concat(frames, ignore_index=True)


class ChunkCheckpoint:
    """Finished chunks of one cell as ``chunks/<lo>-<hi>.npy`` (values (G, M, hi - lo)), and
    the generated documents of text families as
    ``samples/gen-<g>/replicates-<lo>-<hi>.jsonl.gz`` (one ``{"replicate", "text"}`` object
    per line; generation g's documents are those model g wrote)."""

    def __init__(self, folder: Path, samples: Path | None = None,
                 models: Path | None = None,
                 previous: Callable[[], Any] | None = None, final: Path | None = None) -> None:
        self.folder = folder
        self.samples = samples
        self.models = models   # the transformer family's weights
        self._previous = previous
        self.final = final if final is not None else folder.parent / "final"

    def previous(self):
        """(G0, M, R0) values of a finished smaller run that ``--extend`` grows, or None."""
        return self._previous() if self._previous is not None else None

    def load_chunk(self, lo: int, hi: int):
        import numpy as np
        path = self.folder / f"{lo}-{hi}.npy"
        if path.is_symlink() or not path.is_file():   # no links, FIFOs or devices
            return None
        try:   # mapped first: a header that claims more than the file holds fails here
            values = np.load(path, mmap_mode="r", allow_pickle=False)
            return np.array(values, dtype=np.float64) if values.dtype.kind == "f" else None
        except (OSError, ValueError, MemoryError):
            return None  # a damaged checkpoint is recomputed, never trusted

    def save_chunk(self, lo: int, hi: int, values) -> None:
        import numpy as np
        atomic_write(self.folder / f"{lo}-{hi}.npy", lambda fh: np.save(fh, values, allow_pickle=False))
        self.chain_state(lo, hi).path.unlink(missing_ok=True)
        fault_point("after-chunk")

    def chain_state(self, lo: int, hi: int) -> "ChainStateFile":
        return ChainStateFile(self.folder / f"{lo}-{hi}.state.npz")

    def final_state(self, lo: int, hi: int) -> "FinalStateFile":
        """``final/<lo>-<hi>.state.npz``: the chunk's chains after their last generation
        (kept with the finished cell, unlike ``chunks/``), which ``--extend`` continues."""
        return FinalStateFile(self.final / f"{lo}-{hi}.state.npz")

    def final_ranges(self) -> list[tuple[int, int]]:
        out = []
        if self.final.is_dir() and not self.final.is_symlink():
            for p in self.final.glob("*.state.npz"):
                lo, _, hi = p.name[:-len(".state.npz")].partition("-")
                if lo.isdigit() and hi.isdigit() and p.is_file() and not p.is_symlink():
                    out.append((int(lo), int(hi)))
        return sorted(out)

    def keep_final(self, ranges: list[tuple[int, int]]) -> None:
        keep = set(ranges)
        for lo, hi in self.final_ranges():
            if (lo, hi) not in keep:
                (self.final / f"{lo}-{hi}.state.npz").unlink(missing_ok=True)

    def save_samples(self, generation: int, lo: int, hi: int, texts: list[list[str]]) -> None:
        if self.samples is None:
            return
        lines = (json.dumps({"replicate": lo + i, "text": t}, ensure_ascii=False)
                 for i, docs in enumerate(texts) for t in docs)
        data = gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), compresslevel=6, mtime=0)
        folder = self.samples / f"gen-{generation:03d}"
        write_bytes(folder / f"replicates-{lo}-{hi}.jsonl.gz", data)
        # A resumed cell may run with another chunk size: files of earlier chunks that overlap
        # this one hold the same documents and would duplicate them.
        for old in folder.glob("replicates-*-*.jsonl.gz"):
            a, b = (int(x) for x in old.name[len("replicates-"):-len(".jsonl.gz")].split("-"))
            if (a, b) != (lo, hi) and a < hi and lo < b:
                old.unlink()


class ChainStateFile:
    """The state of a chunk's chains after their last finished generation, as data only
    (``chunks/<lo>-<hi>.state.npz``: a zip of ``.npy`` arrays named a0, a1, ... read with
    ``allow_pickle=False``, plus ``meta.json``; see :mod:`modelcollapse.chainstate`). Every
    member is checked before it is read (numeric dtype, declared size), and a file that
    fails any check stops the run with one sentence naming it: never ignored, never
    executed."""

    MAX_META = 64 * 2**20   # bytes of JSON
    FAULT = "after-generation"

    def __init__(self, path: Path) -> None:
        self.path = path

    def _invalid(self, why: str) -> UserError:
        return UserError(f"chain state {self.path} is invalid ({why}); delete it to recompute "
                         f"that chunk from generation 0")

    def read(self) -> tuple[dict, Any] | None:
        """``(arrays, meta)`` from the file, or None when there is none."""
        import zipfile

        import numpy as np

        from ..chainstate import member_name_ok
        if not self.path.exists() and not self.path.is_symlink():
            return None
        if self.path.is_symlink() or not self.path.is_file():
            raise self._invalid("not a regular file")
        arrays: dict[str, np.ndarray] = {}
        meta: Any = None
        try:
            with zipfile.ZipFile(self.path) as z:
                for info in z.infolist():
                    if info.filename == "meta.json":
                        if info.file_size > self.MAX_META:
                            raise self._invalid("meta.json is too large")
                        meta = json.loads(z.read(info).decode("utf-8"))
                        continue
                    name = info.filename.removesuffix(".npy")
                    if not info.filename.endswith(".npy") or not member_name_ok(name):
                        raise self._invalid(f"unexpected member '{info.filename[:60]}'")
                    with z.open(info) as fh:   # the header first: dtype and size
                        version = np.lib.format.read_magic(fh)
                        if version not in ((1, 0), (2, 0)):
                            raise self._invalid(f"member {info.filename} has .npy version {version}")
                        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                       else np.lib.format.read_array_header_2_0)
                        shape, fortran, dtype = read_header(fh)
                        header = fh.tell()
                    if dtype.hasobject or dtype.kind not in "biuf" or fortran:
                        raise self._invalid(f"member {info.filename} is not a numeric array")
                    if int(np.prod(shape, dtype=object)) * dtype.itemsize != info.file_size - header:
                        raise self._invalid(f"member {info.filename} has the wrong size")
                    with z.open(info) as fh:
                        arrays[name] = np.lib.format.read_array(fh, allow_pickle=False)
        except UserError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError, RecursionError,
                UnicodeDecodeError, NotImplementedError, OverflowError) as e:
            raise self._invalid(f"{type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''}") from None
        if meta is None:
            raise self._invalid("meta.json is missing")
        return arrays, meta

    def load(self, decode: Callable[[dict, Any], dict]) -> dict | None:
        """The decoded state (``decode(arrays, meta)``, which raises ``InvalidState``), or
        None when no state was saved."""
        from ..chainstate import InvalidState
        raw = self.read()
        if raw is None:
            return None
        try:
            return decode(*raw)
        except InvalidState as e:
            raise self._invalid(str(e)) from None

    def save(self, arrays: dict, meta: dict) -> None:
        import zipfile

        import numpy as np

        def write(fh: io.BufferedWriter) -> None:
            with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as z:
                z.writestr("meta.json", json.dumps(meta))
                for name, value in arrays.items():
                    with z.open(f"{name}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, value, allow_pickle=False)
        atomic_write(self.path, write)
        fault_point(self.FAULT)


class FinalStateFile(ChainStateFile):
    """A chunk's FINAL chain state (see ``ChunkCheckpoint.final_state``). Unlike a resume
    state, a bad one never stops the run: ``load`` raises ``chainstate.InvalidState`` and
    the chunk is recomputed from generation 0 (same numbers, only slower)."""

    FAULT = "after-final-state"

    def load(self, decode: Callable[[dict, Any], dict]) -> dict | None:
        from ..chainstate import InvalidState
        try:
            return super().load(decode)
        except UserError as e:
            raise InvalidState(str(e)) from None
