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
class Variant:
    """One family's implementation of a metric."""

    fn: Callable[[MetricContext], np.ndarray]
    description: str
    applies: Callable[[Any], bool] | None = None   # a predicate on the family's params
    policies: tuple[str, ...] | None = None        # only cells with these policies


@dataclass(frozen=True)
class Metric:
    """A named metric with one direction; families may implement it differently (the
    categorical model's ``entropy`` is that of its probabilities, the text families' that
    of their generated tokens), each variant with its own description."""

    name: str
    direction: Direction
    variants: dict[str, Variant]
    sparse: bool = False   # undefined at some generations (returns NaN there; no row is stored)

    @property
    def families(self) -> tuple[str, ...]:
        return tuple(self.variants)

    @property
    def description(self) -> str:
        return "; ".join(dict.fromkeys(v.description for v in self.variants.values()))

    def fn(self, ctx: MetricContext) -> np.ndarray:
        """(R,) values for the chunk in ``ctx``, by the variant of ``ctx.family``."""
        return self.variants[ctx.family.name].fn(ctx)

    def applies_to(self, family: str, params: Any, policy: str | None = None) -> bool:
        v = self.variants.get(family)
        return (v is not None and (v.applies is None or v.applies(params))
                and (v.policies is None or policy in v.policies))


METRICS: Registry[Metric] = Registry("metric")


def metric(name: str, *, direction: Direction, families: tuple[str, ...], description: str,
           applies: Callable[[Any], bool] | None = None, policies: tuple[str, ...] | None = None,
           sparse: bool = False):
    """Register ``fn(ctx) -> (R,) array`` as metric ``name`` for ``families`` (and, when
    given, only for cells with one of ``policies``); registering the same name again adds
    variants for other families (same direction required). A ``sparse`` metric may return
    NaN where it is undefined (a filter's precision at generation 0, before any filtering):
    those values are left out of the results instead of being stored."""

    def wrap(fn: Callable[[MetricContext], np.ndarray]) -> Callable[[MetricContext], np.ndarray]:
        variant = Variant(fn, description, applies, policies)
        if name in METRICS:
            old = METRICS.get(name)
            if old.direction != direction or set(families) & set(old.variants):
                raise ValueError(f"metric {name} registered twice with conflicting families "
                                 f"or directions")
            old.variants.update({f: variant for f in families})
        else:
            METRICS.add(name, Metric(name, direction, {f: variant for f in families}, sparse))
        return fn

    return wrap


def applicable(family: str, params: Any, policy: str | None = None) -> list[str]:
    """Names of the registered metrics that apply to a family with these params (and policy)."""
    return [n for n, m in METRICS.items() if m.applies_to(family, params, policy)]
