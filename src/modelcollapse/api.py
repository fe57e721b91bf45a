"""The Python entry points: run a study (in memory or into a folder) and load results."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import UserError
from .progress import Progress
from .runs.lock import run_lock
from .runs.store import RunStore, combine, write_parquet
from .runs.study import Study, parse_study, read_toml


@dataclass
class RunResult:
    """What a run produced: the tidy table, and where it lies when written to a folder."""

    study: Study
    metrics: pd.DataFrame
    out: Path | None = None
    ran: list[str] = field(default_factory=list)      # cell keys simulated now
    skipped: list[str] = field(default_factory=list)  # cell keys already finished
    plots: list[Path] = field(default_factory=list)


def make_study(study: str | Path | dict[str, Any] | None = None, **overrides: Any) -> Study:
    """A Study from a TOML path and/or a mapping, with keyword overrides on top.

    ``params`` in the overrides are merged into the file's ``[params]`` table.
    """
    where, name, mapping = "", "run", {}
    if isinstance(study, (str, Path)):
        mapping, where, name = read_toml(study), f"{study}: ", Path(study).stem
    elif isinstance(study, dict):
        mapping = dict(study)
    if not isinstance(mapping.get("params", {}), dict):
        raise UserError(f"{where}params must be a table of parameter = value")
    params = {**mapping.get("params", {}), **overrides.pop("params", {})}
    mapping.update({k: v for k, v in overrides.items() if v is not None})
    if params:
        mapping["params"] = params
    return parse_study(mapping, where, name)


def run_study(study: Study, out: str | Path | None = None, quiet: bool = True,
              plots: bool = True, executor: str = "local", workers: int = 1,
              address: str | None = None, extend: bool = False) -> RunResult:
    """Simulate every unfinished cell of ``study``.

    With ``extend``, ``out`` may hold this study with fewer generations or replicates per
    cell: only the new replicates and generations are computed (old chains continue from
    the final state each chunk saved; a family that cannot save one, or a state that does
    not reproduce the table, is retraced from generation 0 with a ``RecomputeWarning`` and
    must reproduce its stored values), and the stored values stay exactly as they were. Any
    other difference is refused.

    With ``out``, results are stored there (finished cells are skipped, so an interrupted
    run resumes) and plotted; without, they are returned in memory only. ``executor`` is
    'local' (``workers`` processes) or 'ray' (a cluster at ``address``, or a local one);
    the numbers are identical either way.
    """
    from .sweep import make_executor

    runner = make_executor(executor, workers, address)
    store = RunStore(out) if out is not None else None
    lock: Any = contextlib.nullcontext()
    if store is not None:
        store.check(study, extend)   # every refusal before the first write
        store.root.mkdir(parents=True, exist_ok=True)
        lock = run_lock(store.root)   # one writer per folder: a second one is refused
    elif extend:
        raise UserError("extend needs a run folder (out) holding the run to extend")
    with lock:
        if store is not None:
            store.open(study, extend)
        return _run_cells(study, store, runner, out, quiet, plots)


def _run_cells(study: Study, store: RunStore | None, runner: Any, out: str | Path | None,
               quiet: bool, plots: bool) -> RunResult:
    tables: dict[str, pd.DataFrame] = {}
    result = RunResult(study, pd.DataFrame(), Path(out) if out is not None else None)
    todo = []
    for cell in study.cells:
        if store is not None and store.is_done(cell):
            tables[cell.key] = store.load_cell(cell)
            result.skipped.append(cell.key)
        else:
            todo.append(cell)
    progress = Progress(sum(c.generations * c.replicates for c in todo), enabled=not quiet,
                        label=f"{study.name}: {len(todo)} cell(s)")
    by_key = {c.key: c for c in todo}
    try:
        for key, df in runner.run(todo, str(out) if out is not None else None, progress.advance):
            tables[key] = df if df is not None else store.load_cell(by_key[key])
            result.ran.append(key)
    finally:
        progress.close()
    result.metrics = combine(study, tables)
    if store is not None:
        write_parquet(store.root / "metrics.parquet", result.metrics)
        if plots:
            from .report.plots import plot_study
            result.plots = plot_study(study, result.metrics, store.root / "plots")
    return result


def run(study: str | Path | dict[str, Any] | None = None, *, out: str | Path | None = None,
        quiet: bool = True, extend: bool = False, **overrides: Any) -> pd.DataFrame:
    """Run a study and return its tidy metrics as a DataFrame.

    Examples
    --------
    >>> df = run(family="gaussian", policy="replace", generations=50, replicates=200,
    ...          params={"estimator": "unbiased"})          # doctest: +SKIP
    >>> df = run("studies/demo.toml", out="runs/demo")      # doctest: +SKIP

    Columns: cell, label, family, policy, one per swept parameter, generation, replicate,
    metric, value. ``extend=True`` grows a finished run in ``out`` (see ``run_study``).
    """
    return run_study(make_study(study, **overrides), out, quiet, extend=extend).metrics


def load(folder: str | Path) -> pd.DataFrame:
    """The tidy metrics of a run folder, as one DataFrame (finished cells only)."""
    store = RunStore(folder)
    study = store.read_study()
    tables = {c.key: store.load_cell(c) for c in study.cells if store.is_done(c)}
    return combine(study, tables)
