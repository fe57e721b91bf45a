"""The plugin contracts: capabilities instead of names, one direction of imports, common
checks over every registered family, metric, policy and overlay (plugins included), and the
two bugs the implicit contracts caused."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelcollapse import plugins, theory
from modelcollapse.api import make_study
from modelcollapse.capabilities import Persistent, satisfies
from modelcollapse.catalog import FAMILIES, METRICS, POLICIES
from modelcollapse.cli import main
from modelcollapse.errors import UserError
from modelcollapse.loop import build, run_cell, simulate
from modelcollapse.randomness import SeedTree

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "modelcollapse"
EXAMPLES = ROOT / "examples" / "plugins"


# -- one direction of imports ---------------------------------------------------------------
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports at module level (not inside functions or
    ``if TYPE_CHECKING``), resolving ``from X import Y`` to X.Y when Y is a module."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_pkg = path.name == "__init__.py"
        base = name.split(".") if is_pkg else name.split(".")[:-1]
        edges: set[str] = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    root = base[:len(base) - node.level + 1]
                    mod = ".".join(root + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in files else mod
                           for a in node.names]
            else:
                continue
            edges |= {t for t in targets if t in files and t != name}
        graph[name] = edges
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_module_level_import_cycle():
    graph = _import_graph()
    cycles = []
    for name in graph:
        for nxt in graph[name]:
            # A package's __init__ importing its own submodules is registration, not a cycle;
            # a cycle is a module that can reach itself through another module.
            if name in _reachable(graph, nxt) and not nxt.startswith(name + "."):
                cycles.append((name, nxt))
    assert not cycles, f"module-level import cycles: {cycles[:5]}"


def test_the_engine_imports_nothing_from_the_config_store_or_report_layers():
    graph = _import_graph()
    for engine in ("modelcollapse.loop", "modelcollapse.policies", "modelcollapse.metrics.base"):
        above = {m for m in _reachable(graph, engine)
                 if m.startswith(("modelcollapse.runs", "modelcollapse.report",
                                  "modelcollapse.cli", "modelcollapse.sweep"))}
        assert not above, f"{engine} imports {sorted(above)}"


def test_no_family_name_in_metric_policy_or_theory_dispatch():
    names = set(FAMILIES.names())
    for folder in ("metrics", "curation"):
        for path in (PACKAGE / folder).rglob("*.py"):
            text = path.read_text()
            for name in names:
                assert f'"{name}"' not in text, f"{path.name} names family {name}"
    for path in (PACKAGE / "policies.py", PACKAGE / "theory.py", PACKAGE / "loop.py"):
        text = path.read_text()
        for name in names:
            assert f'== "{name}"' not in text and f'("{name}"' not in text, (path.name, name)


# -- plugins ----------------------------------------------------------------------------------
@pytest.fixture
def unload_plugins(monkeypatch):
    """Plugins register globally: put every registry back afterwards."""
    from modelcollapse.registry import Registry
    registries = [FAMILIES, METRICS, POLICIES]
    saved = [dict(r._entries) for r in registries]
    impls = {n: list(m.implementations) for n, m in METRICS.items()}
    overlays = list(theory.OVERLAYS)
    loaded = set(plugins._loaded)
    monkeypatch.delenv(plugins.ENV, raising=False)
    yield
    for r, entries in zip(registries, saved):
        r._entries.clear()
        r._entries.update(entries)
    for n, m in METRICS.items():
        m.implementations[:] = impls[n]
    theory.OVERLAYS[:] = overlays
    plugins._loaded.clear()
    plugins._loaded.update(loaded)
    assert isinstance(FAMILIES, Registry)


def test_family_plugin_runs_two_generations_from_the_command_line(tmp_path, capsys, unload_plugins):
    out = tmp_path / "run"
    rc = main(["--plugin", str(EXAMPLES / "poisson_family.py"), "run", "--family", "poisson",
               "--generations", "2", "--replicates", "3", "--out", str(out), "--quiet",
               "--no-plots"])
    assert rc == 0, capsys.readouterr().err
    df = pd.read_parquet(out / "metrics.parquet")
    assert {"rate", "rate_error", "extinct", "real_share"} <= set(df["metric"])
    assert sorted(df["generation"].unique()) == [0, 1]
    # the plugin is recorded for worker processes
    assert str(EXAMPLES / "poisson_family.py") in os.environ[plugins.ENV]


def test_plugins_show_in_list_with_what_applies(capsys, unload_plugins):
    assert main(["--plugin", str(EXAMPLES / "poisson_family.py"),
                 "--plugin", str(EXAMPLES / "spread_metric.py"), "list"]) == 0
    out = capsys.readouterr().out
    block = out[out.index("  poisson"):out.index("\n  ", out.index("  poisson") + 3)]
    assert "poisson" in out and "spread_ratio" in out
    gaussian = out[out.index("  gaussian"):out.index("  gmm")]
    assert "spread_ratio" in gaussian
    kinds = out[out.index("  poisson"):].split("\npolicies")[0]
    assert "provides: poisson rate" in kinds and "metrics: real_share, rate" in kinds
    assert block


def test_plugin_overlay_matches_its_simulation(unload_plugins):
    plugins.load(str(EXAMPLES / "poisson_family.py"))
    n, lam, R, G = 40, 3.0, 4000, 6
    df = run_cell(make_study(family="poisson", policy="replace", n_samples=n, generations=G,
                             replicates=R, params={"truth_rate": lam}).cells[0])
    err = df[df.metric == "rate_error"].pivot(index="generation", columns="replicate",
                                              values="value").to_numpy()
    expect = theory.curve("poisson", "replace", {"truth_rate": lam}, n, "rate_error",
                          np.arange(G)).values
    mc = err.std(axis=1, ddof=1) / np.sqrt(R)
    assert np.all(np.abs(err.mean(axis=1) - expect) < 4 * mc), (err.mean(axis=1), expect, mc)


def test_metric_plugin_applies_by_capability(unload_plugins):
    plugins.load(str(EXAMPLES / "spread_metric.py"))
    df = run_cell(make_study(family="gaussian", policy="replace", generations=3, replicates=5,
                             metrics=["spread_ratio", "cov_trace"]).cells[0])
    ratio = df[df.metric == "spread_ratio"].value.to_numpy()
    trace = df[df.metric == "cov_trace"].value.to_numpy()
    assert np.allclose(ratio, np.sqrt(trace))   # the truth's variance is 1 in 1-D


def test_bad_plugins_are_one_sentence(tmp_path, capsys, unload_plugins):
    assert main(["--plugin", str(tmp_path / "nope.py"), "list"]) == 2
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    assert main(["--plugin", str(broken), "list"]) == 2
    assert main(["--plugin", "no_such_module_xyz", "list"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(e.startswith("modelcollapse: error: plugin ") for e in err)
    assert "boom" in err[1]


# -- common checks over every registered family x applicable policy ------------------------
SMALL = {"ngram": dict(n_samples=40, params={"eval_tokens": 300, "bleu_docs": 20}),
         "transformer": dict(n_samples=24, params={"epochs": 1, "eval_tokens": 300,
                                                    "val_blocks": 8, "bleu_docs": 10,
                                                    "device": "cpu", "gen_batch": 64}),
         "gmm": dict(params={"n_eval": 200, "max_iter": 20}),
         "kde": dict(n_samples=60, params={"n_eval": 200}),
         **{f: dict(n_samples=96, params={"n_eval": 32, **extra}) for f, extra in (
             ("vae", {"epochs": 1, "hidden": 16}), ("diffusion", {"epochs": 1, "hidden": 16, "steps": 5}),
             ("pca_gmm", {"pca_components": 4, "components": 3}), ("image_kde", {}))}}
POLICY_SMALL = {"filtered": {"real_fraction": 0.25}, "curated": {"real_fraction": 0.25},
                "recovery": {"recover_at": 1}}


def _cases():
    for fam, fcls in FAMILIES.items():
        for pol, pcls in POLICIES.items():
            if not satisfies(fcls, pcls.requires):
                continue
            # A transformer chain trains alone in its chunk whatever the chunk size (and takes
            # the longest): its runs are covered by the resume and filtered tests below.
            slow = fam == "transformer"
            marks = [pytest.mark.slow] if slow else []
            yield pytest.param(fam, pol, id=f"{fam}-{pol}", marks=marks)


def _study(fam: str, pol: str, replicates: int, chunk: int):
    small = SMALL.get(fam, {})
    params = {**small.get("params", {}), **POLICY_SMALL.get(pol, {}), "chunk_size": chunk}
    return make_study(family=fam, policy=pol, generations=2, replicates=replicates,
                      n_samples=small.get("n_samples"), params=params)


@pytest.mark.parametrize("fam,pol", list(_cases()))
def test_every_family_runs_every_applicable_policy_identically_in_any_chunking(fam, pol):
    if fam == "transformer":
        pytest.importorskip("torch")
    R = 2 if fam == "transformer" else 3
    try:
        cell = _study(fam, pol, R, 0).cells[0]
    except UserError as e:   # a setting the family cannot run is refused before any run
        assert "sufficient statistics only" in str(e), e
        return
    whole = run_cell(cell)
    one = run_cell(_study(fam, pol, R, 1).cells[0])
    family, policy, _, metrics = build(cell)
    assert list(cell.metrics), "no metric applies"
    for m in metrics:   # every applicable metric gives one value per replicate (or none: sparse)
        rows = whole[whole.metric == m.name]
        per_gen = rows.groupby("generation").size()
        assert (per_gen == R).all() or (m.sparse and (per_gen <= R).all()), m.name
        assert len(rows) or m.sparse, m.name
    assert not whole["value"].isna().any()
    pd.testing.assert_frame_equal(whole, one)


def test_every_metric_declares_a_direction_description_and_requirement():
    for name, m in METRICS.items():
        assert m.direction in ("higher", "lower", "truth", "info"), name
        assert m.description and m.implementations, name
        assert any(FAMILIES.items()), name


class _Memory:
    """A chain state kept in memory, as the data the loop packs (arrays + JSON; the store's
    file format is tested with the store)."""

    def __init__(self):
        self.saved = None

    def load(self, decode):
        return None if self.saved is None else decode(*self.saved)

    def save(self, arrays, meta):
        self.saved = (arrays, meta)


class _Stop(Exception):
    pass


@pytest.mark.parametrize("fam", [f for f, c in FAMILIES.items() if issubclass(c, Persistent)])
def test_persistent_families_resume_from_their_chain_state(fam, tmp_path):
    pytest.importorskip("torch")
    cell = _study(fam, "replace", 1, 0).cells[0]
    family, policy, sampling, metrics = build(cell)
    family.attach(tmp_path / "models")
    seeds, reps = SeedTree(cell.seed, cell.key), np.arange(1)
    full = simulate(family, policy, sampling, metrics, cell.n_samples, 3, seeds, reps)
    state, seen = _Memory(), []

    def stop_after_two(n):
        seen.append(n)
        if len(seen) == 2:
            raise _Stop

    with pytest.raises(_Stop):
        simulate(family, policy, sampling, metrics, cell.n_samples, 3, seeds, reps,
                 on_generation=stop_after_two, state=state)
    family2, policy2, sampling2, metrics2 = build(cell)
    family2.attach(tmp_path / "models")
    resumed = simulate(family2, policy2, sampling2, metrics2, cell.n_samples, 3, seeds, reps,
                       state=state)
    np.testing.assert_array_equal(full, resumed)


# -- the two bugs -------------------------------------------------------------------------------
def test_transformer_with_the_watermark_filter_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["run", "--family", "transformer", "--policy", "filtered", "--set",
               "detector=watermark", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "watermarked sampling" in err and "transformer" in err
    assert not out.exists()


def test_transformer_cells_record_real_share_and_the_detector_metrics():
    pytest.importorskip("torch")
    cell = _study("transformer", "filtered", 1, 0).cells[0]
    for name in ("real_share", "detector_precision", "detector_recall", "detector_fpr",
                 "dropped_share", "dropped_detector"):
        assert name in cell.metrics, name
    df = run_cell(cell)
    assert {"real_share", "detector_recall", "detector_fpr"} <= set(df["metric"])
    share = df[(df.metric == "real_share") & (df.generation == 1)].value.to_numpy()
    assert np.all((share > 0) & (share < 1))


# -- parameters by owner ----------------------------------------------------------------------
def test_owner_prefixed_parameters_and_unchanged_cell_keys():
    a = make_study(family="gaussian", policy="mix", params={"real_fraction": 0.3}).cells[0]
    b = make_study(family="gaussian", policy="mix", params={"policy.real_fraction": 0.3}).cells[0]
    assert a.key == b.key and a.params["real_fraction"] == 0.3
    with pytest.raises(UserError, match="not a parameter"):
        make_study(family="gaussian", policy="mix", params={"policy.nope": 1})


def test_a_name_two_owners_declare_is_refused_unless_prefixed(monkeypatch):
    from dataclasses import dataclass

    from modelcollapse import runs
    from modelcollapse.families.gaussian import Gaussian, GaussianParams

    @dataclass(frozen=True)
    class Clash(GaussianParams):
        real_fraction: float = 0.5   # a family parameter named like mix's

    monkeypatch.setattr(Gaussian, "Params", Clash)
    with pytest.raises(UserError, match="declared by both family gaussian and policy mix"):
        make_study(family="gaussian", policy="mix", params={"real_fraction": 0.2})
    cell = make_study(family="gaussian", policy="mix",
                      params={"family.real_fraction": 0.9, "policy.real_fraction": 0.2}).cells[0]
    assert cell.params["family.real_fraction"] == 0.9 and cell.params["policy.real_fraction"] == 0.2
    family, policy, _, _ = build(cell)
    assert family.params.real_fraction == 0.9 and policy.params.real_fraction == 0.2
    assert runs is not None
