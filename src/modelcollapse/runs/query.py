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
from .store import RunStore, cell_columns
from .study import Study


def cells_table(store: RunStore, study: Study) -> pd.DataFrame:
    """One row per cell: its identifying columns, sizes, and whether it is finished."""
    return pd.DataFrame([{**cell_columns(study, cell), "n_samples": cell.n_samples,
                          "generations": cell.generations, "replicates": cell.replicates,
                          "done": store.is_done(cell)} for cell in study.cells])


def query(folder: str | Path, sql: str) -> pd.DataFrame:
    """Run ``sql`` against the views ``metrics`` and ``cells`` of a run folder."""
    try:
        import duckdb
    except ImportError:
        raise UserError("modelcollapse query needs DuckDB: pip install 'modelcollapse[query]'") from None
    if not sql.strip():
        raise UserError("the SQL query is empty; for example: \"select * from cells\"")
    store = RunStore(folder)
    study = store.read_study()
    cells = cells_table(store, study)
    con = duckdb.connect()
    con.register("cells_df", cells)
    con.execute("CREATE VIEW cells AS SELECT * FROM cells_df")
    files = [str(store.root / "cells" / key / "metrics.parquet") for key in cells.cell[cells.done]]
    hidden = ", ".join(c for c in ("done", "generations", "replicates", "n_samples")
                       if c == "done" or c not in study.axes)
    if files:
        listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        con.execute(
            f"CREATE VIEW metrics AS SELECT c.* EXCLUDE ({hidden}), "
            f"m.generation, m.replicate, m.metric, m.value FROM read_parquet([{listing}], "
            f"filename = true) m JOIN cells c ON c.cell = regexp_extract(m.filename, "
            f"'cells/([0-9a-f]+)/metrics.parquet$', 1)")
    else:
        con.execute("CREATE VIEW metrics AS SELECT NULL::VARCHAR AS cell, NULL::INTEGER AS generation, "
                    "NULL::INTEGER AS replicate, NULL::VARCHAR AS metric, NULL::DOUBLE AS value WHERE false")
    try:
        result = con.sql(sql)
        if result is None:
            raise UserError("the query returned no table; give a SELECT (or another query with rows)")
        return result.df()
    except duckdb.Error as e:
        first = str(e).strip().splitlines()[0]
        raise UserError(f"query failed: {first}") from None
