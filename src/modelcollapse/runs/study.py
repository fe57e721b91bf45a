"""Studies: a flat mapping (from a TOML file or CLI flags) expanded into a grid of cells.

The mapping mirrors the CLI: top-level ``family``, ``policy``, ``n_samples``,
``generations``, ``replicates``, ``seed``, ``metrics``, ``name`` and a ``[params]`` table
for what ``--set`` gives. Any value of ``family``, ``policy``, ``n_samples``,
``generations`` or a parameter may be a list, which makes it a sweep axis; the cells are
the product of the axes. A parameter that does not apply to some cell of the grid (say
``real_fraction`` for ``replace`` next to ``mix``) is left out of that cell; a parameter
that applies to no cell, or is unknown, is an error.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError, closest
from ..catalog import FAMILIES, METRICS, POLICIES
from ..models import Sampling
from .config import CellConfig, LoopParams, coerce, fields_of, make_params

TOP_KEYS = ("name", "family", "policy", "n_samples", "generations", "replicates", "seed",
            "metrics", "params")
AXIS_KEYS = ("family", "policy", "n_samples")
#: Other names users reach for: top-p sampling is the loop's ``truncation``.
ALIASES = {"top_p": "truncation"}
DEFAULTS = {"policy": "replace", "generations": 20, "replicates": 20, "seed": 0}
RESULT_BYTES = 4 * 2**30   # the largest (generations x metrics x replicates) table a cell may hold


@dataclass
class Study:
    """A named grid of resolved cells sharing one seed."""

    name: str
    seed: int
    cells: list[CellConfig]
    axes: list[str]      # keys that vary across cells, in file order

    def label(self, cell: CellConfig, within_family: bool = False) -> str:
        """A short human label: the values of the axes that vary."""
        parts = []
        for axis in self.axes:
            if axis == "family" and within_family:
                continue
            if axis in ("family", "policy"):
                parts.append(getattr(cell, axis))
            elif axis in ("n_samples", "generations"):
                parts.append(f"{axis}={getattr(cell, axis)}")
            elif axis in cell.params:
                parts.append(f"{axis}={cell.params[axis]}")
        return " · ".join(parts) or f"{cell.family} · {cell.policy}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "axes": self.axes,
                "cells": [c.to_dict() for c in self.cells]}


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a study file; errors name the file, line and column."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"study file {path} is a directory; give a .toml file")
    if not path.is_file():
        raise UserError(f"study file {path} does not exist")
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise UserError(f"study file {path} is not UTF-8 text (byte offset {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"study file {path} is not valid TOML: {e}") from None


def _owner_fields() -> dict[str, list[str]]:
    """Parameter name -> the owners ('family gmm', 'policy mix', 'loop') that declare it."""
    owners: dict[str, list[str]] = {}
    for name, cls in FAMILIES.items():
        for f in fields_of(cls.Params):
            owners.setdefault(f, []).append(f"family {name}")
    for name, cls in POLICIES.items():
        for f in fields_of(cls.Params):
            owners.setdefault(f, []).append(f"policy {name}")
    for f in fields_of(LoopParams):
        owners.setdefault(f, []).append("loop")
    return owners


def _as_axis(value: Any, where: str) -> list[Any]:
    if isinstance(value, list):
        if not value:
            raise UserError(f"{where} is an empty list; a sweep axis needs at least one value")
        return value
    return [value]


def parse_study(mapping: dict[str, Any], where: str = "", name: str = "run") -> Study:
    """Validate ``mapping`` and expand it into a :class:`Study`. ``where`` prefixes errors
    (for example the file name)."""
    for key in mapping:
        if key not in TOP_KEYS:
            raise UserError(f"{where}unknown key '{key}'{closest(key, TOP_KEYS)}; "
                            f"valid keys: {', '.join(TOP_KEYS)}")
    m = {**DEFAULTS, **mapping}
    if "family" not in m:
        raise UserError(f"{where}no family given; choose from: {', '.join(FAMILIES.names())}")
    for key in ("replicates", "seed", "generations"):
        if isinstance(m[key], list):
            raise UserError(f"{where}{key} cannot be a sweep axis; give one integer")
    replicates = coerce(m["replicates"], int, f"{where}replicates")
    seed = coerce(m["seed"], int, f"{where}seed")
    if replicates < 1:
        raise UserError(f"{where}replicates must be >= 1; got {replicates}")
    if seed < 0:
        raise UserError(f"{where}seed must be >= 0; got {seed}")
    params = m.get("params", {})
    if not isinstance(params, dict):
        raise UserError(f"{where}params must be a table of parameter = value")
    for alias, key in ALIASES.items():
        if alias in params:
            if key in params:
                raise UserError(f"{where}params.{alias} and params.{key} are the same setting; give one")
            params = {(key if k == alias else k): v for k, v in params.items()}
    owners = _owner_fields()
    for key in params:
        if key not in owners:
            raise UserError(f"{where}params.{key} is not a parameter of any family, policy or the loop"
                            f"{closest(key, owners)}; see `modelcollapse list`")

    axes: dict[str, list[Any]] = {k: _as_axis(m[k], f"{where}{k}") for k in AXIS_KEYS if k in m}
    for key, value in params.items():
        axes[key] = _as_axis(value, f"{where}params.{key}")
    wanted = _metric_names(m.get("metrics"), where)

    cells: dict[str, CellConfig] = {}
    used: set[str] = set()
    names = list(axes)
    for combo in itertools.product(*(axes[k] for k in names)):
        setting = {**dict(zip(names, combo)), "generations": m["generations"]}
        cell, consumed = _resolve_cell(setting, list(params), replicates, seed, wanted, where)
        used |= consumed
        cells.setdefault(cell.key, cell)
    for key in params:
        if key not in used:
            raise UserError(f"{where}params.{key} is not used by any cell (it belongs to "
                            f"{', '.join(owners[key])})")
    if wanted is not None:
        for metric in wanted:
            if not any(metric in c.metrics for c in cells.values()):
                mt = METRICS.get(metric)
                fams = ", ".join(n for n, cls in FAMILIES.items() if mt.implementation(cls)) or "none"
                raise UserError(f"{where}metric '{metric}' applies to none of the cells "
                                f"(it needs a family with {mt.requires}: {fams})")
    study_cells = list(cells.values())
    varying = [k for k in names if len({_axis_value(c, k) for c in study_cells}) > 1]
    return Study(str(m.get("name", name)), seed, study_cells, varying)


def _axis_value(cell: CellConfig, key: str) -> Any:
    if key in ("family", "policy", "n_samples", "generations"):
        return getattr(cell, key)
    return repr(cell.params.get(key))


def _metric_names(value: Any, where: str) -> list[str] | None:
    if value is None or value == "all":
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{where}metrics must be a list of metric names or \"all\"")
    if not value:
        raise UserError(f"{where}metrics is an empty list; name at least one metric or omit the key")
    for v in value:
        METRICS.get(v)  # raises with the closest name
    return value


def _resolve_cell(setting: dict[str, Any], param_keys: list[str], replicates: int, seed: int,
                  wanted: list[str] | None, where: str) -> tuple[CellConfig, set[str]]:
    family_name = coerce(setting["family"], str, f"{where}family")
    policy_name = coerce(setting.get("policy", DEFAULTS["policy"]), str, f"{where}policy")
    fam_cls, pol_cls = FAMILIES.get(family_name), POLICIES.get(policy_name)
    given = {k: setting[k] for k in param_keys}
    fam = make_params(fam_cls.Params, given, f"{where}params.")
    pol = make_params(pol_cls.Params, given, f"{where}params.")
    loop = make_params(LoopParams, given, f"{where}params.")
    consumed = set(fields_of(fam_cls.Params)) | set(fields_of(pol_cls.Params)) | set(fields_of(LoopParams))
    n_samples = setting.get("n_samples")
    n_samples = fam_cls.default_samples(fam) if n_samples is None else coerce(n_samples, int, f"{where}n_samples")
    generations = coerce(setting.get("generations", DEFAULTS["generations"]), int, f"{where}generations")
    if generations < 1:
        raise UserError(f"{where}generations must be >= 1; got {generations}")
    family = fam_cls(fam, n_samples)
    try:
        family.validate(n_samples)
    except UserError as e:
        raise UserError(f"{where}{e}") from None
    policy = pol_cls(pol)
    try:
        policy.check_family(family)   # a policy that needs a kind of family says so here
    except UserError as e:
        raise UserError(f"{where}{e}") from None
    sampling = Sampling(loop.temperature, loop.truncation)
    sizes = [n_samples, policy.synthetic_size(n_samples), policy.real_size(n_samples)]
    stats_possible = (family.stats_supported(sampling, min(s for s in sizes if s > 0))
                      and not policy.uses_samples())
    if loop.sufficient_stats is True and not stats_possible:
        raise UserError(f"{where}params.sufficient_stats = true is not possible for family "
                        f"{family_name} with policy {policy_name} and this sampling; use 'auto'")
    flat = {**asdict(fam), **asdict(pol), **asdict(loop)}
    flat.update(family.fingerprint())   # e.g. a corpus's hash: new content, new cell
    flat["sufficient_stats"] = bool(stats_possible and loop.sufficient_stats is not False)
    metrics = tuple(n for n, mt in METRICS.items() if mt.applies_to(family, fam, policy)
                    and (wanted is None or n in wanted))
    need = 8 * generations * len(metrics) * replicates
    if need > RESULT_BYTES:
        raise UserError(f"{where}{generations} generations x {len(metrics)} metrics x {replicates} "
                        f"replicates need {need / 2**30:.0f} GiB of results; use fewer replicates, "
                        f"generations or metrics")
    cell = CellConfig(family_name, policy_name, n_samples, generations, replicates, seed, metrics, flat)
    return cell, consumed & set(param_keys)
