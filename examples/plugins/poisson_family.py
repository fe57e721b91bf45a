"""A family plugin: counts from a Poisson distribution, refitted by maximum likelihood.

Load it with ``modelcollapse --plugin examples/plugins/poisson_family.py run --family poisson
--generations 20``. This one file is all a new family needs: its parameters, its fitted
model, the family (truth, real data, fit, sample), the capability it provides, the metrics
that need that capability and the closed-form overlay the plots draw.

Closed form (replace policy, n draws per generation): the MLE rate is the sample mean, so
lambda_{g+1} given lambda_g has mean lambda_g and variance lambda_g / n. Hence E[lambda_g] =
lambda and, since generation 0 is itself fitted on n real draws,
E[(lambda_g - lambda)^2] = (g + 1) lambda / n: the rate performs a martingale random walk
whose squared error grows linearly, until a chain hits 0 and stays there (collapse).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modelcollapse.capabilities import Capability
from modelcollapse.errors import UserError
from modelcollapse.metrics.base import MetricContext, metric
from modelcollapse.families.base import Family, Sampling, register
from modelcollapse.batches import REAL, SYNTHETIC, Samples
from modelcollapse.randomness import Stream
from modelcollapse.theory import Curve, overlay


class HasRate(Capability):
    """The model is a Poisson rate per replicate: ``model.rate_`` (R,), ``family.truth_rate``."""

    label = "poisson rate"


@dataclass(frozen=True)
class PoissonParams:
    """truth_rate: the true Poisson rate (> 0)."""

    truth_rate: float = 3.0

    def __post_init__(self) -> None:
        if not 0.0 < self.truth_rate <= 1e6:
            raise UserError(f"params.truth_rate must be in (0, 1e6]; got {self.truth_rate}")


class PoissonModel:
    """Fitted rates: rate_ (R,)."""

    def __init__(self, rate: np.ndarray) -> None:
        self.rate_ = rate


@register
class Poisson(Family, HasRate):
    name = "poisson"
    description = "Poisson counts refitted by maximum likelihood (example plugin)"
    Params = PoissonParams
    default_n_samples = 50

    @property
    def truth_rate(self) -> float:
        return self.params.truth_rate

    def _draw(self, rate: np.ndarray, n: int, stream: Stream, source: int,
              generation: int) -> Samples:
        # One generator per replicate: a chain's draws do not depend on the chunk it runs in.
        counts = np.stack([g.poisson(r, size=n) for g, r in zip(stream.generators("poisson"), rate)])
        return Samples.made(counts[:, :, None].astype(float), source, generation)

    def draw_real(self, n: int, generation: int, stream: Stream, stats: bool) -> Samples:
        return self._draw(np.full(stream.n_replicates, self.truth_rate), n, stream, REAL, generation)

    def fit(self, data: Samples, previous: Any, stream: Stream) -> PoissonModel:
        return PoissonModel(data.values[:, :, 0].mean(axis=1))

    def sample(self, model: PoissonModel, n: int, generation: int, stream: Stream,
               sampling: Sampling, stats: bool) -> Samples:
        return self._draw(model.rate_ * sampling.temperature, n, stream, SYNTHETIC, generation)

    def truth_model(self) -> PoissonModel:
        return PoissonModel(np.array([self.truth_rate]))


@metric("rate", direction="truth", requires=(HasRate,), description="the fitted Poisson rate")
def rate(ctx: MetricContext) -> np.ndarray:
    return ctx.model.rate_


@metric("rate_error", direction="lower", requires=(HasRate,),
        description="(lambda_g - lambda)^2, squared error of the fitted rate")
def rate_error(ctx: MetricContext) -> np.ndarray:
    return (ctx.model.rate_ - ctx.family.truth_rate) ** 2


@metric("extinct", direction="lower", requires=(HasRate,),
        description="1 when the fitted rate is 0 (the chain has collapsed for good)")
def extinct(ctx: MetricContext) -> np.ndarray:
    return (ctx.model.rate_ == 0).astype(float)


@overlay(HasRate)
def poisson_replace(policy: str, params: dict, n_samples: int, metric: str,
                    generations: np.ndarray) -> Curve | None:
    if policy != "replace" or params.get("temperature", 1.0) != 1.0:
        return None
    lam = params["truth_rate"]
    if metric == "rate_error":
        return Curve((generations + 1) * lam / n_samples, "(g+1) lambda / n (martingale)")
    if metric == "rate":
        return Curve(np.full(len(generations), lam), "E[lambda_g] = lambda")
    return None
