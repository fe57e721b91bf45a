"""--extend from G to 2G generations: continuing each chain from its saved final state vs
recomputing the old generations (what --extend did before; forced here by giving the
family no state classes, the fallback path), and a fresh run of 2G generations.

Usage: .venv/bin/python benchmarks/bench_extend.py [--quick]
Settings: Gaussian (d = 2, samples, not sufficient statistics) under replace (n = 1,000)
and under accumulate (n = 100), categorical (500 outcomes, n = 1,000) under replace; 500 replicates
(--quick: 200), chunks of 100, 40 -> 80 generations.
Writes benchmarks/results/extend.json. Checks that all three tables hold the same values.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from provenance import code_version, machine, save  # noqa: E402


def _key(df: pd.DataFrame) -> pd.DataFrame:
    return (df[["cell", "generation", "replicate", "metric", "value"]]
            .astype({"cell": str, "metric": str})
            .sort_values(["cell", "metric", "generation", "replicate"]).reset_index(drop=True))


def case(family: str, policy: str, params: dict, reps: int, g0: int, g1: int,
         n_samples: int | None = None) -> dict:
    from modelcollapse.api import make_study, run_study
    from modelcollapse.catalog import FAMILIES
    from modelcollapse.loop import RecomputeWarning

    def study(g):
        return make_study(family=family, policy=policy, generations=g, replicates=reps,
                          n_samples=n_samples, params={"chunk_size": 100, **params})

    root = Path(tempfile.mkdtemp(prefix="bench_extend_"))
    out: dict = {"family": family, "policy": policy, "params": params, "replicates": reps,
                 "n_samples": n_samples, "from": g0, "to": g1}
    try:
        cls = FAMILIES.get(family)
        for name, classes in (("continue", cls.state_classes), ("recompute", ())):
            folder = root / name
            saved = cls.state_classes
            cls.state_classes = classes
            try:
                t = time.perf_counter()
                run_study(study(g0), folder, plots=False)
                out[f"{name}_first_run_s"] = time.perf_counter() - t
                t = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RecomputeWarning)
                    df = run_study(study(g1), folder, plots=False, extend=True).metrics
                out[f"{name}_extend_s"] = time.perf_counter() - t
            finally:
                cls.state_classes = saved
            out[f"{name}_table"] = _key(df)
        t = time.perf_counter()
        fresh = run_study(study(g1), root / "fresh", plots=False).metrics
        out["fresh_s"] = time.perf_counter() - t
        out["state_bytes"] = sum(p.stat().st_size for p in (root / "continue").rglob("final/*"))
        out["identical"] = bool(_key(fresh).equals(out["continue_table"])
                                and _key(fresh).equals(out["recompute_table"]))
        del out["continue_table"], out["recompute_table"]
        out["speedup"] = out["recompute_extend_s"] / out["continue_extend_s"]
        print(f"{family}/{policy}: extend {g0}->{g1}: continue {out['continue_extend_s']:.1f} s, "
              f"recompute {out['recompute_extend_s']:.1f} s ({out['speedup']:.2f}x); fresh "
              f"{g1}: {out['fresh_s']:.1f} s; states {out['state_bytes'] / 2**20:.1f} MiB; "
              f"identical: {out['identical']}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> None:
    quick = "--quick" in sys.argv
    reps = 200 if quick else 500
    results = [case("gaussian", "replace", {"dim": 2, "sufficient_stats": False}, reps, 40, 80, 1000),
               case("categorical", "replace", {"n_outcomes": 500}, reps, 40, 80),
               # generation g fits (g + 1) n points: generations 40..79 are 3/4 of the work
               case("gaussian", "accumulate", {"dim": 2, "sufficient_stats": False}, reps, 40, 80)]
    save("extend", {"cases": results, "quick": quick, "code": code_version(),
                    "machine": machine("numpy")})


if __name__ == "__main__":
    main()
