"""Reference lines: a metric evaluated on the family's true distribution.

The report asks the family itself (built from the registry, not through the loop) for its
truth as a one-replicate model and evaluates the metric on it, when that means something:
only ``truth``-direction metrics of families that have a truth model (and every measured,
non-``info`` metric of a family whose truth is a real data set, :class:`RealReference`: the
images' real-vs-real lines), and never for a text family whose corpus is gone or no longer
the one that ran.
"""

from __future__ import annotations

from ..capabilities import RealReference
from ..catalog import FAMILIES, METRICS
from ..errors import UserError
from ..metrics import MetricContext
from ..metrics.state import EvaluationState
from ..randomness import SeedTree
from ..runs.config import CellConfig


def truth_value(cell: CellConfig, metric: str) -> float | None:
    """The metric on the truth for this cell, or None when it is not meaningful."""
    m = METRICS.get(metric)
    if cell.family not in FAMILIES:
        return None
    cls = FAMILIES.get(cell.family)
    if m.direction == "info" or (m.direction != "truth" and not issubclass(cls, RealReference)):
        return None
    try:
        family = cls(cell.sub_params(cls.Params, "family"), cell.n_samples)
        if any(cell.params.get(k, v) != v for k, v in family.fingerprint().items()):
            return None   # the corpus changed since the run
        truth = family.truth_model()
        if truth is None or m.implementation(family) is None:
            return None
        ctx = MetricContext(family, truth, None, 0, cell.n_samples,
                            EvaluationState(SeedTree(cell.seed, cell.seed_key)))
        return float(m.fn(ctx)[0])
    except UserError:
        return None   # e.g. a text family's corpus file is gone
