"""A chunk's chain state as data only: numeric arrays plus JSON, never pickle.

Families whose models live on disk (:class:`~modelcollapse.capabilities.Persistent`) save
the state of a chunk's chains after every generation, so an interrupted cell resumes at its next
unfinished generation (phase :data:`NEXT`). Families whose models are plain data
(``Family.state_classes``: the numpy families) save the state every chunk ends in (phase
:data:`FINAL`), so ``--extend`` continues a finished chain instead of recomputing it. The
state is what the loop needs to continue exactly where it stopped:

* ``out``: (g + 1, M, R) the metric values so far;
* the random streams: per stage, every generator's PCG64 state (JSON integers) and the
  buffered draws not yet served (arrays, with their read position);
* the batches ``real``, ``train`` and ``history`` (``Documents`` or ``Samples``: token ids,
  sources and generations as flat arrays with their lengths; a family's own batch classes,
  sufficient statistics, through its ``save_state``);
* the model, and the generation-0 model that the text metrics score with, through the
  family's pair ``save_state(model) -> dict`` / ``load_state(dict) -> model`` (arrays and
  JSON values only; the transformer's refer to their weight files).

Everything else in the metrics' evaluation state is a pure function of the cell's seeds
and is recomputed after a resume (``EvaluationState.saved``). :func:`pack` turns a state into ``(arrays, meta)``;
:func:`unpack` checks every field against the chunk it is loaded for and raises
:class:`InvalidState` (one short reason) for anything that does not fit, so a crafted or
damaged file stops the run instead of being trusted.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .batches import Documents, Samples
from .randomness import STAGES, SeedTree, Stream, buffer_key

VERSION = 1
NEXT, FINAL = "next", "final"   # see pack
_U128 = 2**128


class InvalidState(ValueError):
    """A chain state that does not fit the chunk it is loaded for (the message: why)."""


class _Arrays:
    """Collects arrays under short names while the JSON tree refers to them as
    ``{"$array": name}``."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def put(self, value: np.ndarray) -> dict[str, str]:
        value = np.ascontiguousarray(value)
        if value.dtype.kind not in "biuf":
            raise TypeError(f"chain state arrays must be numeric; got dtype {value.dtype}")
        name = f"a{len(self.arrays)}"
        self.arrays[name] = value
        return {"$array": name}

    def tree(self, value: Any) -> Any:
        """A family's state (dicts, lists, numbers, strings, arrays) as JSON + arrays."""
        if isinstance(value, np.ndarray):
            return self.put(value)
        if isinstance(value, dict):
            return {str(k): self.tree(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.tree(v) for v in value]
        if isinstance(value, (np.integer, np.floating)):
            return value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"a chain state holds only data; got {type(value).__name__}")


class _Reader:
    """The other direction, checking every reference and type on the way."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def array(self, ref: Any, what: str, kind: str = "biuf", ndim: int | None = None) -> np.ndarray:
        if not (isinstance(ref, dict) and set(ref) == {"$array"} and ref["$array"] in self.arrays):
            raise InvalidState(f"{what} does not refer to an array of the file")
        a = self.arrays[ref["$array"]]
        if a.dtype.kind not in kind or (ndim is not None and a.ndim != ndim):
            raise InvalidState(f"{what} has dtype {a.dtype} and {a.ndim} dimension(s)")
        return a

    def tree(self, value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"$array"}:
                return self.array(value, "a family state array")
            return {k: self.tree(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.tree(v) for v in value]
        return value


def _int(value: Any, what: str, lo: int, hi: int) -> int:
    if type(value) is not int or not lo <= value < hi:
        raise InvalidState(f"{what} must be an integer in [{lo}, {hi}); got {str(value)[:40]}")
    return value


def _dict(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise InvalidState(f"{what} must be a JSON object")
    return value


# -- batches -------------------------------------------------------------------------------
def _pack_batch(batch: Any, store: _Arrays, family: Any) -> dict:
    if type(batch) in getattr(family, "state_classes", ()):   # statistics, Samples subclasses
        return {"kind": "object", "state": store.tree(family.save_state(batch))}
    if isinstance(batch, Samples):
        return {"kind": "samples", "values": store.put(batch.values),
                "source": store.put(batch.source), "generation": store.put(batch.generation)}
    if isinstance(batch, Documents):
        docs = [d for chain in batch.docs for d in chain]
        dtype = np.result_type(*docs) if docs else np.dtype(np.int64)
        tokens = np.concatenate([np.asarray(d, dtype=dtype).ravel() for d in docs]) if docs \
            else np.zeros(0, dtype=dtype)
        out = {"kind": "documents", "tokens": store.put(tokens),
               "lengths": store.put(np.array([d.size for d in docs], dtype=np.int64)),
               "counts": store.put(batch.sizes),
               "source": store.put(np.concatenate(batch.source) if docs else np.zeros(0, np.int8)),
               "generation": store.put(np.concatenate(batch.generation) if docs
                                       else np.zeros(0, np.int32)),
               "curation": None}
        if batch.curation is not None:
            out["curation"] = {k: store.put(np.asarray(v)) for k, v in batch.curation.items()}
        return out
    raise TypeError(f"cannot save a {type(batch).__name__} batch in a chain state")


def _unpack_batch(meta: Any, read: _Reader, r: int, what: str, family: Any) -> Any:
    meta = _dict(meta, what)
    if meta.get("kind") == "object" and getattr(family, "state_classes", ()):
        try:
            return family.load_state(read.tree(meta.get("state")))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            if isinstance(e, InvalidState):
                raise
            raise InvalidState(f"{what} is malformed ({str(e)[:80]})") from None
    if meta.get("kind") == "samples":
        values = read.array(meta.get("values"), f"{what}.values", "biuf")
        source = read.array(meta.get("source"), f"{what}.source", "iu", 2)
        gen = read.array(meta.get("generation"), f"{what}.generation", "iu", 2)
        if values.ndim < 2 or values.shape[0] != r or source.shape != values.shape[:2] \
                or gen.shape != values.shape[:2]:
            raise InvalidState(f"{what} has shapes that do not fit {r} replicates")
        return Samples(values, source.astype(np.int8), gen.astype(np.int32))
    if meta.get("kind") != "documents":
        raise InvalidState(f"{what}.kind must be 'documents' or 'samples'")
    tokens = read.array(meta.get("tokens"), f"{what}.tokens", "iu", 1)
    lengths = read.array(meta.get("lengths"), f"{what}.lengths", "iu", 1)
    counts = read.array(meta.get("counts"), f"{what}.counts", "iu", 1)
    source = read.array(meta.get("source"), f"{what}.source", "iu", 1)
    gen = read.array(meta.get("generation"), f"{what}.generation", "iu", 1)
    n = lengths.size
    if counts.size != r or int(counts.sum()) != n or source.size != n or gen.size != n \
            or int(lengths.sum()) != tokens.size:
        raise InvalidState(f"{what}: its lengths, counts and tokens do not add up")
    if tokens.size and (tokens.min() < 0 or tokens.max() >= 2**31):
        raise InvalidState(f"{what}: a token id is out of range")
    pieces = np.split(tokens, np.cumsum(lengths)[:-1]) if n else []
    ends = np.cumsum(counts)
    starts = ends - counts
    docs = [pieces[a:b] for a, b in zip(starts.tolist(), ends.tolist())]
    src = [source[a:b].astype(np.int8) for a, b in zip(starts.tolist(), ends.tolist())]
    gens = [gen[a:b].astype(np.int32) for a, b in zip(starts.tolist(), ends.tolist())]
    curation = meta.get("curation")
    if curation is not None:
        curation = {str(k): read.array(v, f"{what}.curation.{k}", "biuf")
                    for k, v in _dict(curation, f"{what}.curation").items()}
    return Documents(docs, src, gens, curation)


# -- random streams ------------------------------------------------------------------------
def _pack_streams(streams: Any, store: _Arrays) -> dict:
    out = {}
    for stage, s in streams._streams.items():
        out[stage] = {
            "generators": {kind: [g.bit_generator.state for g in gens]
                           for kind, gens in s._generators.items()},
            "buffers": {key: _pack_buffer(s, key, slot, store) for key, slot in s._buffers.items()},
        }
    return out


def _pack_buffer(s: Stream, key: str, slot: list, store: _Arrays) -> dict:
    """A buffer as what refilled it: the draw spec, the generators' states before the fill,
    the block's width (it decides the next block's size) and the read position; the block
    is drawn again on load (bit for bit), so a state holds no pre-drawn randomness. A
    buffer without a recorded source keeps its unserved draws as an array."""
    width, pos = int(slot[0].shape[1]), int(slot[1])
    source = s._sources.get(key)
    if source is None:
        return {"array": store.put(slot[0][:, pos:]), "position": pos, "width": width}
    (kind, shape, df), before = source
    return {"spec": {"kind": kind, "shape": list(shape), "df": df}, "before": before,
            "position": pos, "width": width}


def _unpack_buffer(s: Stream, key: str, slot: dict, read: _Reader, r: int, what: str) -> None:
    if "before" in slot:
        spec = _dict(slot.get("spec"), f"{what}.spec")
        kind, shape, df = spec.get("kind"), spec.get("shape"), spec.get("df")
        if kind not in ("normal", "uniform", "chisquare") or not isinstance(shape, list) \
                or not all(type(n) is int and 0 < n <= 2**20 for n in shape) or len(shape) > 4:
            raise InvalidState(f"{what}.spec is not a draw of this package")
        shape = tuple(shape)
        if int(np.prod(shape)) > 2**22:
            raise InvalidState(f"{what}.spec asks for too many draws")
        if kind == "chisquare":
            try:
                dfs = np.asarray(df, dtype=float)
                ok = dfs.shape == shape and bool(np.all(dfs > 0)) and bool(np.all(np.isfinite(dfs)))
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise InvalidState(f"{what}.spec.df does not fit its shape")
        elif df is not None:
            raise InvalidState(f"{what}.spec.df must be null")
        spec_t = (kind, shape, df)
        if buffer_key(spec_t) != key:
            raise InvalidState(f"{what} is filed under another key than its spec's")
        width = _int(slot.get("width"), f"{what}.width", 1, 257)   # see block_length
        pos = _int(slot.get("position"), f"{what}.position", 0, width + 1)
        before = slot.get("before")
        if not isinstance(before, list) or len(before) != r:
            raise InvalidState(f"{what}.before must list {r} generator states")
        gens = [_generator(st, f"{what}.before") for st in before]
        s._buffers[key] = [s.fill_block(spec_t, gens, width), pos]
        s._sources[key] = (spec_t, before)
        return
    block = read.array(slot.get("array"), what, "f")
    if block.ndim < 2 or block.shape[0] != r:
        raise InvalidState(f"{what} does not hold {r} replicates' draws")
    if "width" in slot:   # the unserved tail of a block of that width
        width = _int(slot.get("width"), f"{what}.width", 1, 257)   # see block_length
        pos = _int(slot.get("position"), f"{what}.position", 0, width + 1)
        if block.shape[1] != width - pos:
            raise InvalidState(f"{what} does not hold the draws after its position")
        full = np.zeros((r, width, *block.shape[2:]))
        full[:, pos:] = block
        s._buffers[key] = [full, pos]
        return
    pos = _int(slot.get("position"), f"{what}.position", 0, block.shape[1] + 1)
    s._buffers[key] = [np.array(block, dtype=np.float64), pos]


def _generator(state: Any, what: str) -> np.random.Generator:
    state = _dict(state, what)
    inner = _dict(state.get("state"), f"{what}.state")
    if state.get("bit_generator") != "PCG64" or set(state) != {"bit_generator", "state",
                                                               "has_uint32", "uinteger"}:
        raise InvalidState(f"{what} is not a PCG64 generator state")
    clean = {"bit_generator": "PCG64",
             "state": {"state": _int(inner.get("state"), f"{what}.state", 0, _U128),
                       "inc": _int(inner.get("inc"), f"{what}.inc", 0, _U128)},
             "has_uint32": _int(state["has_uint32"], f"{what}.has_uint32", 0, 2),
             "uinteger": _int(state["uinteger"], f"{what}.uinteger", 0, 2**32)}
    bits = np.random.PCG64(0)
    try:
        bits.state = clean
    except (ValueError, TypeError, OverflowError) as e:
        raise InvalidState(f"{what} is not a valid PCG64 state ({e})") from None
    return np.random.Generator(bits)


def _unpack_streams(meta: Any, read: _Reader, seeds: SeedTree, replicates: np.ndarray):
    from .families.base import Streams
    streams = Streams(seeds, replicates)
    r = len(replicates)
    for stage, sm in _dict(meta, "streams").items():
        if stage not in STAGES:
            raise InvalidState(f"streams has an unknown stage '{stage[:40]}'")
        sm = _dict(sm, f"streams.{stage}")
        s = Stream(seeds, stage, replicates)
        for kind, states in _dict(sm.get("generators"), f"streams.{stage}.generators").items():
            if not isinstance(states, list) or len(states) != r:
                raise InvalidState(f"streams.{stage}.generators.{kind[:40]} must list {r} states")
            s._generators[kind] = [_generator(st, f"streams.{stage}.{kind[:40]}") for st in states]
        for key, slot in _dict(sm.get("buffers"), f"streams.{stage}.buffers").items():
            what = f"streams.{stage}.buffers.{key[:40]}"
            _unpack_buffer(s, key, _dict(slot, what), read, r, what)
        streams._streams[stage] = s
    return streams


# -- the whole state -----------------------------------------------------------------------
def pack(state: dict, family: Any, phase: str = NEXT) -> tuple[dict[str, np.ndarray], dict]:
    """A loop state (see ``loop.simulate``) as ``(arrays, meta)``; meta is JSON. ``phase``:
    :data:`NEXT` (generation g measured, sampled and g + 1's training set built: ``train``)
    or :data:`FINAL` (generation g fitted on ``train`` and measured, nothing sampled yet: the
    state a finished chain ends in, which ``--extend`` continues from)."""
    store = _Arrays()
    streams = state["streams"]
    seeds = streams.seeds
    batches: dict[str, Any] = {}
    named: dict[int, str] = {}
    for name in ("real", "train", "history"):   # train and history are often real itself
        batch = state[name]
        batches[name] = {"same_as": named[id(batch)]} if id(batch) in named \
            else _pack_batch(batch, store, family)
        named.setdefault(id(batch), name)
    gen0 = state["evaluation"].get("gen0")
    if set(state["evaluation"]) - {"gen0"}:
        raise TypeError("a chain state saves only the evaluation state's gen0 models")
    meta = {
        "format": "modelcollapse.chainstate", "version": VERSION,
        "generation": int(state["generation"]), "phase": phase, "seed": seeds.seed,
        "cell_words": list(seeds.cell_words),
        "replicates": store.put(np.asarray(streams.replicates, dtype=np.int64)),
        "out": store.put(np.asarray(state["out"], dtype=np.float64)),
        "streams": _pack_streams(streams, store), "batches": batches,
        "model": store.tree(family.save_state(state["model"])),
        "gen0": None if gen0 is None else store.tree(family.save_state(gen0)),
    }
    return store.arrays, meta


def unpack(arrays: dict[str, np.ndarray], meta: Any, family: Any, seeds: SeedTree,
           replicates: np.ndarray, shape: tuple[int, int, int], phase: str = NEXT) -> dict:
    """The loop state saved by :func:`pack`, checked against this chunk: its seeds, its
    ``replicates``, ``shape`` = (generations, metrics, R) of its output and its ``phase``."""
    meta = _dict(meta, "the state")
    read = _Reader(arrays)
    if meta.get("format") != "modelcollapse.chainstate" or meta.get("version") != VERSION:
        raise InvalidState(f"it is not a version-{VERSION} modelcollapse chain state")
    if meta.get("phase", NEXT) != phase:   # states from before phases were kept: NEXT
        raise InvalidState(f"it is a '{str(meta.get('phase'))[:20]}' state, not '{phase}'")
    if meta.get("seed") != seeds.seed or meta.get("cell_words") != list(seeds.cell_words):
        raise InvalidState("it belongs to another cell or seed")
    saved_reps = read.array(meta.get("replicates"), "replicates", "iu", 1)
    if not np.array_equal(saved_reps, replicates):
        raise InvalidState("it belongs to other replicates")
    g = _int(meta.get("generation"), "generation", 0, shape[0] - 1)
    out = read.array(meta.get("out"), "out", "f", 3)
    if out.shape != (g + 1, shape[1], shape[2]):
        raise InvalidState(f"its metric values have shape {out.shape}, not {(g + 1, *shape[1:])}")
    r = len(replicates)
    batches = _dict(meta.get("batches"), "batches")
    loaded: dict[str, Any] = {}
    for name in ("real", "train", "history"):
        b = _dict(batches.get(name), f"batches.{name}")
        if set(b) == {"same_as"}:
            if b["same_as"] not in loaded:
                raise InvalidState(f"batches.{name} refers to an unknown batch")
            loaded[name] = loaded[b["same_as"]]
        else:
            loaded[name] = _unpack_batch(b, read, r, f"batches.{name}", family)
    try:
        model = family.load_state(read.tree(meta.get("model")))
        gen0 = None if meta.get("gen0") is None else family.load_state(read.tree(meta["gen0"]))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        if isinstance(e, InvalidState):
            raise
        raise InvalidState(f"its model state is malformed ({type(e).__name__}: "
                           f"{str(e)[:80]})") from None
    return {"generation": g, "out": out, "evaluation": {"gen0": gen0}, "model": model,
            "streams": _unpack_streams(meta.get("streams"), read, seeds, replicates), **loaded}


_MEMBER = re.compile(r"a\d{1,9}")


def member_name_ok(name: str) -> bool:
    """Array members of a state file are named a0, a1, ... (checked before reading)."""
    return bool(_MEMBER.fullmatch(name))
