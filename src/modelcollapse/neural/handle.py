"""One fitted transformer LM: its module, where its weights are, how its training went."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import UserError
from . import network, score


class TransformerLM:
    """A fitted causal LM of one replicate at one generation.

    ``module`` is loaded from ``folder`` on first use when it is not in memory (a resumed
    chain, or the generation-0 model after :meth:`release`). A chain's saved state keeps the
    folder, not the weights (see ``Transformer.save_state``). ``stats``: what :func:`~modelcollapse.neural.train.train` returned.
    """

    def __init__(self, module, folder: Path | None, device: str, stats: dict,
                 generation: int) -> None:
        self._module = module
        self.folder = folder
        self.device = device
        self.stats = stats
        self.generation = generation

    @property
    def module(self):
        if self._module is None:
            if not network.saved(self.folder):
                raise UserError(f"the weights of generation {self.generation} are gone from "
                                f"{self.folder}; run the cell again into a new folder")
            self._module = network.load(self.folder, self.device)
        return self._module

    def release(self) -> None:
        """Free the weights in memory when they are on disk (reloaded on next use)."""
        if self.folder is not None:
            self._module = None

    def sequence_nll(self, docs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(n,) summed NLL and (n,) predicted tokens of each document."""
        return score.sequence_nll(self.module, docs, self.device)

    def perplexity(self, docs: Sequence[np.ndarray]) -> float:
        """Token-level perplexity over all of ``docs``."""
        sums, counts = self.sequence_nll(docs)
        return float(np.exp(sums.sum() / max(1, counts.sum())))
