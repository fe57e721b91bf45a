"""The ``verified`` policy: train on the last generation's samples after a verifier prunes them.

Feng, Dohmatob, Yang, Charton and Kempe (2024, "Beyond Model Collapse: Scaling Up with
Synthesized Data Requires Verification"): a verifier keeps each correct sample with
probability ``phi`` and each wrong one with probability ``psi``, so a generator of error
rate p leaves data of error rate p' = p psi / (p psi + (1 - p) phi)
(:func:`modelcollapse.theory.verifier_pruned_error`), which is below 1/2 exactly when
p < p* = 1 / (1 + psi / phi) (:func:`modelcollapse.theory.verifier_breakdown`).

Correctness needs a ground truth, so the policy runs on families with labelled data (their
batches have ``verify``: the ``labels`` family).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..capabilities import LabelledBatches
from ..errors import UserError
from ..policies import Policy, Step, register


@dataclass(frozen=True)
class VerifiedParams:
    """phi: in (0, 1], the verifier's keep rate of correct samples. psi: in [0, 1], its keep
    rate of wrong samples (phi > psi: better than chance)."""

    phi: float = 0.9
    psi: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 < self.phi <= 1.0:
            raise UserError(f"params.phi must be in (0, 1]; got {self.phi}")
        if not 0.0 <= self.psi <= 1.0:
            raise UserError(f"params.psi must be in [0, 1]; got {self.psi}")


@register
class Verified(Policy):
    name = "verified"
    description = ("train on the last generation's samples kept by a verifier: correct ones "
                   "with rate phi, wrong ones with rate psi (Feng et al. 2024)")
    Params = VerifiedParams
    requires = (LabelledBatches,)

    def next_train(self, step: Step) -> Any:
        p = self.params
        kept = step.synthetic.verify(p.phi, p.psi, step.stream.generators("verify"))
        empty = np.flatnonzero(kept.size == 0)
        if empty.size:
            # A model fitted on nothing would be a coin per input: say so instead.
            raise UserError(
                f"policy verified kept none of the {step.n_samples} samples for generation "
                f"{step.generation + 1} (replicate {int(step.stream.replicates[empty[0]])}); "
                f"raise params.phi or params.psi, or n_samples")
        return kept
