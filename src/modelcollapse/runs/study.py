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
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import UserError, closest
from ..catalog import FAMILIES, METRICS, POLICIES
from ..families import Sampling
from .config import CellConfig, LoopParams, coerce, fields_of, make_params, omit_unset, stream_key

TOP_KEYS = ("name", "family", "policy", "n_samples", "generations", "replicates", "seed",
            "metrics", "paired", "params")
AXIS_KEYS = ("family", "policy", "n_samples")
#: Other names users reach for: top-p sampling is the loop's ``truncation``.
ALIASES = {"top_p": "truncation"}
DEFAULTS = {"policy": "replace", "generations": 20, "replicates": 20, "seed": 0, "paired": False}
RESULT_BYTES = 4 * 2**30   # the largest (generations x metrics x replicates) table a cell may hold


@dataclass
class Study:
    """A named grid of resolved cells sharing one seed."""

    name: str
    seed: int
    cells: list[CellConfig]
    axes: list[str]      # keys that vary across cells, in file order
    paired: bool = False  # cells that differ only in policy share their random streams

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
            elif param(cell, axis) is not None:
                parts.append(f"{axis}={param(cell, axis)}")
        return " · ".join(parts) or f"{cell.family} · {cell.policy}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "seed": self.seed, "axes": self.axes}
        if self.paired:   # only then, so unpaired study files read as they always did
            out["paired"] = True
        out["cells"] = [c.to_dict() for c in self.cells]
        return out


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a study file; errors name the file, line and column."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"study file {path} is a directory; give a .toml file")
    return parse_toml_file(path, "study file")


MAX_TOML_BYTES = 16 * 2**20


def parse_toml_file(path: Path, what: str) -> dict[str, Any]:
    """A TOML file's table: a regular file (no FIFO or device) of at most 16 MiB, UTF-8,
    valid TOML; every failure is one sentence naming the file."""
    from ..safepaths import open_regular
    if not path.exists() and not path.is_symlink():
        raise UserError(f"{what} {path} does not exist")
    try:
        with open_regular(path, what) as fh:
            data = fh.read(MAX_TOML_BYTES + 1)
    except OSError as e:
        raise UserError(f"{what} {path} cannot be read ({e.strerror or e})") from None
    if len(data) > MAX_TOML_BYTES:
        raise UserError(f"{what} {path} is larger than {MAX_TOML_BYTES // 2**20} MiB")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise UserError(f"{what} {path} is not UTF-8 text (byte offset {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path} is not valid TOML, so not a valid {what}: {e}") from None
    except RecursionError:
        raise UserError(f"{what} {path} is nested too deeply to read") from None
    except ValueError as e:   # e.g. an integer of more than 4,300 digits
        raise UserError(f"{what} {path} holds a value that cannot be read "
                        f"({str(e).split(';')[0][:100]})") from None


OWNERS = ("family", "policy", "loop")


def _owned(given: dict[str, Any], classes: dict[str, type], family: str, policy: str,
           where: str) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Split one cell's params among its owners. A bare name goes to the owner that declares
    it; 'owner.name' to that owner only; a bare name that two owners of this cell declare is
    refused (it would silently set both). Returns the per-owner values and the keys used."""
    out: dict[str, dict[str, Any]] = {o: {} for o in OWNERS}
    used: set[str] = set()
    label = {"family": f"family {family}", "policy": f"policy {policy}", "loop": "the loop"}
    for key, value in given.items():
        owner, dot, bare = key.partition(".")
        if dot and owner in OWNERS:
            if bare in fields_of(classes[owner]):
                out[owner][bare] = value
                used.add(key)
            continue
        holders = [o for o in OWNERS if key in fields_of(classes[o])]
        if len(holders) > 1:
            raise UserError(f"{where}params.{key} is declared by both {label[holders[0]]} and "
                            f"{label[holders[1]]}; write {holders[0]}.{key} or {holders[1]}.{key}")
        if holders:
            out[holders[0]][key] = value
            used.add(key)
    return out, used


def _namespaced(values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One flat params dict: a name only one owner declares keeps its bare spelling (so cell
    keys are what they always were); a name two owners declare is stored per owner."""
    counts: dict[str, int] = {}
    for part in values.values():
        for k in part:
            counts[k] = counts.get(k, 0) + 1
    return {(k if counts[k] == 1 else f"{owner}.{k}"): v
            for owner, part in values.items() for k, v in part.items()}


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
    for key in ("replicates", "seed", "generations", "paired"):
        if isinstance(m[key], list):
            raise UserError(f"{where}{key} cannot be a sweep axis; give one value")
    replicates = coerce(m["replicates"], int, f"{where}replicates")
    seed = coerce(m["seed"], int, f"{where}seed")
    paired = coerce(m.get("paired", False), bool, f"{where}paired")
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
        owner, dot, bare = key.partition(".")
        if dot and owner in OWNERS and bare in owners:
            continue   # 'family.x', 'policy.x', 'loop.x': one owner's parameter, by name
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
        cell, consumed = _resolve_cell(setting, list(params), replicates, seed, wanted, where,
                                       paired)
        used |= consumed
        cells.setdefault(cell.key, cell)
    if paired:
        cells = _pair_sufficient_stats(cells, params)
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
    return Study(check_name(m.get("name", name), where), seed, study_cells, varying, paired)


def _pair_sufficient_stats(cells: dict[str, CellConfig], params: dict[str, Any]) -> dict[str, CellConfig]:
    """Paired cells must draw the same kind of real data at generation 0: where some cell of
    a pair group needs samples (say mix from a fixed pool) and 'auto' would let another draw
    sufficient statistics, every cell of the group draws samples."""
    if params.get("sufficient_stats", "auto") != "auto":
        return cells   # the user chose (or swept) it: their choice stands
    stats: dict[str, bool] = {}
    for cell in cells.values():
        stats[cell.stream_key] = stats.get(cell.stream_key, True) and cell.params["sufficient_stats"]
    out: dict[str, CellConfig] = {}
    for cell in cells.values():   # in the grid's order
        if cell.params["sufficient_stats"] != stats[cell.stream_key]:
            cell = replace(cell, params={**cell.params, "sufficient_stats": stats[cell.stream_key]})
        out.setdefault(cell.key, cell)
    return out

def physical_memory() -> int:
    """Bytes of memory of this machine (a large default where the system does not say)."""
    import os
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 2**40


def _check_memory(family: Any, policy: Any, n_samples: int, generations: int, where: str) -> None:
    """One replicate must fit in this machine's memory (chunks hold at least one): refused
    here, before any folder is written, rather than as an allocation failure mid-run."""
    need = family.bytes_per_replicate(policy.max_train_size(n_samples, generations))
    have = physical_memory()
    if need > have:
        raise UserError(f"{where}one replicate of family {family.name} needs about "
                        f"{need / 2**30:,.1f} GiB with these settings, more than this machine's "
                        f"{have / 2**30:,.1f} GiB; lower n_samples or the family's sizes")


def check_name(name: Any, where: str = "") -> str:
    """A study name is one safe path component (the default folder is ``runs/<name>``):
    no separators, no '.' or '..', no leading dot, no control characters, at most 100
    characters."""
    if not isinstance(name, str):
        raise UserError(f"{where}name must be a string; got {str(name)[:40]!r}")
    bad = (not name or name in (".", "..") or name.startswith(".") or len(name) > 100
           or any(c in name for c in "/\\") or any(ord(c) < 32 or ord(c) == 127 for c in name))
    if bad or name != name.strip():
        raise UserError(f"{where}name {name[:60]!r} is not a safe folder name: use up to 100 "
                        f"characters without '/', '\\', control characters, surrounding "
                        f"spaces or a leading '.'")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{where}name holds a lone surrogate, not valid Unicode text") from None
    return name


def _axis_value(cell: CellConfig, key: str) -> Any:
    if key in ("family", "policy", "n_samples", "generations"):
        return getattr(cell, key)
    return repr(param(cell, key))


def param(cell: CellConfig, key: str) -> Any:
    """A cell's value of params key ``key`` ('name' or 'owner.name'), or None."""
    if key in cell.params:
        return cell.params[key]
    return cell.params.get(key.partition(".")[2]) if "." in key else None


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
                  wanted: list[str] | None, where: str,
                  paired: bool = False) -> tuple[CellConfig, set[str]]:
    family_name = coerce(setting["family"], str, f"{where}family")
    policy_name = coerce(setting.get("policy", DEFAULTS["policy"]), str, f"{where}policy")
    fam_cls, pol_cls = FAMILIES.get(family_name), POLICIES.get(policy_name)
    classes = {"family": fam_cls.Params, "policy": pol_cls.Params, "loop": LoopParams}
    given, consumed = _owned({k: setting[k] for k in param_keys}, classes, family_name,
                             policy_name, where)
    fam = make_params(fam_cls.Params, given["family"], f"{where}params.")
    pol = make_params(pol_cls.Params, given["policy"], f"{where}params.")
    loop = make_params(LoopParams, given["loop"], f"{where}params.")
    n_samples = setting.get("n_samples")
    n_samples = fam_cls.default_samples(fam) if n_samples is None else coerce(n_samples, int, f"{where}n_samples")
    if getattr(pol, "absolute", False) and "real_fraction" in given["policy"]:
        raise UserError(f"{where}params.real_fraction and params.n_real / n_synthetic both size "
                        f"the real part of policy {policy_name}; give one or the other")
    pool = pol_cls(pol).real_pool_size()
    if pool is not None:   # the policy fixes the real pool's size, hence generation 0's
        if setting.get("n_samples") is not None and n_samples != pool:
            raise UserError(f"{where}n_samples = {n_samples} but policy {policy_name} fixes the "
                            f"real set at {pool} (generation 0 fits on it alone); give n_samples "
                            f"= {pool} or leave n_samples out")
        n_samples = pool
    generations = coerce(setting.get("generations", DEFAULTS["generations"]), int, f"{where}generations")
    if generations < 1:
        raise UserError(f"{where}generations must be >= 1; got {generations}")
    family = fam_cls(fam, n_samples)
    try:
        family.validate(n_samples)
    except UserError as e:
        raise UserError(f"{where}{e}") from None
    policy = pol_cls(pol)
    later = policy.train_size(n_samples)
    if later != n_samples:   # training sets after generation 0 have another size: check it too
        try:
            family.validate(later)
        except UserError as e:
            raise UserError(f"{where}later training sets hold {later} data: {e}") from None
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
    flat = omit_unset(_namespaced({"family": asdict(fam), "policy": asdict(pol), "loop": asdict(loop)}))
    flat.update(family.fingerprint())   # e.g. a corpus's hash: new content, new cell
    flat["sufficient_stats"] = bool(stats_possible and loop.sufficient_stats is not False)
    if not flat["sufficient_stats"] and not family.samples_supported:
        raise UserError(f"{where}family {family_name} keeps its data as sufficient statistics "
                        f"only, and policy {policy_name} with these settings needs individual "
                        f"data (use replace, accumulate, verified, or mix with real_source = "
                        f"'fresh', and sufficient_stats = 'auto')")
    metrics = tuple(n for n, mt in METRICS.items() if mt.applies_to(family, fam, policy)
                    and (n in wanted if wanted is not None else not mt.opt_in_for(fam_cls)))
    need = 8 * generations * len(metrics) * replicates
    if need > RESULT_BYTES:
        raise UserError(f"{where}{generations} generations x {len(metrics)} metrics x {replicates} "
                        f"replicates need {need / 2**30:.0f} GiB of results; use fewer replicates, "
                        f"generations or metrics")
    _check_memory(family, policy, n_samples, generations, where)
    pairing = stream_key(family_name, n_samples, flat, set(fields_of(pol_cls.Params))) if paired else ""
    cell = CellConfig(family_name, policy_name, n_samples, generations, replicates, seed, metrics,
                      flat, pairing)
    return cell, consumed
