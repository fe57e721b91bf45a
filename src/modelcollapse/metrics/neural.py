"""Metrics of the transformer family beyond the text metrics: training and the per-sequence
perplexity distribution.

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

from .base import MetricContext, metric
from .text import evaluations

NEURAL = ("transformer",)


@metric("validation_loss", direction="lower", families=NEURAL, sparse=True,
        description="loss (nats per token) on real validation blocks of generation g's selected epoch (no row without validation blocks)")
def validation_loss(ctx: MetricContext) -> np.ndarray:
    return np.array([lm.stats["validation_loss"] for lm in ctx.model.lms])


@metric("selected_epoch", direction="info", families=NEURAL,
        description="the epoch kept for generation g (best real validation loss, or the last)")
def selected_epoch(ctx: MetricContext) -> np.ndarray:
    return np.array([lm.stats["selected_epoch"] for lm in ctx.model.lms], dtype=float)


def sequence_nll(ctx: MetricContext) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per replicate, (n,) summed NLL and (n,) predicted tokens of each evaluation sequence
    of generation g under the chain's generation-0 model: one scoring pass per generation,
    shared by perplexity_gen0 and the percentiles (cached)."""
    if ctx.generation == 0:
        ctx.cache["gen0-lms"] = ctx.model.lms
    key = ("seq-nll", ctx.generation)
    if key not in ctx.cache:
        for old in [k for k in ctx.cache if isinstance(k, tuple) and k[0] == "seq-nll"]:
            del ctx.cache[old]
        ctx.cache[key] = [lm.sequence_nll(e.docs)
                          for lm, e in zip(ctx.cache["gen0-lms"], evaluations(ctx))]
    return ctx.cache[key]


@metric("perplexity_gen0", direction="info", families=NEURAL,
        description="token-level perplexity of generation g's sequences under the generation-0 model")
def perplexity_gen0(ctx: MetricContext) -> np.ndarray:
    return np.array([np.exp(sums.sum() / max(1, counts.sum())) for sums, counts in sequence_nll(ctx)])


def _percentile(q: int):
    @metric(f"seq_ppl_gen0_p{q}", direction="info", families=NEURAL,
            description=f"{q}th percentile of the perplexity of each generated sequence under the generation-0 model")
    def fn(ctx: MetricContext) -> np.ndarray:
        return np.array([np.percentile(np.exp(sums / np.maximum(counts, 1)), q)
                         for sums, counts in sequence_nll(ctx)])
    return fn


seq_ppl_gen0_p10, seq_ppl_gen0_p50, seq_ppl_gen0_p90 = (_percentile(q) for q in (10, 50, 90))
