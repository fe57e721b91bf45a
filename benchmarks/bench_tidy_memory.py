"""Memory of the study-wide tidy table at 9M rows: per-row strings (the combine of commit
c0c0b2a, copied below as the peer) vs categorical cell columns (``runs.store.combine``).

Usage: .venv/bin/python benchmarks/bench_tidy_memory.py   (about a minute on 2 cores)
Each variant runs in a fresh process (its peak RSS is its own); the per-cell tables are the
demo study's cells and metrics with random values, replicates chosen for 9M rows.
Writes benchmarks/results/tidy_memory.json. Checks both tables hold the same values.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
ROWS = 9_000_000


def before_combine(study, tables):
    """The peer: runs.store.combine as of commit c0c0b2a (one string per row and column)."""
    from modelcollapse.runs.store import cell_columns
    frames = []
    for cell in study.cells:
        if cell.key not in tables:
            continue
        df, cols = tables[cell.key], cell_columns(study, cell)
        frames.append(df.assign(**cols)[[*cols, *df.columns]])
    out = pd.concat(frames, ignore_index=True)
    for axis in study.axes:
        if axis in out and out[axis].dropna().map(type).nunique() > 1:
            out[axis] = out[axis].astype(str)
    return out


def tables_for(rows: int):
    from modelcollapse.api import make_study
    from modelcollapse.loop import tidy
    study = make_study(ROOT / "studies" / "demo.toml")
    per_replicate = sum(c.generations * len(c.metrics) for c in study.cells)
    reps = rows // per_replicate
    rng = np.random.default_rng(0)
    tables = {c.key: tidy(rng.standard_normal((c.generations, len(c.metrics), reps)), c.metrics)
              for c in study.cells}
    return study, tables


def variant(name: str) -> dict:
    from modelcollapse.runs.store import combine
    study, tables = tables_for(ROWS)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    df = (before_combine if name == "before" else combine)(study, tables)
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    usage = df.memory_usage(deep=True)
    checksum = float(df["value"].sum())
    keys = df["cell"].astype(str).iloc[[0, len(df) // 2, -1]].tolist()
    return {"rows": len(df), "bytes": int(usage.sum()), "bytes_by_column": {k: int(v) for k, v in usage.items()},
            "dtypes": {k: str(v) for k, v in df.dtypes.items()}, "combine_s": seconds,
            "peak_rss_growth_bytes": (peak - base) * 1024, "checksum": checksum, "keys": keys}


def main() -> None:
    from provenance import code_version, machine, save
    out = {}
    for name in ("before", "after"):
        res = subprocess.run([sys.executable, __file__, "--variant", name], capture_output=True,
                             text=True, check=True)
        out[name] = json.loads(res.stdout)
    b, a = out["before"], out["after"]
    assert b["rows"] == a["rows"] and b["checksum"] == a["checksum"] and b["keys"] == a["keys"]
    result = {"machine": machine("numpy", "pandas", "pyarrow"), "code": code_version(), **out,
              "memory_ratio": b["bytes"] / a["bytes"],
              "rss_ratio": b["peak_rss_growth_bytes"] / max(1, a["peak_rss_growth_bytes"]),
              "time_ratio": b["combine_s"] / a["combine_s"]}
    save("tidy_memory", result)
    mib = 2**20
    print(f"{a['rows']:,} rows: before {b['bytes'] / mib:,.0f} MiB, after {a['bytes'] / mib:,.0f} MiB "
          f"({result['memory_ratio']:.1f}x less); peak RSS growth {b['peak_rss_growth_bytes'] / mib:,.0f}"
          f" -> {a['peak_rss_growth_bytes'] / mib:,.0f} MiB; combine {b['combine_s']:.2f} s -> "
          f"{a['combine_s']:.2f} s")
    for col in b["bytes_by_column"]:
        print(f"  {col:<10} {b['dtypes'].get(col, ''):<10} {b['bytes_by_column'][col] / mib:8.0f} MiB"
              f"  ->  {a['dtypes'].get(col, ''):<10} {a['bytes_by_column'][col] / mib:8.0f} MiB")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--variant":
        print(json.dumps(variant(sys.argv[2])))
    else:
        main()
