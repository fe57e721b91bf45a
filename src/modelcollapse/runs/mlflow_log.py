"""Optional MLflow logging: one MLflow run per finished cell (local file store by default).

Each run gets the cell's parameters, tags (study name, cell key, label) and, per metric,
the mean over replicates at every generation as a metric history (step = generation).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..errors import UserError
from .study import Study


def log_cells(study: Study, tables: dict[str, pd.DataFrame], keys: list[str], uri: str) -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if uri.startswith("file:"):
        # MLflow 3 keeps its file store in maintenance mode behind this switch; a file store
        # inside the run folder needs no server and no database.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UserError("--mlflow needs MLflow: pip install 'modelcollapse[mlflow]'") from None
    try:
        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name(study.name)
        exp_id = exp.experiment_id if exp else client.create_experiment(study.name)
    except Exception as e:  # MLflow raises its own types for a bad URI or store
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"--mlflow {uri}: cannot use this tracking store ({first}); results are "
                        f"saved, rerun with a valid URI to log them") from None
    cells = {c.key: c for c in study.cells}
    for key in keys:
        cell = cells[key]
        run = client.create_run(exp_id, run_name=study.label(cell),
                                tags={"modelcollapse.cell": key, "modelcollapse.study": study.name})
        params = {"family": cell.family, "policy": cell.policy, "n_samples": cell.n_samples,
                  "generations": cell.generations, "replicates": cell.replicates, "seed": cell.seed,
                  **cell.params}
        means = tables[key].groupby(["metric", "generation"], observed=True)["value"].mean()
        metrics = [Metric(str(m), float(v), 0, int(g)) for (m, g), v in means.items()
                   if pd.notna(v) and abs(v) != float("inf")]
        for lo in range(0, len(metrics), 1000):  # MLflow's batch limit
            client.log_batch(run.info.run_id, metrics=metrics[lo:lo + 1000],
                             params=[Param(k, str(v)) for k, v in params.items()] if lo == 0 else [],
                             tags=[RunTag("label", study.label(cell))] if lo == 0 else [])
        client.set_terminated(run.info.run_id)


def default_uri(out: str | Path) -> str:
    """A file store inside the run folder."""
    return Path(out, "mlruns").resolve().as_uri()
