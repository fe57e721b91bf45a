"""SQL over a run folder with DuckDB.

Two views are defined: ``cells`` (one row per cell: cell, label, family, policy, n_samples,
generations, replicates, and every swept parameter) and ``metrics`` (the tidy rows of every
*finished* cell joined with its cell columns). Unfinished cells (no completion marker)
are never visible, so a query during or after an interrupted sweep sees no partial data.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import UserError
from ..safepaths import check_regular_inside
from .store import RunStore, cell_columns
from .study import Study


def cells_table(store: RunStore, study: Study) -> pd.DataFrame:
    """One row per cell: its identifying columns, sizes, and whether it is finished."""
    return pd.DataFrame([{**cell_columns(study, cell), "n_samples": cell.n_samples,
                          "generations": cell.generations, "replicates": cell.replicates,
                          "done": store.is_done(cell)} for cell in study.cells])


# Statements a query may hold: reading the views, and explaining how.
_ALLOWED = ("SELECT", "EXPLAIN")


def _connect(duckdb):
    """An in-memory DuckDB connection that cannot reach the file system or the network."""
    return duckdb.connect(config={
        "autoinstall_known_extensions": False, "autoload_known_extensions": False,
        "allow_community_extensions": False, "allow_unsigned_extensions": False,
        "allow_persistent_secrets": False})


def _confine(con) -> None:
    """After the views exist: no file or network access (file functions, COPY, ATTACH,
    INSTALL/LOAD, secrets), no spilling into the working folder, no Python variables as
    tables, and no way to change any of it back."""
    for setting in ("SET temp_directory = ''", "SET python_enable_replacements = false",
                    "SET enable_external_access = false", "SET lock_configuration = true"):
        con.execute(setting)


def _tables(store: RunStore, keys: list[str]):
    """The finished cells' tables as one Arrow dataset with a ``cell`` column (Arrow reads
    the files, so DuckDB itself needs no file access). Every file is checked first: a
    regular file inside the run folder whose footer and columns are a cell table's."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq
    files = []
    for key in keys:
        path = store.root / "cells" / key / "metrics.parquet"
        check_regular_inside(path, store.root, "cell table")
        try:
            names = set(pq.read_metadata(path).schema.names)
        except (pa.ArrowException, OSError) as e:
            raise UserError(f"cell table {path} is unreadable ({type(e).__name__}); delete "
                            f"{path.parent / 'DONE'} to recompute that cell") from None
        if not {"generation", "replicate", "metric", "value"} <= names:
            raise UserError(f"cell table {path} lacks the columns generation, replicate, "
                            f"metric and value; delete {path.parent / 'DONE'} to recompute it")
        files.append(str(path))
    return ds.dataset(files, format="parquet", partition_base_dir=str(store.root / "cells"),
                      partitioning=ds.DirectoryPartitioning(pa.schema([("cell", pa.string())])))


def check_statements(con, sql: str) -> None:
    """Only SELECT (and EXPLAIN) statements: the run folder is read, never changed."""
    import duckdb
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as e:
        raise UserError(f"query failed: {str(e).strip().splitlines()[0]}") from None
    for st in statements:
        kind = str(st.type).rsplit(".", 1)[-1]
        if kind not in _ALLOWED:
            kind = "INSTALL/LOAD" if kind == "LOAD" else kind
            article = "an" if kind[0] in "AEIOU" else "a"
            raise UserError(f"query runs only SELECT statements over the views metrics and "
                            f"cells; {article} {kind} statement is refused")


def query(folder: str | Path, sql: str) -> pd.DataFrame:
    """Run ``sql`` against the views ``metrics`` and ``cells`` of a run folder, on a
    connection confined to them (see :func:`_confine`)."""
    try:
        import duckdb
    except ImportError:
        raise UserError("modelcollapse query needs DuckDB: pip install 'modelcollapse[query]'") from None
    if not sql.strip():
        raise UserError("the SQL query is empty; for example: \"select * from cells\"")
    store = RunStore(folder)
    study = store.read_study()
    cells = cells_table(store, study)
    con = _connect(duckdb)
    check_statements(con, sql)
    con.register("cells_df", cells)
    con.execute("CREATE VIEW cells AS SELECT * FROM cells_df")
    keys = [str(k) for k in cells.cell[cells.done]]
    hidden = ", ".join(c for c in ("done", "generations", "replicates", "n_samples")
                       if c == "done" or c not in study.axes)
    if keys:
        con.register("cell_tables", _tables(store, keys))
        con.execute(
            f"CREATE VIEW metrics AS SELECT c.* EXCLUDE ({hidden}), "
            f"m.generation, m.replicate, m.metric, m.value FROM cell_tables m "
            f"JOIN cells c ON c.cell = m.cell")
    else:
        con.execute("CREATE VIEW metrics AS SELECT NULL::VARCHAR AS cell, NULL::INTEGER AS generation, "
                    "NULL::INTEGER AS replicate, NULL::VARCHAR AS metric, NULL::DOUBLE AS value WHERE false")
    _confine(con)
    try:
        result = con.sql(sql)
        if result is None:
            raise UserError("the query returned no table; give a SELECT (or another query with rows)")
        return result.df()
    except duckdb.PermissionException as e:
        first = str(e).strip().splitlines()[0].removeprefix("Permission Error: ")
        raise UserError(f"query may read only the views metrics and cells; refused: {first}") from None
    except duckdb.Error as e:
        first = str(e).strip().splitlines()[0]
        raise UserError(f"query failed: {first}") from None
    except Exception as e:   # Arrow reading a damaged page of a cell table during the scan
        import pyarrow as pa
        if isinstance(e, (pa.ArrowException, OSError)):
            raise UserError(f"query failed reading a cell table of {store.root} "
                            f"({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
        raise
    finally:
        con.close()
