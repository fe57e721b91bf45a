"""modelcollapse: simulate, measure and guard against model collapse.

Quick start::

    import modelcollapse as mc
    df = mc.run(family="gaussian", policy="replace", generations=50, replicates=200)
    df[df.metric == "variance"].groupby("generation").value.mean()

``run`` returns the tidy table (one row per cell, generation, replicate, metric);
``summarize`` gives per cell, generation and metric the mean with its CI, the median and
quantiles; ``plot`` draws one metric from a table, a RunResult or a run folder;
``load`` reads a run folder back; ``theory`` holds the closed forms; ``FAMILIES``,
``POLICIES`` and ``METRICS`` are the registries ``modelcollapse list`` shows.
"""

__version__ = "0.1.0"

from . import theory  # noqa: E402
from .api import RunResult, load, make_study, run, run_study  # noqa: E402
from .errors import UserError  # noqa: E402
from .catalog import FAMILIES, METRICS, POLICIES  # noqa: E402
from .summary import plot, summarize  # noqa: E402

__all__ = ["FAMILIES", "METRICS", "POLICIES", "RunResult", "UserError", "load", "make_study",
           "plot", "run", "run_study", "summarize", "theory", "__version__"]
