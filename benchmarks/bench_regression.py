"""Linear regression under accumulate: normal equations with incremental Gram updates (ours
now) vs the batched pseudo-inverse of the whole training set (ours before), and the ratio
to replace, in one run.

Setting (issue 17): d = 10, T = 100 rows per generation, noise 1, 2,000 replicates,
20 generations, fixed design. Under accumulate generation g fits (g + 1) * 100 rows.

  (a) before     ``run_cell`` with the family's fit replaced by the old one:
                 ``np.linalg.pinv(X) @ y`` over the whole (R, N, d) training set (batched SVD).
                 ``--quick`` runs it on 200 replicates and scales by 10 (it is linear in R).
  (b) after      ``run_cell`` as shipped (normal equations; only the new rows' X'X and X'y are
                 added when the training set grew by appending).
  (c) replace    ``run_cell`` under replace, the same setting.

Correctness: (a) and (b) give the same coefficients up to rounding (checked on the first
200 replicates: max |difference| of test_error), and (b) matches the closed form
s2 d/(T-d-1) sum 1/i^2 within Monte Carlo error at the last generation.

Usage: .venv/bin/python benchmarks/bench_regression.py [--quick]
Writes benchmarks/results/regression.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np

from modelcollapse import theory
from modelcollapse.api import make_study
from modelcollapse.loop import run_cell
from modelcollapse.families import linear_regression as lr

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from provenance import code_version, machine, save  # noqa: E402

D, T, G, R = 10, 100, 20, 2000


def old_fit(self, data, previous, stream):
    """The fit before this change: a batched pseudo-inverse of the whole training set."""
    d = self.params.dim
    x, y = data.values[:, :, :d], data.values[:, :, d]
    coef = np.einsum("rdn,rn->rd", np.linalg.pinv(x), y)
    design = previous.design_ if previous is not None else data.design
    return lr.RegressionModel(coef, design, self.params.noise)


def cell(policy: str, replicates: int):
    return make_study(family="linear_regression", policy=policy, generations=G, replicates=replicates,
                      seed=0, metrics=["test_error"], params={"dim": D, "n_train": T}).cells[0]


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="time the old fit on 200 replicates, scaled")
    args = ap.parse_args()
    r_old = 200 if args.quick else R
    t_after, after = timed(lambda: run_cell(cell("accumulate", R)))
    t_replace, _ = timed(lambda: run_cell(cell("replace", R)))
    with mock.patch.object(lr.LinearRegression, "fit", old_fit):
        t_before, before = timed(lambda: run_cell(cell("accumulate", r_old)))
    t_before_full = t_before * R / r_old
    # Same numbers up to rounding on the shared replicates.
    a = after[after.replicate < r_old].sort_values(["generation", "replicate"])["value"].to_numpy()
    b = before.sort_values(["generation", "replicate"])["value"].to_numpy()
    diff = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))
    last = after[after.generation == G - 1]["value"].to_numpy()
    expected = float(theory.regression_accumulate_error(1.0, D, T, np.array([G]))[0])
    z = abs(last.mean() - expected) / (last.std(ddof=1) / np.sqrt(len(last)))
    result = {
        "setting": {"dim": D, "n_train": T, "generations": G, "replicates": R, "policy": "accumulate"},
        "before_pinv_s": t_before_full, "before_replicates_timed": r_old,
        "after_normal_equations_s": t_after, "replace_s": t_replace,
        "speedup": t_before_full / t_after, "after_over_replace": t_after / t_replace,
        "max_relative_difference_test_error": diff,
        "last_generation_mean": float(last.mean()), "closed_form": expected, "z": float(z),
        "code": code_version(), "machine": machine("numpy"),
    }
    for k, v in result.items():
        if k not in ("code", "machine"):
            print(f"{k}: {v}")
    save("regression", result)


if __name__ == "__main__":
    main()
