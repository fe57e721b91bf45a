"""The metric protocol: pure functions of a fitted model, registered with metadata.

A metric maps a :class:`MetricContext` (one generation of a chunk of R replicates) to an
(R,) array. It is registered with a name, the families it applies to, a direction
(``higher`` / ``lower`` is better, ``truth`` = closer to the true distribution's value is
better, ``info`` = descriptive) and a one-line description shown by ``modelcollapse list``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..registry import Registry

Direction = Literal["higher", "lower", "truth", "info"]


@dataclass
class MetricContext:
    """What a metric may read for one generation of one chunk.

    family : the family instance (truth, params). model : the fitted model (R replicates).
    train : the training set it was fitted on (Samples or sufficient statistics), or None
    when the metric is evaluated on the truth itself. n_samples : the nominal size.
    cache : per-chunk storage shared across generations (held-out data, truth densities).
    """

    family: Any
    model: Any
    train: Any
    generation: int
    n_samples: int
    cache: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[MetricContext], np.ndarray]
    direction: Direction
    families: tuple[str, ...]
    description: str
    applies: Callable[[Any], bool] | None = None   # a predicate on the family's params

    def applies_to(self, family: str, params: Any) -> bool:
        return family in self.families and (self.applies is None or self.applies(params))


METRICS: Registry[Metric] = Registry("metric")


def metric(name: str, *, direction: Direction, families: tuple[str, ...], description: str,
           applies: Callable[[Any], bool] | None = None):
    """Register ``fn(ctx) -> (R,) array`` as a metric."""

    def wrap(fn: Callable[[MetricContext], np.ndarray]) -> Callable[[MetricContext], np.ndarray]:
        METRICS.add(name, Metric(name, fn, direction, families, description, applies))
        return fn

    return wrap


def applicable(family: str, params: Any) -> list[str]:
    """Names of the registered metrics that apply to a family with these params."""
    return [n for n, m in METRICS.items() if m.applies_to(family, params)]
