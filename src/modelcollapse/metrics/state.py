"""The typed state a chunk's metrics keep between generations.

Metrics are pure functions of a fitted model, but some need things that are costly to redo
every generation (held-out real points and their true densities, the truth's tail
quantiles, a generation's evaluation corpora, which several metrics share) or that only
exist at one generation (the generation-0 models that later generations are judged by).
They live here as named fields, not as string keys of a shared dict, so what a metric reads
and what the chain-state checkpoint saves is declared. Everything but ``gen0`` is
recomputable from the seeds and is not saved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class EvaluationState:
    """One chunk's evaluation state.

    seeds : the cell's SeedTree (metrics draw their own randomness from its streams).
    sampling : the loop's Sampling (evaluation corpora are sampled as the loop samples).
    gen0 : the generation-0 model of the chunk's chains (R replicates), once fitted.
    heldout : ((1, M, d) points, (M,) true log density) shared by all replicates.
    tails : ((d,) lower, (d,) upper quantiles, (d,) true mass beyond them).
    evaluations : (generation or 'real', per-replicate evaluation corpora).
    sequence_nll : (generation, per-replicate (summed NLL, token counts) under gen0).
    real_embeddings : (n, d) embeddings of real test documents; embeddings : (generation,
    per-replicate (m, d) embeddings of its evaluation corpus).
    extra : a plugin metric's own memo, under keys it names after itself.
    """

    seeds: Any = None
    sampling: Any = None
    gen0: Any = None
    heldout: tuple | None = None
    tails: tuple | None = None
    evaluations: tuple[Any, list] | None = None
    real_evaluations: list | None = None
    sequence_nll: tuple[int, list] | None = None
    real_embeddings: Any = None
    embeddings: tuple[int, list] | None = None
    extra: dict[str, Any] = field(default_factory=dict)   # plugins' own memo, by their name

    def saved(self) -> dict[str, Any]:
        """What must survive a resume (the rest is recomputed from the seeds)."""
        return {"gen0": self.gen0}
