"""Sweep executors side by side, in one run: 16 cells serial vs 2 local workers vs Ray
(local cluster, 2 CPUs), plus the HTML report of a 16-cell x 50-generation study.

Usage: .venv/bin/python benchmarks/bench_sweep.py   (about 2 minutes on 2 cores)
Writes benchmarks/results/sweep.json. Checks the three runs give identical tables.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from modelcollapse.api import make_study, run_study  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from provenance import code_version, machine, save  # noqa: E402


def timed(study, out: Path, **kw) -> tuple[float, pd.DataFrame]:
    if out.exists():
        shutil.rmtree(out)
    t = time.perf_counter()
    res = run_study(study, out, plots=False, **kw)
    return time.perf_counter() - t, res.metrics


def main() -> None:
    study = make_study(HERE / "studies" / "sweep16.toml")
    tmp = Path(tempfile.mkdtemp(prefix="mc-bench-"))
    results: dict = {"machine": machine("numpy", "ray"), "code": code_version()}
    serial, a = timed(study, tmp / "serial")
    local2, b = timed(study, tmp / "local2", workers=2)
    ray2, c = timed(study, tmp / "ray2", executor="ray", workers=2)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    # Ray's figure includes starting its local cluster; measure that start alone too.
    import ray
    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             _node_ip_address="127.0.0.1")
    ray_start = time.perf_counter() - t
    ray.shutdown()
    results["sweep16"] = {
        "cells": len(study.cells), "serial_s": serial, "local_2_workers_s": local2, "ray_2_cpus_s": ray2,
        "ray_cluster_start_s": ray_start, "speedup_local2_vs_serial": serial / local2,
        "ray_overhead_vs_local2": ray2 / local2 - 1.0,
        "ray_overhead_vs_local2_excluding_start": (ray2 - ray_start) / local2 - 1.0,
        "identical_tables": True,
    }
    print(f"16 cells: serial {serial:.1f}s | local 2 workers {local2:.1f}s "
          f"(x{serial / local2:.2f}) | ray 2 cpus {ray2:.1f}s (start {ray_start:.1f}s; "
          f"overhead vs local {100 * (ray2 / local2 - 1):.0f}%, without start "
          f"{100 * ((ray2 - ray_start) / local2 - 1):.0f}%)")

    report = make_study({"name": "report16", "family": "gaussian", "policy": "mix", "generations": 50,
                         "replicates": 20, "params": {"real_fraction": [i / 20 for i in range(16)]}})
    run_study(report, tmp / "report", plots=False)
    try:
        from modelcollapse.report.html import write_report
        t = time.perf_counter()
        write_report(tmp / "report")
        results["report16x50_s"] = time.perf_counter() - t
        print(f"report, 16 cells x 50 generations: {results['report16x50_s']:.1f}s")
    except ImportError:
        print("report: modelcollapse.report.html not available")
    save("sweep", results)
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
