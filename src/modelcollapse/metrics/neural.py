"""Metrics of families trained by epochs with a real validation split (the transformer):
training, and the per-sequence perplexity distribution under generation 0.

Shumailov et al. (Nature 2024, Fig. 1b/c) plot the histogram of the perplexity of each
generated sequence under the generation-0 model: over the generations a low-perplexity
mode grows (samples ever more typical of the first model) together with a long tail of
sequences the first model finds improbable (accumulated errors). The loop stores scalars,
so the histogram is summarized by its 10th, 50th and 90th percentiles per generation; the
full histogram is drawn from the stored samples and generation-0 weights
(``docs/figures.py``).
"""

from __future__ import annotations

import numpy as np

from ..capabilities import GeneratesText, ScoresSequences, TrainsWithValidation
from .base import MetricContext, metric
from .text import sequence_nll

NEURAL = (TrainsWithValidation,)


@metric("validation_loss", direction="lower", requires=NEURAL, sparse=True,
        description="loss (nats per token) on real validation blocks of generation g's selected epoch (no row without validation blocks)")
def validation_loss(ctx: MetricContext) -> np.ndarray:
    return np.array([lm.stats["validation_loss"] for lm in ctx.model.lms])


@metric("selected_epoch", direction="info", requires=NEURAL,
        description="the epoch kept for generation g (best real validation loss, or the last)")
def selected_epoch(ctx: MetricContext) -> np.ndarray:
    return np.array([lm.stats["selected_epoch"] for lm in ctx.model.lms], dtype=float)


def _percentile(q: int):
    @metric(f"seq_ppl_gen0_p{q}", direction="info", requires=(GeneratesText, ScoresSequences),
            description=f"{q}th percentile of the perplexity of each generated sequence under the generation-0 model")
    def fn(ctx: MetricContext) -> np.ndarray:
        return np.array([np.percentile(np.exp(sums / np.maximum(counts, 1)), q)
                         for sums, counts in sequence_nll(ctx)])
    return fn


seq_ppl_gen0_p10, seq_ppl_gen0_p50, seq_ppl_gen0_p90 = (_percentile(q) for q in (10, 50, 90))
