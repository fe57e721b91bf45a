"""Policies: how the next generation's training set is built from real and synthetic data.

A policy sees the previous training set, the synthetic data the last model just sampled,
the original real pool and a source of fresh real data, and returns the next training
set. Sizes are fixed by the policy (``synthetic_size``) so every replicate's batch stays
rectangular and can be processed in one array operation.

The same code runs on explicit :class:`~modelcollapse.batches.Samples` and on the
exact sufficient statistics some families use (their ``concat`` merges statistics), so a
policy is written once. Policies that need individual data (subsampling) say so with
``needs_samples``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from .capabilities import Capability, describe, satisfies
from .errors import UserError
from .randomness import Stream
from .registry import Registry


@dataclass
class Step:
    """Everything a policy may use to build generation ``generation + 1``'s training set."""

    generation: int          # the generation whose model produced ``synthetic``
    n_samples: int           # the nominal training-set size
    train: Any               # that generation's training set
    synthetic: Any           # its model's samples (curation policies curate them)
    real_pool: Any           # the original real data (generation 0's training set)
    history: Any             # all data so far (real pool + every synthetic batch), when kept
    draw_real: Callable[[int, int], Any]  # (n, generation) -> fresh real data
    stream: Stream           # per-replicate randomness of the "policy" stage
    family: Any = None       # the family (curation reads its corpus and reference data)
    model: Any = None        # the model that produced ``synthetic``
    sampling: Any = None     # how it was sampled
    params: Any = None       # the policy's parameters (curation blocks read their options there)


@dataclass(frozen=True)
class NoParams:
    """This policy takes no parameters."""


class Policy(ABC):
    """Build the next training set. Hyper-parameters come in ``params`` only."""

    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type] = NoParams
    needs_samples: ClassVar[bool] = False
    keeps_history: ClassVar[bool] = False  # the loop keeps all data so far in Step.history
    requires: ClassVar[tuple[type[Capability], ...]] = ()   # what the family must provide

    def __init__(self, params: Any) -> None:
        self.params = params

    def check_family(self, family: Any) -> None:
        """Raise UserError, before anything runs or is written, when ``family`` lacks what
        this policy (with its params) needs. Subclasses extend it for their settings."""
        if not satisfies(family, self.requires):
            raise UserError(f"policy {self.name} needs a family with {describe(self.requires)}; "
                            f"family {family.name} has none")

    def synthetic_size(self, n_samples: int) -> int:
        """How many synthetic data the model samples per generation."""
        return n_samples

    def uses_samples(self) -> bool:
        """True when this configuration needs individual data, not sufficient statistics."""
        return self.needs_samples

    def max_train_size(self, n_samples: int, generations: int) -> int:
        """The largest training set this policy builds, to size memory."""
        return n_samples

    def real_size(self, n_samples: int) -> int:
        """How many real data enter each later training set (0: none)."""
        return 0

    def train_size(self, n_samples: int) -> int:
        """The size of each training set after generation 0 (checked like n_samples)."""
        return n_samples

    def real_pool_size(self) -> int | None:
        """The size of the real pool (generation 0's training set) when the policy fixes it;
        None leaves it to n_samples."""
        return None

    @abstractmethod
    def next_train(self, step: Step) -> Any:
        """The training set of generation ``step.generation + 1``."""


POLICIES: Registry[type[Policy]] = Registry("policy")


def register(cls: type[Policy]) -> type[Policy]:
    POLICIES.add(cls.name, cls)
    return cls


@register
class Replace(Policy):
    name = "replace"
    description = "train only on the last generation's samples (the fully synthetic loop)"

    def next_train(self, step: Step) -> Any:
        return step.synthetic


@register
class Accumulate(Policy):
    name = "accumulate"
    description = "keep all real and synthetic data so far; each generation adds n_samples"

    def max_train_size(self, n_samples: int, generations: int) -> int:
        return n_samples * generations

    def next_train(self, step: Step) -> Any:
        return step.train.concat(step.synthetic)


@dataclass(frozen=True)
class SubsampleParams:
    """keep: training-set size after subsampling (0 means n_samples)."""

    keep: int = 0

    def __post_init__(self) -> None:
        if self.keep < 0 or self.keep == 1:
            raise UserError(f"params.keep must be 0 (n_samples) or >= 2; got {self.keep}")


@register
class AccumulateSubsample(Policy):
    name = "accumulate_subsample"
    description = "accumulate, then subsample uniformly to a fixed size (keep, default n_samples)"
    Params = SubsampleParams
    needs_samples = True
    keeps_history = True

    def max_train_size(self, n_samples: int, generations: int) -> int:
        return n_samples * generations

    def next_train(self, step: Step) -> Any:
        # A uniform subset of *everything* accumulated (Kazdan et al.'s accumulate-subsample),
        # so the expected share of each generation's data is 1 / (generations so far).
        keep = self.params.keep or step.n_samples
        return step.history.subsample(keep, step.stream)


@dataclass(frozen=True)
class MixParams:
    """real_fraction: share of real data in each training set of n_samples, in [0, 1].
    real_source: 'fixed' takes the real part from the original real pool (a random subset of
    it under real_fraction, Shumailov et al.'s random 10%; all of it under n_real); 'fresh'
    draws new real data each generation.
    n_real, n_synthetic: absolute sizes instead of real_fraction (give both): each later
    training set holds n_real real data plus n_synthetic data sampled from the last model.
    With n_real > 0 the real pool *is* n_real points (n_samples is set to n_real), so under
    'fixed' the same n_real points enter every generation and generation 0 is the fit on
    them alone (MAD's synthetic augmentation loop; Bertrand et al.'s lambda =
    n_synthetic / n_real); n_real = 0 is the fully synthetic loop after a generation 0 fitted
    on n_samples real data. Unset (the default) leaves real_fraction in charge, so existing
    studies keep their cells and numbers."""

    real_fraction: float = 0.1
    real_source: Literal["fixed", "fresh"] = "fixed"
    n_real: int | None = None
    n_synthetic: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.real_fraction <= 1.0:
            raise UserError(f"params.real_fraction must be in [0, 1]; got {self.real_fraction}")
        if (self.n_real is None) != (self.n_synthetic is None):
            given = "n_real" if self.n_real is not None else "n_synthetic"
            missing = "n_synthetic" if given == "n_real" else "n_real"
            raise UserError(f"params.{given} needs params.{missing} as well: mix with absolute "
                            f"sizes takes both (0 is allowed for either)")
        if self.absolute:
            for name in ("n_real", "n_synthetic"):
                if getattr(self, name) < 0:
                    raise UserError(f"params.{name} must be >= 0; got {getattr(self, name)}")
            if self.n_real + self.n_synthetic < 2:
                raise UserError(f"params.n_real + params.n_synthetic must be >= 2 (a training "
                                f"set); got {self.n_real + self.n_synthetic}")
            if self.n_real == 0:   # no real data after generation 0: fixed and fresh coincide
                object.__setattr__(self, "real_source", "fixed")

    @property
    def absolute(self) -> bool:
        """True when the sizes are given as n_real and n_synthetic."""
        return self.n_real is not None


@register
class Mix(Policy):
    name = "mix"
    description = ("real and synthetic data in each training set: a real_fraction of n_samples, "
                   "or n_real + n_synthetic; real data from a fixed pool or fresh")
    Params = MixParams

    def n_real(self, n_samples: int) -> int:
        if self.params.absolute:
            return int(self.params.n_real)
        return int(round(self.params.real_fraction * n_samples))

    def real_size(self, n_samples: int) -> int:
        return self.n_real(n_samples)

    def real_pool_size(self) -> int | None:
        return self.params.n_real if self.params.absolute and self.params.n_real > 0 else None

    def train_size(self, n_samples: int) -> int:
        if self.params.absolute:
            return int(self.params.n_real + self.params.n_synthetic)
        return n_samples

    def synthetic_size(self, n_samples: int) -> int:
        if self.params.absolute:
            return int(self.params.n_synthetic)
        return n_samples - self.n_real(n_samples)

    def max_train_size(self, n_samples: int, generations: int) -> int:
        if self.params.absolute:
            return max(n_samples, self.params.n_real + self.params.n_synthetic)
        return n_samples

    def uses_samples(self) -> bool:
        # A random subset of a fixed pool has no exact sufficient-statistic shortcut; the
        # whole pool (absolute sizes) merges with the synthetic statistics exactly.
        return (self.params.real_source == "fixed" and 0.0 < self.params.real_fraction
                and not self.params.absolute)

    def real_part(self, step: Step, k: int) -> Any:
        """k real data: fresh ones, the whole pool, or a random subset of the pool."""
        if self.params.real_source == "fresh":
            return step.draw_real(k, step.generation + 1)
        if self.params.absolute:
            return step.real_pool   # n_samples == n_real: the same real set every generation
        return step.real_pool.subsample(k, step.stream)

    def next_train(self, step: Step) -> Any:
        k = self.n_real(step.n_samples)
        if k == 0:
            return step.synthetic
        real = self.real_part(step, k)
        if step.synthetic is None or (not self.params.absolute and k == step.n_samples):
            return real
        return real.concat(step.synthetic)

