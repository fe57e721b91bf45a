"""A metric plugin: the model's spread relative to the truth's, for every family with moments.

Load it with ``modelcollapse --plugin examples/plugins/spread_metric.py run --family gaussian
--generations 20``: ``spread_ratio`` then appears in ``modelcollapse list`` and in the run
for every family that provides the ``moments`` capability (gaussian, gmm, kde, and any plugin
family that provides it), without a family name anywhere.
"""

from __future__ import annotations

import numpy as np

from modelcollapse.capabilities import HasMoments
from modelcollapse.metrics.base import MetricContext, metric


@metric("spread_ratio", direction="truth", requires=(HasMoments,),
        description="sqrt(tr Cov(model) / tr Cov(truth)): 1 = the truth's spread, 0 = collapsed")
def spread_ratio(ctx: MetricContext) -> np.ndarray:
    cov = ctx.model.moments()[1]
    truth_cov = ctx.family.truth_mixture().cov()[0]
    return np.sqrt(np.trace(cov, axis1=1, axis2=2) / np.trace(truth_cov))
