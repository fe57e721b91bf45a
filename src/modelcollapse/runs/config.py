"""Typed, validated cell configs and the coercion of user values into parameter dataclasses.

A *cell* is one fully resolved setting: family, policy, sizes and every parameter with its
default filled in. Its identity (everything that changes the numbers, nothing that does
not: not the replicate count, the seed, the number of generations, the metrics or the chunk
size) is hashed into ``key``, which names the cell's folder and seeds its random streams;
so adding a cell to a grid, or replicates or generations to a cell, never changes the
numbers already computed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import UserError, closest

#: Parameters that change how results are computed, not what they are.
ENGINE_ONLY = ("chunk_size",)


@dataclass(frozen=True)
class LoopParams:
    """temperature, truncation: sampling bias (see ``Sampling``). sufficient_stats: draw
    exact sufficient statistics instead of samples ('auto': whenever the family and policy
    allow it). chunk_size: replicates simulated together (0: sized to a memory budget);
    it never changes the results."""

    temperature: float = 1.0
    truncation: float = 1.0
    sufficient_stats: Literal["auto"] | bool = "auto"
    chunk_size: int = 0

    def __post_init__(self) -> None:
        if self.chunk_size < 0:
            raise UserError(f"params.chunk_size must be >= 0 (0: automatic); got {self.chunk_size}")


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string",
            type(None): "unset"}.get(tp, str(tp))


#: The largest magnitude of a float parameter: the simulations square, sum and invert
#: these values, and a setting of 1e300 left float64 range (NaN or an unconverged
#: eigendecomposition) only after the run folder was written.
MAX_FLOAT = 1e12


def coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` converted to the annotated type ``tp``, or a UserError naming ``where``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return coerce(value, arg, where)
            except UserError:
                continue
    elif origin is Literal:
        choices = typing.get_args(tp)
        if value in choices and type(value) in {type(c) for c in choices}:
            return value
        if isinstance(value, str):
            raise UserError(f"{where} must be {_type_name(tp)}; got '{value}'"
                            f"{closest(value, [c for c in choices if isinstance(c, str)])}")
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if not -2**63 <= value < 2**63:   # every integer is stored as int64
                raise UserError(f"{where} must fit in a 64-bit integer; got a number of "
                                f"{len(str(abs(value)))} digits")
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise UserError(f"{where} must be a finite number; got {value!r}")
            if abs(value) > MAX_FLOAT:   # squares and sums of it must stay in float64 range
                raise UserError(f"{where} must be at most {MAX_FLOAT:.0e} in magnitude; got "
                                f"{float(value):.3g}")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    raise UserError(f"{where} must be {_type_name(tp)}; got {value!r}")


def fields_of(cls: type) -> dict[str, Any]:
    """Field name -> resolved type annotation of a parameter dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def make_params(cls: type, given: dict[str, Any], where: str) -> Any:
    """Instantiate parameter dataclass ``cls`` from the keys of ``given`` it declares."""
    kwargs = {name: coerce(given[name], tp, f"{where}{name}")
              for name, tp in fields_of(cls).items() if name in given}
    return cls(**kwargs)


@dataclass(frozen=True)
class CellConfig:
    """One resolved setting of the loop. ``params`` holds every family, policy and loop
    parameter with defaults filled in (``sufficient_stats`` resolved to a bool)."""

    family: str
    policy: str
    n_samples: int
    generations: int
    replicates: int
    seed: int
    metrics: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    #: Under a paired study, the hash of the cell's identity without its policy and policy
    #: parameters: it seeds the random streams, so cells that differ only in policy share
    #: generation 0 and the real data exactly (common random numbers). Empty: unpaired.
    stream_key: str = ""

    def identity(self) -> dict[str, Any]:
        out = {
            "family": self.family,
            "policy": self.policy,
            "n_samples": self.n_samples,
            "params": {k: v for k, v in sorted(self.params.items()) if k not in ENGINE_ONLY},
        }
        if self.stream_key:   # only then: unpaired cells keep the keys they always had
            out["stream_key"] = self.stream_key
        return out

    @property
    def seed_key(self) -> str:
        """The text the cell's seed tree is derived from (see ``stream_key``)."""
        return self.stream_key or self.key

    @property
    def key(self) -> str:
        """A stable 12-hex-digit name of the cell's identity."""
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def sub_params(self, cls: type, owner: str = "family") -> Any:
        """The parameter dataclass ``cls`` of ``owner`` ('family', 'policy' or 'loop') filled
        from this cell's params; a name two owners declare is stored as 'owner.name', and an
        optional parameter left unset (None) is not stored (see ``omit_unset``)."""
        values = {}
        for k in fields_of(cls):
            if f"{owner}.{k}" in self.params:
                values[k] = self.params[f"{owner}.{k}"]
            elif k in self.params:
                values[k] = self.params[k]
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "key": self.key, "family": self.family, "policy": self.policy,
            "n_samples": self.n_samples, "generations": self.generations,
            "replicates": self.replicates, "seed": self.seed,
            "metrics": list(self.metrics), "params": dict(sorted(self.params.items())),
        }
        if self.stream_key:
            out["stream_key"] = self.stream_key
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CellConfig":
        return cls(d["family"], d["policy"], d["n_samples"], d["generations"], d["replicates"],
                   d["seed"], tuple(d["metrics"]), dict(d["params"]), d.get("stream_key", ""))


def omit_unset(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the optional parameters left unset (None): TOML has no null, and
    a new optional parameter must not change the keys of the cells that do not use it."""
    return {k: v for k, v in values.items() if v is not None}


def stream_key(family: str, n_samples: int, params: dict[str, Any], policy_fields: set[str]) -> str:
    """The seed key of a paired cell: its identity without the policy, the policy's
    parameters and ``sufficient_stats`` (resolved per pair group), hashed like ``key``."""
    ident = {"family": family, "n_samples": n_samples,
             "params": {k: v for k, v in sorted(params.items())
                        if k not in ENGINE_ONLY and k not in policy_fields and k != "sufficient_stats"
                        and not k.startswith("policy.")}}
    text = json.dumps(ident, sort_keys=True, separators=(",", ":"))
    return "paired:" + hashlib.sha256(text.encode()).hexdigest()[:12]
