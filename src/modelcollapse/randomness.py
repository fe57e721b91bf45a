"""Explicit, position-free randomness: seed trees and per-replicate streams.

Every random draw comes from a generator derived with :class:`numpy.random.SeedSequence`
from the study seed and a *path* naming what it is for: the cell (by a hash of its
resolved config, not its position in a grid), the replicate, the stage (``real``,
``sample``, ``policy``, ``fit``, ...) and the kind of draw. Nothing depends on how many
replicates are processed together, on the worker that runs them, or on where a run was
resumed, so the same config and seed give identical numbers everywhere.

Analytic families are vectorized across replicates, but each replicate keeps its own
streams. :class:`Stream` reconciles the two: it serves a ``(R, *shape)`` array per call
whose row ``r`` comes from replicate ``r``'s own generator, drawing each replicate's values
in blocks of several generations at once so that the Python overhead per replicate is
paid once per block rather than once per generation.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# Stage names are part of the seed path; never renumber them (results would change).
STAGES = {"real": 1, "sample": 2, "policy": 3, "fit": 4, "heldout": 5, "design": 6, "curate": 7,
          "evaluate": 8}
SHARED = 2**32 - 1  # replicate slot for draws shared by all replicates of a cell


@functools.lru_cache(maxsize=4096)
def key_words(text: str) -> tuple[int, ...]:
    """Four 32-bit words of the SHA-256 of ``text``: a stable numeric name for seed paths."""
    digest = hashlib.sha256(text.encode()).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


class SeedTree:
    """Derives independent generators for one cell from ``(seed, cell key, path...)``.

    Parameters
    ----------
    seed : the study seed (a non-negative integer).
    cell_key : a stable text identifying the cell (a hash of its resolved config).
    """

    def __init__(self, seed: int, cell_key: str) -> None:
        self.seed = int(seed)
        self.cell_words = key_words(cell_key)

    def sequence(self, *path: int | str) -> np.random.SeedSequence:
        words: list[int] = list(self.cell_words)
        for part in path:
            if isinstance(part, str):
                words.extend(key_words(part))
            else:
                words.append(int(part))
        return np.random.SeedSequence(self.seed, spawn_key=tuple(words))

    def generator(self, stage: str, replicate: int = SHARED, *path: int | str) -> np.random.Generator:
        """One generator for ``(stage, replicate, *path)``; ``path`` may hold a generation."""
        return np.random.Generator(np.random.PCG64(self.sequence(STAGES[stage], replicate, *path)))


def block_length(shape: tuple[int, ...], budget: int = 2**14) -> int:
    """Generations drawn per refill for one replicate: depends on the shape only, never on
    how many replicates share a chunk (which would make results chunk-dependent)."""
    size = max(1, int(np.prod(shape, dtype=np.int64)))
    return int(max(1, min(256, budget // size)))


class Stream:
    """Per-replicate random draws for one stage, served as ``(R, *shape)`` arrays.

    All buffered draws of a replicate come from one generator per ``(replicate, stage)``.
    Every chunk issues the same sequence of requests (the loop is the same for all
    replicates), so buffers are refilled at the same points for every replicate and the
    values a replicate receives depend only on ``(seed, cell, replicate, stage)`` and the
    request sequence, never on the chunk.

    Parameters
    ----------
    seeds : the cell's seed tree.
    stage : a name from ``STAGES``.
    replicates : (R,) the replicate indices of this chunk.
    """

    def __init__(self, seeds: SeedTree, stage: str, replicates: Sequence[int]) -> None:
        self.seeds = seeds
        self.stage = stage
        self.replicates = np.asarray(replicates, dtype=np.int64)
        self._generators: dict[str, list[np.random.Generator]] = {}
        self._buffers: dict[str, list] = {}  # key -> [array (R, B, *shape), position]
        self._sources: dict[str, tuple] = {}  # key -> (spec, generator states before the block)

    @property
    def n_replicates(self) -> int:
        return len(self.replicates)

    def generators(self, kind: str) -> list[np.random.Generator]:
        """The per-replicate generators of one kind, for draws that depend on the model
        (for example a multinomial with the fitted probabilities)."""
        gens = self._generators.get(kind)
        if gens is None:
            gens = [self.seeds.generator(self.stage, int(r), kind) for r in self.replicates]
            self._generators[kind] = gens
        return gens

    def _draw(self, key: str, shape: tuple[int, ...], spec: tuple) -> np.ndarray:
        slot = self._buffers.get(key)
        if slot is None or slot[1] == slot[0].shape[1]:
            # Blocks double from 64 up to block_length(shape): short runs waste little,
            # long runs pay the per-replicate Python call only a few times.
            cap = block_length(shape)
            b = min(cap, 64 if slot is None else 2 * slot[0].shape[1])
            gens = self.generators("buffered")
            # What refilled the block: a saved chain state keeps this, not the block.
            self._sources[key] = (spec, [g.bit_generator.state for g in gens])
            block = self.fill_block(spec, gens, b)
            slot = [block, 0]
            self._buffers[key] = slot
        out = slot[0][:, slot[1]]
        slot[1] += 1
        return out

    def fill_block(self, spec: tuple, gens: Sequence[np.random.Generator], width: int) -> np.ndarray:
        """(R, width, *shape) draws of ``spec`` = (kind, shape, df or None), one row per
        generator (each advanced by its row)."""
        kind, shape, df = spec
        fill = _filler(kind, shape, df)
        block = np.empty((len(gens), width, *shape))
        for g, row in zip(gens, block):
            fill(g, row)  # writes in place: no per-replicate temporaries to stack
        return block

    def normal(self, shape: tuple[int, ...]) -> np.ndarray:
        """Standard normals, (R, *shape)."""
        shape = tuple(shape)
        return self._draw(f"normal{shape}", shape, ("normal", shape, None))

    def uniform(self, shape: tuple[int, ...]) -> np.ndarray:
        """Uniforms on [0, 1), (R, *shape)."""
        shape = tuple(shape)
        return self._draw(f"uniform{shape}", shape, ("uniform", shape, None))

    def chisquare(self, df: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Chi-square draws with degrees of freedom ``df`` (broadcast to ``shape``), (R, *shape)."""
        df = np.broadcast_to(np.asarray(df, dtype=float), shape)
        key = f"chisquare{shape}{df.tolist()}"
        return self._draw(key, tuple(shape), ("chisquare", tuple(shape), df.tolist()))


def buffer_key(spec: tuple) -> str:
    """The buffer key ``Stream`` files draws of ``spec`` under."""
    kind, shape, df = spec
    return f"{kind}{tuple(shape)}" + ("" if df is None else f"{df}")


def _filler(kind: str, shape: tuple[int, ...], df: Any) -> Callable:
    """The function that fills one replicate's row of a block of ``kind`` draws."""
    if kind == "normal":
        return lambda g, out: g.standard_normal(out=out)
    if kind == "uniform":
        return lambda g, out: g.random(out=out)
    if kind != "chisquare":
        raise ValueError(f"unknown draw kind '{str(kind)[:20]}'")
    dfs = np.broadcast_to(np.asarray(df, dtype=float), shape)
    # chi2(k) = 2 Gamma(k/2) draw for draw (numpy's own definition); Gamma fills in place.
    if np.all(dfs == dfs.flat[0]):  # a scalar shape skips numpy's per-call array checks
        half: float | np.ndarray = float(dfs.flat[0]) / 2.0
    else:
        half = dfs / 2.0

    def fill(g: np.random.Generator, out: np.ndarray) -> None:
        if isinstance(half, float):
            g.standard_gamma(half, out=out)
        else:
            out[...] = g.standard_gamma(half, size=out.shape)
        out *= 2.0

    return fill
