"""The metric protocol: pure functions of a fitted model, registered with metadata.

A metric maps a :class:`MetricContext` (one generation of a chunk of R replicates) to an
(R,) array. It is registered with a name, the capabilities it requires of the family (and,
for measures a policy records, of the policy), a direction (``higher`` / ``lower`` is
better, ``truth`` = closer to the true distribution's value is better, ``info`` =
descriptive) and a one-line description shown by ``modelcollapse list``.

One name has one meaning. A metric may have several *implementations* for families with
different capabilities (``kl_to_truth``: closed form for a Gaussian, Monte Carlo on held-out
points for any mixture density); the first registered implementation whose requirements the
family meets is used, so the most specific one is registered first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..capabilities import Capability, PolicyCapability, RecordsCuration, describe, satisfies
from ..registry import Registry
from .state import EvaluationState

Direction = Literal["higher", "lower", "truth", "info"]


@dataclass
class MetricContext:
    """What a metric may read for one generation of one chunk.

    family : the family instance (truth, params). model : the fitted model (R replicates).
    train : the training set it was fitted on (Samples or sufficient statistics), or None
    when the metric is evaluated on the truth itself. n_samples : the nominal size.
    state : the chunk's typed evaluation state, kept across generations (seeds, sampling,
    generation-0 models, memoized held-out data).
    """

    family: Any
    model: Any
    train: Any
    generation: int
    n_samples: int
    state: EvaluationState = field(default_factory=EvaluationState)


@dataclass(frozen=True)
class Implementation:
    """One implementation of a metric, for families that provide ``requires``."""

    fn: Callable[[MetricContext], np.ndarray]
    requires: tuple[type[Capability], ...]
    applies: Callable[[Any], bool] | None = None   # a predicate on the family's params


@dataclass
class Metric:
    """A named metric: one direction, one description, one or more implementations."""

    name: str
    direction: Direction
    description: str
    implementations: list[Implementation]
    policy_requires: tuple[type[PolicyCapability], ...] = ()
    sparse: bool = False   # undefined at some generations (returns NaN there; no row is stored)
    # What plots draw by default: "mean" (with its 95% CI) or "median" (with the 10-90% band
    # of the chains), the latter for heavy-tailed metrics whose mean a few chains dominate.
    center: Literal["mean", "median"] = "mean"
    # Computed only when named (--metrics / metrics = [...]): costly sample-based metrics.
    opt_in: bool = False

    @property
    def requires(self) -> str:
        """The capabilities it needs, as text ('moments | mixture density')."""
        return " | ".join(describe(i.requires) for i in self.implementations)

    def implementation(self, family: Any) -> Implementation | None:
        for impl in self.implementations:
            if satisfies(family, impl.requires):
                return impl
        return None

    def fn(self, ctx: MetricContext) -> np.ndarray:
        """(R,) values for the chunk in ``ctx``, by the implementation ``ctx.family`` admits."""
        impl = self.implementation(ctx.family)
        if impl is None:
            raise TypeError(f"metric {self.name} does not apply to {type(ctx.family).__name__}")
        return impl.fn(ctx)

    def applies_to(self, family: Any, params: Any, policy: Any = None) -> bool:
        """True for a family (class or instance) with ``params`` under ``policy`` (class or
        instance; None: any policy that provides what the metric needs of it)."""
        impl = self.implementation(family)
        if impl is None or (impl.applies is not None and not impl.applies(params)):
            return False
        if self.policy_requires:
            if policy is None or not satisfies(policy, self.policy_requires):
                return False
            if RecordsCuration in self.policy_requires and self.name not in policy.measures:
                return False
        return True


METRICS: Registry[Metric] = Registry("metric")


def metric(name: str, *, direction: Direction, description: str,
           requires: tuple[type[Capability], ...] = (),
           applies: Callable[[Any], bool] | None = None,
           policy_requires: tuple[type[PolicyCapability], ...] = (), sparse: bool = False,
           center: Literal["mean", "median"] = "mean", opt_in: bool = False):
    """Register ``fn(ctx) -> (R,) array`` as metric ``name`` for families that provide
    ``requires`` (and, when given, only under policies that provide ``policy_requires``).
    Registering the same name again adds an implementation for other capabilities; direction,
    description, policy requirements and sparseness must then be the same (one name, one
    meaning). A ``sparse`` metric may return NaN where it is undefined (a filter's precision
    at generation 0, before any filtering): those values are left out of the results.
    ``center`` is what plots and the report draw by default: the mean with its 95% CI, or,
    for heavy-tailed metrics, the median with the 10-90% band of the chains. An ``opt_in``
    metric is computed only when a run names it (costly sample-based metrics)."""

    def wrap(fn: Callable[[MetricContext], np.ndarray]) -> Callable[[MetricContext], np.ndarray]:
        impl = Implementation(fn, tuple(requires), applies)
        if name in METRICS:
            old = METRICS.get(name)
            if (old.direction, old.description, old.policy_requires, old.sparse) != (
                    direction, description, tuple(policy_requires), sparse):
                raise ValueError(f"metric {name} registered twice with different meanings "
                                 f"(direction, description, policy requirements or sparseness)")
            old.implementations.append(impl)
        else:
            METRICS.add(name, Metric(name, direction, description, [impl],
                                     tuple(policy_requires), sparse, center, opt_in))
        return fn

    return wrap


def applicable(family: Any, params: Any, policy: Any = None) -> list[str]:
    """Names of the registered metrics that apply to a family with these params (and policy)."""
    return [n for n, m in METRICS.items() if m.applies_to(family, params, policy)]
