"""The generation loop: fit, measure, sample, curate, mix; repeated for every generation.

One call simulates R independent chains (replicates) at once: every step below is one
array operation over all R chains. Generation 0 is the model fitted on real data;
generation g is fitted on the training set the policy built from generation g-1's samples.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from . import chainstate
from .capabilities import GeneratesImages, GeneratesText, Persistent
from .catalog import FAMILIES, METRICS, POLICIES
from .errors import UserError
from .metrics import Metric, MetricContext
from .metrics.state import EvaluationState
from .families import Family, Sampling
from .families.base import Streams
from .policies import Policy, Step
from .randomness import SeedTree

CHUNK_BYTES = 256 * 2**20  # memory budget for one chunk of replicates


class NumericalError(UserError):
    """A setting whose chain leaves floating-point range: reported, never written as NaN."""


def simulate(family: Family, policy: Policy, sampling: Sampling, metrics: Sequence[Metric],
             n_samples: int, generations: int, seeds: SeedTree, replicates: np.ndarray,
             stats: bool = False, on_generation: Callable[[int], None] | None = None,
             on_samples: Callable[[int, Any], None] | None = None,
             state: ChainState | None = None, *, final: ChainState | None = None,
             resume: Continuation | None = None) -> np.ndarray:
    """Run R chains for ``generations`` generations and return their metrics.

    Parameters
    ----------
    replicates : (R,) replicate indices; each chain's randomness depends only on its index.
    stats : draw exact sufficient statistics instead of samples (families that allow it).
    on_samples : called as ``on_samples(g, batch)`` with the synthetic data of every
        generation but the last (which trains nothing); text families store their
        generated documents this way.
    state : where the chains' state is saved after every generation and loaded from at the
        start, so an interrupted run continues at its next unfinished generation (families
        whose models live on disk: :class:`~modelcollapse.capabilities.Persistent`).
    final : where the chains' state after the last generation is saved (phase FINAL: fitted
        and measured, nothing sampled), so ``--extend`` can continue them.
    resume : the FINAL state of these chains after a shorter finished run and the values it
        stored; the chains continue from it and only the new generations are computed.
        Raises ``chainstate.InvalidState`` (before any work) when the state does not
        reproduce the stored values; the caller then recomputes.

    Returns
    -------
    (generations, len(metrics), R) array of metric values.
    """
    n_synthetic = policy.synthetic_size(n_samples)
    out = np.empty((generations, len(metrics), len(replicates)))
    reps = np.asarray(replicates)
    saved, pending = None, False
    if state is not None:   # data only, checked against this chunk (see chainstate.py)
        saved = state.load(functools.partial(chainstate.unpack, family=family, seeds=seeds,
                                             replicates=reps, shape=out.shape))
    if saved is None and resume is not None:
        saved = resume.state.load(functools.partial(
            chainstate.unpack, family=family, seeds=seeds, replicates=reps, shape=out.shape,
            phase=chainstate.FINAL))
        if saved is None:
            raise chainstate.InvalidState("no final state was saved")
        pending = True   # generation saved["generation"] is measured; its sampling is not done
    if saved is None:
        streams = Streams(seeds, replicates)
        real = family.real_source(streams, stats)(n_samples, 0)
        evaluation = EvaluationState(seeds, sampling)
        start, train, model, history = 0, real, None, real
    else:   # what the generations up to saved["generation"] left, exactly as they left it
        streams, real = saved["streams"], saved["real"]
        family.resumed(streams, real)
        evaluation = EvaluationState(seeds, sampling, **saved["evaluation"])
        start, train, model, history = (saved["generation"] + (0 if pending else 1),
                                        saved["train"], saved["model"], saved["history"])
        if pending:
            _check_continuation(resume, saved, family, metrics, n_samples, evaluation)
        done = saved["out"].shape[0]
        out[:done] = saved["out"]
        if on_generation is not None:
            for _ in range(done):
                on_generation(len(replicates))
    draw_real = family.real_source(streams, stats)

    for g in range(start, generations):
        if pending:   # continued from a FINAL state: generation g is fitted and measured
            pending = False
        else:
            # 1. Fit generation g on its training set (warm-started from g-1 where the family does).
            model = family.fit(train, model, streams["fit"])

            # 2. Measure it against the truth.
            ctx = MetricContext(family, model, train, g, n_samples, evaluation)
            with np.errstate(divide="ignore", over="ignore", invalid="ignore", under="ignore"):
                for i, metric in enumerate(metrics):
                    out[g, i] = metric.fn(ctx)
            if on_generation is not None:
                on_generation(len(replicates))
        if g == generations - 1:
            if final is not None:
                final.save(*chainstate.pack({"generation": g, "out": out[:g + 1], "streams": streams,
                                             "real": real, "evaluation": evaluation.saved(),
                                             "train": train, "model": model, "history": history},
                                            family, chainstate.FINAL))
            break

        # 3. Sample from it (with the configured sampling bias).
        with np.errstate(over="ignore", under="ignore"):
            synthetic = (family.sample(model, n_synthetic, g, streams["sample"], sampling, stats)
                         if n_synthetic > 0 else None)
        if on_samples is not None and synthetic is not None:
            on_samples(g, synthetic)

        # 4. Build generation g+1's training set from real and synthetic data.
        if policy.keeps_history and synthetic is not None:
            history = history.concat(synthetic)
        train = policy.next_train(Step(g, n_samples, train, synthetic, real, history, draw_real,
                                       streams["policy"], family, model, sampling))
        if state is not None:
            state.save(*chainstate.pack({"generation": g, "out": out[:g + 1], "streams": streams,
                                         "real": real, "evaluation": evaluation.saved(),
                                         "train": train, "model": model, "history": history},
                                        family))

    _check_finite_or_inf(out, metrics)
    return out


@dataclass
class Continuation:
    """Where a finished chunk's chains left off: ``state`` holds their FINAL chain state and
    ``stored`` (G0, M, R) the values their table holds (NaN: a sparse metric's missing row)."""

    state: ChainState
    stored: np.ndarray


def _check_continuation(resume: Continuation, saved: dict, family: Family,
                        metrics: Sequence[Metric], n_samples: int,
                        evaluation: EvaluationState) -> None:
    """A saved final state is continued only when it is the state behind the stored values:
    its own values equal the table's, and measuring its model again (metrics are pure
    functions of the model and the seeds; nothing is refitted) gives the last stored
    generation bit for bit, which also catches a library that now computes differently."""
    stored, own = resume.stored, saved["out"]
    if own.shape != stored.shape or not np.array_equal(own, stored, equal_nan=True):
        raise chainstate.InvalidState("its values differ from the stored table")
    g = own.shape[0] - 1
    try:
        ctx = MetricContext(family, saved["model"], saved["train"], g, n_samples, evaluation)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore", under="ignore"):
            again = np.stack([np.broadcast_to(np.asarray(m.fn(ctx), dtype=float), own.shape[2:])
                              for m in metrics])
    except Exception as e:   # a state that is not a model of this family: recompute instead
        raise chainstate.InvalidState(f"its model cannot be measured ({type(e).__name__})") from None
    if not np.array_equal(again, own[g], equal_nan=True):
        raise chainstate.InvalidState(f"its model does not reproduce generation {g}'s values")


def _check_finite_or_inf(values: np.ndarray, metrics: Sequence[Metric]) -> None:
    """Infinities are honest values (a collapsed covariance has log-determinant -inf);
    NaN never is, so it stops the run instead of being written silently (sparse metrics
    mark 'undefined here' with NaN; those rows are dropped, see ``tidy``)."""
    dense = np.array([not m.sparse for m in metrics], dtype=bool)
    bad = np.argwhere(np.isnan(values) & dense[None, :, None])
    if bad.size:
        g, i, r = bad[0]
        raise NumericalError(
            f"metric '{metrics[i].name}' is NaN at generation {g} (replicate index {r}): the "
            f"chain left floating-point range (for example a temperature far from 1 over many "
            f"generations); use fewer generations or a milder setting")


class Cell(Protocol):
    """What the loop reads of a resolved cell (the study layer's CellConfig is one)."""

    key: str
    seed: int
    n_samples: int
    generations: int
    replicates: int
    metrics: tuple[str, ...]
    family: str
    policy: str
    params: dict[str, Any]

    def sub_params(self, cls: type) -> Any: ...


def chunk_size(cell: Cell, family: Family, policy: Policy) -> int:
    """Replicates per chunk: the configured value, or as many as fit the memory budget."""
    if cell.params["chunk_size"]:
        return int(cell.params["chunk_size"])
    per_replicate = family.bytes_per_replicate(policy.max_train_size(cell.n_samples, cell.generations))
    return int(max(1, min(cell.replicates, CHUNK_BYTES // max(1, per_replicate))))


def build(cell: Cell) -> tuple[Family, Policy, Sampling, list[Metric]]:
    """The family, policy, sampling and metric objects of a resolved cell."""
    p = cell.params
    fam_cls, pol_cls = FAMILIES.get(cell.family), POLICIES.get(cell.policy)
    family = fam_cls(cell.sub_params(fam_cls.Params, "family"), cell.n_samples)
    policy = pol_cls(cell.sub_params(pol_cls.Params, "policy"))
    sampling = Sampling(p["temperature"], p["truncation"])
    return family, policy, sampling, [METRICS.get(m) for m in cell.metrics]


class ChainState(Protocol):
    """The saved state of a chunk's chains after their last finished generation, as data
    only: ``save(arrays, meta)`` with what ``chainstate.pack`` made; ``load(decode)``
    returns ``decode(arrays, meta)`` or None when nothing was saved."""

    def load(self, decode: Callable[[dict, Any], dict]) -> dict | None: ...

    def save(self, arrays: dict, meta: dict) -> None: ...


class Checkpoint(Protocol):
    """Where a cell keeps finished chunks of replicates, so an interrupted cell resumes."""

    def load_chunk(self, lo: int, hi: int) -> np.ndarray | None: ...

    def save_chunk(self, lo: int, hi: int, values: np.ndarray) -> None: ...

    def save_samples(self, generation: int, lo: int, hi: int, texts: list[list[str]]) -> None: ...

    def chain_state(self, lo: int, hi: int) -> ChainState: ...

    def final_state(self, lo: int, hi: int) -> ChainState:
        """Where chunk lo..hi-1's chains leave their FINAL state (``--extend`` continues it)."""

    def final_ranges(self) -> list[tuple[int, int]]:
        """The (lo, hi) chunks that have a final state, sorted."""

    def keep_final(self, ranges: list[tuple[int, int]]) -> None:
        """Drop the final states of chunks other than ``ranges`` (an earlier chunking's)."""

    @property
    def models(self) -> Any: ...

    def previous(self) -> np.ndarray | None:
        """(G0, M, R0) values of a finished smaller run of the cell that ``--extend`` grows."""


def run_cell(cell: Cell, on_generation: Callable[[int], None] | None = None,
             checkpoint: Checkpoint | None = None) -> pd.DataFrame:
    """Simulate one cell in chunks of replicates and return its tidy metrics table.

    Columns: generation (int32), replicate (int32), metric (str), value (float64); rows
    ordered by metric, generation, replicate, whatever the chunk size. With a
    ``checkpoint``, each finished chunk is saved and chunks saved earlier are reused
    (identical numbers: a chunk's values depend only on its replicates' seeds).
    """
    family, policy, sampling, metrics = build(cell)
    _check_fingerprint(cell, family)
    if checkpoint is not None and isinstance(family, Persistent):   # where it keeps weights
        family.attach(checkpoint.models)
    if checkpoint is not None and isinstance(family, GeneratesImages):   # sample grids
        family.attach_grids(checkpoint.models.parent / "grids")
    seeds = SeedTree(cell.seed, cell.seed_key)
    size = chunk_size(cell, family, policy)
    values = np.empty((cell.generations, len(metrics), cell.replicates))
    previous = checkpoint.previous() if checkpoint is not None else None
    g0, r0 = (previous.shape[0], previous.shape[2]) if previous is not None else (0, 0)
    # Families whose models are data keep each chunk's final chain state, which --extend
    # continues (Persistent ones keep a state per generation, and take no more generations).
    keeps_final = checkpoint is not None and family.resumable and not isinstance(family, Persistent)
    # Chunks never straddle r0: the old replicates (only their new generations are new
    # work; chunked as they were saved, so each continues from its own final state) and
    # the new ones (all new) are chunked separately.
    old = [(lo, hi) for lo, hi in checkpoint.final_ranges() if hi <= r0] if keeps_final else []
    if not _tiles(old, r0):
        old = [(lo, min(r0, lo + size)) for lo in range(0, r0, size)]
    ranges = old + [(lo, min(cell.replicates, lo + size)) for lo in range(r0, cell.replicates, size)]
    recomputed: list[str] = []
    for lo, hi in ranges:
        if hi <= r0 and g0 == cell.generations:   # extended in replicates only: kept as stored
            values[:, :, lo:hi] = previous[:, :, lo:hi]
            if on_generation is not None:
                on_generation((hi - lo) * cell.generations)
            continue
        saved = checkpoint.load_chunk(lo, hi) if checkpoint is not None else None
        if saved is not None and saved.shape == (cell.generations, len(metrics), hi - lo):
            values[:, :, lo:hi] = saved
            if on_generation is not None:
                on_generation((hi - lo) * cell.generations)
            continue
        keep = state = final = resume = None   # text families' documents go to the checkpoint
        if checkpoint is not None and isinstance(family, GeneratesText):
            keep = functools.partial(_keep_samples, checkpoint, family, lo, hi)
        if checkpoint is not None and isinstance(family, Persistent):
            state = checkpoint.chain_state(lo, hi)
        if keeps_final:
            final = checkpoint.final_state(lo, hi)
            if hi <= r0:
                resume = Continuation(final, previous[:, :, lo:hi])
        run = functools.partial(simulate, family, policy, sampling, metrics, cell.n_samples,
                                cell.generations, seeds, np.arange(lo, hi),
                                cell.params["sufficient_stats"], on_generation, keep, state,
                                final=final)
        if hi <= r0 and resume is None:
            recomputed.append(f"{family.name} cannot save its models as data")
        try:
            values[:, :, lo:hi] = run(resume=resume)
        except chainstate.InvalidState as e:   # no usable final state: retrace from generation 0
            recomputed.append(f"the final state of replicates {lo}-{hi - 1}: {e}")
            values[:, :, lo:hi] = run()
        if hi <= r0:   # more generations for old chains: they must retrace the stored ones
            _check_retraced(cell, values[:g0, :, lo:hi], previous[:, :, lo:hi])
        if checkpoint is not None:
            checkpoint.save_chunk(lo, hi, values[:, :, lo:hi])
    if keeps_final:
        checkpoint.keep_final(ranges)
    if recomputed:
        warnings.warn(RecomputeWarning(
            f"cell {cell.key}: {len(recomputed)} chunk(s) of its old replicates recomputed their "
            f"{g0} stored generation(s) to reach generation {cell.generations} ({recomputed[0]}); "
            f"the values are the same, only slower"), stacklevel=2)
    return tidy(values, [m.name for m in metrics])


class RecomputeWarning(UserWarning):
    """--extend could not continue some chains from their saved state and recomputed them."""


def _tiles(ranges: list[tuple[int, int]], r0: int) -> bool:
    """True when ``ranges`` (sorted) cover 0..r0-1 exactly, without gaps or overlaps."""
    end = 0
    for lo, hi in ranges:
        if lo != end or hi <= lo:
            return False
        end = hi
    return end == r0 and bool(ranges)


def _check_retraced(cell: Cell, recomputed: np.ndarray, stored: np.ndarray) -> None:
    """An extended chain continues from the state that produced its stored values, or not
    at all (a changed package or library would splice two different chains)."""
    if not np.array_equal(recomputed, stored, equal_nan=True):
        g, _, r = np.argwhere(~((recomputed == stored) | (np.isnan(recomputed) & np.isnan(stored))))[0]
        raise UserError(f"cannot extend cell {cell.key}: recomputing its stored generations "
                        f"does not reproduce them (first at generation {g}, replicate {r}); the "
                        f"package or a library changed since the run. Run into a new folder")


def _keep_samples(checkpoint: Checkpoint, family: Family, lo: int, hi: int, generation: int,
                  batch: Any) -> None:
    checkpoint.save_samples(generation, lo, hi, family.render(batch))


def _check_fingerprint(cell: Cell, family: Family) -> None:
    """A corpus edited after the study was resolved would mix two corpora under one key."""
    for key, value in family.fingerprint().items():
        if cell.params.get(key, value) != value:
            raise UserError(f"the corpus of cell {cell.key} changed after the study was "
                            f"resolved ({key} differs); run the study again into a new folder")


def tidy(values: np.ndarray, names: Sequence[str]) -> pd.DataFrame:
    """(G, M, R) values -> a tidy table with one row per (metric, generation, replicate);
    NaN (a sparse metric's 'undefined here') gives no row."""
    g, m, r = values.shape
    df = pd.DataFrame({
        "generation": np.tile(np.repeat(np.arange(g, dtype=np.int32), r), m),
        "replicate": np.tile(np.arange(r, dtype=np.int32), g * m),
        "metric": pd.Categorical.from_codes(np.repeat(np.arange(m, dtype=np.int16), g * r),
                                            categories=list(names)),
        "value": np.transpose(values, (1, 0, 2)).ravel(),
    }, copy=False)
    return df[df["value"].notna()].reset_index(drop=True) if np.isnan(values).any() else df
