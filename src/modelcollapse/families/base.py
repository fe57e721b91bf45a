"""The model-family protocol shared by every family.

A *family* knows its true distribution, how to draw real data from it, how to fit a model
on a training batch (vectorized over R replicates), and how to sample from a fitted
model. Hyper-parameters live in a frozen ``Params`` dataclass validated on construction;
fitted models keep learned state in attributes ending with ``_`` (scikit-learn style).

Families that can draw the exact sufficient statistics of a sample (the Gaussian: mean and
scatter; the categorical memorizer: counts) instead of the sample itself declare it with
``stats_supported``; the loop then never materializes the data, which is what makes long
chains with thousands of replicates fast.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy.special import ndtri

from ..errors import UserError
from ..randomness import SeedTree, Stream
from ..registry import Registry


@dataclass(frozen=True)
class Sampling:
    """How a fitted model is sampled: the sampling biases blamed for faster collapse.

    temperature : > 0, multiplies the sampler's spread (standard deviation for continuous
        families; categorical probabilities are raised to 1/temperature and renormalized).
    truncation : in (0, 1], the central probability mass kept: continuous samplers draw
        their standard noise from the central ``truncation`` mass of each coordinate, the
        categorical sampler keeps the most likely outcomes covering that mass (top-p).
        1.0 means no truncation.
    """

    temperature: float = 1.0
    truncation: float = 1.0

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise UserError(f"params.temperature must be > 0; got {self.temperature}")
        if not 0.0 < self.truncation <= 1.0:
            raise UserError(f"params.truncation must be in (0, 1]; got {self.truncation}")

    @property
    def biased(self) -> bool:
        return self.temperature != 1.0 or self.truncation != 1.0


def standard_noise(stream: Stream, shape: tuple[int, ...], truncation: float) -> np.ndarray:
    """(R, *shape) standard normals, restricted to the central ``truncation`` mass per entry."""
    if truncation >= 1.0:
        return stream.normal(shape)
    u = stream.uniform(shape)
    return ndtri(0.5 * (1.0 - truncation) + truncation * u)


class Streams:
    """The per-stage random streams of one chunk of replicates (created on first use)."""

    def __init__(self, seeds: SeedTree, replicates: np.ndarray) -> None:
        self.seeds = seeds
        self.replicates = replicates
        self._streams: dict[str, Stream] = {}

    def __getitem__(self, stage: str) -> Stream:
        if stage not in self._streams:
            self._streams[stage] = Stream(self.seeds, stage, self.replicates)
        return self._streams[stage]


class Family(ABC):
    """A model family: truth, real data, fit, sample (all vectorized over replicates)."""

    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type]
    default_n_samples: ClassVar[int]
    overview: ClassVar[tuple[str, ...]] = ()   # headline metrics of the report (default: first 3)

    def __init__(self, params: Any, n_samples: int) -> None:
        self.params = params
        self.n_samples = n_samples

    @classmethod
    def default_samples(cls, params: Any) -> int:
        """n_samples when the user gives none."""
        return cls.default_n_samples

    # -- checks ---------------------------------------------------------------------
    def validate(self, n_samples: int) -> None:
        """Raise UserError when ``n_samples`` does not suit this family."""
        if n_samples < 2:
            raise UserError(f"n_samples must be >= 2; got {n_samples}")

    #: False for families whose data exist only as sufficient statistics (label counts):
    #: policies that need individual data are refused before a run starts.
    samples_supported: ClassVar[bool] = True

    def stats_supported(self, sampling: Sampling, min_size: int) -> bool:
        """True when exact sufficient statistics can replace samples of at least ``min_size``."""
        return False

    def bytes_per_replicate(self, max_train: int) -> int:
        """A generous estimate of the memory one replicate needs, to size chunks."""
        return 64 * max_train

    # -- data -------------------------------------------------------------------------
    def real_source(self, streams: Streams, stats: bool) -> Callable[[int, int], Any]:
        """A function ``(n, generation) -> batch`` drawing fresh real data for the chunk."""
        return lambda n, generation: self.draw_real(n, generation, streams["real"], stats)

    @abstractmethod
    def draw_real(self, n: int, generation: int, stream: Stream, stats: bool) -> Any:
        """n real data per replicate, drawn from the truth."""

    @abstractmethod
    def fit(self, data: Any, previous: Any, stream: Stream) -> Any:
        """A model fitted on ``data`` per replicate; ``previous`` is the last generation's model
        (None at generation 0), for families that warm-start."""

    @abstractmethod
    def sample(self, model: Any, n: int, generation: int, stream: Stream,
               sampling: Sampling, stats: bool) -> Any:
        """n synthetic data per replicate from ``model``, with provenance ``generation``."""

    def truth_model(self) -> Any | None:
        """The true distribution as a one-replicate model, for reference lines."""
        return None

    # -- chain state: what ``--extend`` resumes a finished chain from ------------------------
    #: The classes of this family's fitted models and non-``Samples`` batches (sufficient
    #: statistics) whose attributes are plain data (arrays, numbers, nested such objects):
    #: :meth:`save_state` / :meth:`load_state` then store them as data (see
    #: :mod:`modelcollapse.modelstate`) and a finished chain continues from its last state.
    #: Empty: the family cannot resume, and ``--extend`` recomputes its chains (correct, slower).
    state_classes: ClassVar[tuple[type, ...]] = ()

    @property
    def resumable(self) -> bool:
        """True when a chunk's chains can be saved and continued exactly (``state_classes``)."""
        return bool(self.state_classes)

    def save_state(self, model: Any) -> dict:
        """``model`` (or a statistic batch) as data: arrays and JSON values."""
        from ..modelstate import encode
        return {"object": encode(model, self.state_classes)}

    def resumed(self, streams: Streams, real: Any) -> None:
        """Called when a chunk continues from a saved state, with its restored streams and
        real batch: a family that derives per-chunk data from the streams once (the
        regression's fixed design) takes it from ``real`` instead of drawing it again."""

    def load_state(self, state: dict) -> Any:
        """The object saved by :meth:`save_state`; ValueError when it is not one."""
        from ..modelstate import decode
        if not isinstance(state, dict) or set(state) != {"object"}:
            raise ValueError("a model state must hold one object")
        return decode(state["object"], self.state_classes)

    # -- what the store and the report ask of every family (defaults: nothing to say) --------
    def fingerprint(self) -> dict[str, Any]:
        """Values that identify the family's data beyond its params (a corpus's hash), so
        new content is a new cell; stored with the cell's params."""
        return {}

    def describe_data(self) -> dict | None:
        """The data's provenance for the run's manifest (corpus, splits, tokenizer), or None."""
        return None

    def render(self, batch: Any) -> list[list[str]] | None:
        """Synthetic data as text per replicate, when the run folder keeps samples (text
        families); None: nothing to keep."""
        return None


FAMILIES: Registry[type[Family]] = Registry("family")


def register(cls: type[Family]) -> type[Family]:
    FAMILIES.add(cls.name, cls)
    return cls
