"""The labels family: a classifier that learns labelled data written by its predecessor.

The setting of Feng, Dohmatob, Yang, Charton and Kempe (2024, "Beyond Model Collapse:
Scaling Up with Synthesized Data Requires Verification"). There are K inputs and every
input's true label is 0. The model is the memorizer-majority classifier: per input, the
label with the most training examples. Its generator writes, for uniformly drawn inputs,
the model's predicted label flipped with probability ``label_noise`` (p): a correct model
writes wrong labels at rate p, a model that is wrong everywhere at rate 1 - p. Pruned by a
verifier (policy ``verified``), the data's error rate becomes
p' = p psi / (p psi + (1 - p) phi), and with enough data per input the next model is right
where p' < 1/2 and wrong where p' > 1/2.

Exact sufficient statistics: the majority classifier reads a training set only through its
per-input label counts, so data are never materialized: a batch is a (R, K, 2) count array
(:class:`LabelStats`) and the verifier thins it with binomial draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..capabilities import Classifies, LabelledBatches
from ..errors import UserError
from ..randomness import Stream
from .base import Family, Sampling, register
from .categorical import biased

TRUE_LABEL = 0  # every input's true label; label 1 is the wrong one, so counts[..., 1] are errors


@dataclass(frozen=True)
class LabelsParams:
    """n_inputs: K >= 1 inputs, drawn uniformly. label_noise: p in [0, 1], the probability
    that the generator writes the opposite of its model's predicted label."""

    n_inputs: int = 100
    label_noise: float = 0.2

    def __post_init__(self) -> None:
        if self.n_inputs < 1:
            raise UserError(f"params.n_inputs must be >= 1; got {self.n_inputs}")
        if not 0.0 <= self.label_noise <= 1.0:
            raise UserError(f"params.label_noise must be in [0, 1]; got {self.label_noise}")


@dataclass
class LabelStats:
    """Labelled data of R replicates as exact counts.

    counts : (R, K, 2) int64, ``counts[r, k, y]`` examples of input k with label y in
        replicate r (label 0 is correct, label 1 wrong).
    n_real : how many of each replicate's examples are real data (all correctly labelled).
    """

    counts: np.ndarray
    n_real: int

    @property
    def size(self) -> np.ndarray:
        """(R,) examples per replicate; after verification it differs between replicates."""
        return self.counts.sum(axis=(1, 2))

    def concat(self, other: "LabelStats") -> "LabelStats":
        return LabelStats(self.counts + other.counts, self.n_real + other.n_real)

    def real_share(self) -> np.ndarray:
        """(R,) the share of real data in each replicate's batch."""
        return self.n_real / self.size

    def wrong_share(self) -> np.ndarray:
        """(R,) the share of wrongly labelled examples in each replicate's batch."""
        return self.counts[:, :, 1].sum(axis=1) / self.size

    def verify(self, phi: float, psi: float, gens: list[np.random.Generator]) -> "LabelStats":
        """The examples a verifier keeps: each correct one with probability ``phi``, each
        wrong one with probability ``psi``, independently; ``gens`` has one generator per
        replicate. Kept correct ~ Binomial(c0, phi), kept wrong ~ Binomial(c1, psi) per input.
        """
        if self.n_real:
            # Real and synthetic correct examples share one count, so the real ones that
            # survive could not be told apart: verification is for synthetic batches only.
            raise ValueError("verify acts on synthetic batches only (n_real must be 0)")
        rates = np.array([phi, psi])   # per label: (correct, wrong)
        kept = np.stack([g.binomial(c, rates) for g, c in zip(gens, self.counts)])
        return LabelStats(kept, 0)


class LabelModel:
    """Fitted majority classifiers: pred_ (R, K) int8, the predicted label of every input."""

    def __init__(self, pred: np.ndarray) -> None:
        self.pred_ = pred


def _counts_only(stats: bool) -> None:
    if not stats:
        raise UserError("family labels keeps its data as label counts only: use "
                        "sufficient_stats = 'auto' and a policy that works on counts "
                        "(replace, accumulate, verified, or mix with real_source = 'fresh')")


@register
class Labels(Family, Classifies, LabelledBatches):
    name = "labels"
    overview = ('error_rate', 'train_error')   # the report's headline panels
    description = ("K inputs with true label 0, a majority-vote classifier whose generator "
                   "flips labels with probability label_noise (Feng et al. 2024)")
    Params = LabelsParams
    state_classes = (LabelModel, LabelStats)   # models and batches saved as data (--extend resumes)
    default_n_samples = 10_000
    samples_supported = False

    @classmethod
    def default_samples(cls, params: LabelsParams) -> int:
        # 100 examples per input: enough for majorities to follow the label-noise rate.
        return 100 * params.n_inputs

    def stats_supported(self, sampling: Sampling, min_size: int) -> bool:
        return True

    def bytes_per_replicate(self, max_train: int) -> int:
        # A few (K, 2) int64 count arrays (train, synthetic, verified, history) and the
        # float probabilities of the sampler; the counts do not grow with the data.
        return 256 * self.params.n_inputs

    def noise(self, sampling: Sampling) -> float:
        """The generator's flip probability after the sampling bias: its label distribution
        given a prediction, (1 - p, p) over (predicted, other), is tempered and truncated
        like the categorical sampler's (a cold or truncated sampler flips less)."""
        p = self.params.label_noise
        return float(biased(np.array([[1.0 - p, p]]), sampling)[0, 1])

    def _draw(self, wrong: np.ndarray, n: int, stream: Stream, n_real: int) -> LabelStats:
        """Counts of n examples per replicate: inputs uniform, input k labelled wrongly with
        probability ``wrong`` (R, K). Multinomial over the 2K (input, label) cells: the same
        law as input counts ~ Multinomial(n, uniform) and then wrong ~ Binomial(count, wrong)."""
        k = self.params.n_inputs
        flat = np.stack([1.0 - wrong, wrong], axis=-1).reshape(len(wrong), 2 * k) / k
        counts = np.stack([g.multinomial(n, q) for g, q in zip(stream.generators("counts"), flat)])
        return LabelStats(counts.reshape(-1, k, 2), n_real)

    def draw_real(self, n: int, generation: int, stream: Stream, stats: bool) -> LabelStats:
        _counts_only(stats)
        return self._draw(np.zeros((stream.n_replicates, self.params.n_inputs)), n, stream, n)

    def fit(self, data: LabelStats, previous: LabelModel | None, stream: Stream) -> LabelModel:
        """Per input, the label with more examples; a tie (an input without data included)
        is broken by a fair coin from the fit stream, so an unseen input is a guess."""
        c0, c1 = data.counts[..., 0], data.counts[..., 1]
        coin = stream.uniform((self.params.n_inputs,)) < 0.5  # drawn every time: streams stay aligned
        return LabelModel(np.where(c1 == c0, coin, c1 > c0).astype(np.int8))

    def sample(self, model: LabelModel, n: int, generation: int, stream: Stream,
               sampling: Sampling, stats: bool) -> LabelStats:
        _counts_only(stats)
        f = self.noise(sampling)
        return self._draw(np.where(model.pred_ == TRUE_LABEL, f, 1.0 - f), n, stream, 0)
