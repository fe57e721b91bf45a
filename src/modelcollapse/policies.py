"""Policies: how the next generation's training set is built from real and synthetic data.

A policy sees the previous training set, the synthetic data the last model just sampled,
the original real pool and a source of fresh real data, and returns the next training
set. Sizes are fixed by the policy (``synthetic_size``) so every replicate's batch stays
rectangular and can be processed in one array operation.

The same code runs on explicit :class:`~modelcollapse.provenance.Samples` and on the
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
    """real_fraction: share of real data in each training set, in [0, 1].
    real_source: 'fixed' resamples the original real pool each generation (Shumailov et
    al.'s random 10%); 'fresh' draws new real data each generation."""

    real_fraction: float = 0.1
    real_source: Literal["fixed", "fresh"] = "fixed"

    def __post_init__(self) -> None:
        if not 0.0 <= self.real_fraction <= 1.0:
            raise UserError(f"params.real_fraction must be in [0, 1]; got {self.real_fraction}")


@register
class Mix(Policy):
    name = "mix"
    description = "n_samples per generation: a real_fraction of real data (fixed pool or fresh) plus synthetic"
    Params = MixParams

    def n_real(self, n_samples: int) -> int:
        return int(round(self.params.real_fraction * n_samples))

    def real_size(self, n_samples: int) -> int:
        return self.n_real(n_samples)

    def synthetic_size(self, n_samples: int) -> int:
        return n_samples - self.n_real(n_samples)

    def uses_samples(self) -> bool:
        # A random subset of a fixed pool has no exact sufficient-statistic shortcut.
        return self.params.real_source == "fixed" and 0.0 < self.params.real_fraction

    def real_part(self, step: Step, k: int) -> Any:
        """k real data: fresh ones, or a random subset of the original pool."""
        if self.params.real_source == "fresh":
            return step.draw_real(k, step.generation + 1)
        return step.real_pool.subsample(k, step.stream)

    def next_train(self, step: Step) -> Any:
        k = self.n_real(step.n_samples)
        if k == 0:
            return step.synthetic
        real = self.real_part(step, k)
        if k == step.n_samples:
            return real
        return real.concat(step.synthetic)

