"""--extend in generations continues each finished chain from its saved final state: only
generations G..G'-1 are computed, the stored values stay bit-identical, and the result is
bit-identical to a run of G' generations from the start. Families that cannot save their
models as data (or a state that does not reproduce the table) are recomputed, and say so."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from modelcollapse.api import make_study, run_study
from modelcollapse.catalog import FAMILIES
from modelcollapse.loop import RecomputeWarning

CASES = [
    # family, policy, params (sufficient statistics and samples; pools kept by the policy)
    ("gaussian", "replace", {"sufficient_stats": True}),
    ("gaussian", "accumulate", {"sufficient_stats": False, "dim": 2}),
    ("gaussian", "mix", {"n_real": 20, "n_synthetic": 60, "real_source": "fixed"}),
    ("categorical", "replace", {"n_outcomes": 30}),
    ("categorical", "mix", {"n_outcomes": 30, "real_fraction": 0.3}),
    ("gmm", "accumulate", {}),
    ("kde", "replace", {}),
    ("labels", "accumulate", {}),
    # the fixed design is drawn once per chunk: a continued chunk takes it from its state
    ("linear_regression", "replace", {}),
    ("linear_regression", "accumulate", {"ridge": 0.1}),
    ("linear_regression", "mix", {"real_fraction": 0.5, "real_source": "fresh"}),
    ("linear_regression", "replace", {"design": "fresh"}),
]


def _study(family, policy, params, generations, replicates=5):
    return make_study(family=family, policy=policy, generations=generations,
                      replicates=replicates, metrics="all",
                      params={"chunk_size": 2, **params})


def _key(df: pd.DataFrame) -> pd.DataFrame:
    return (df[["cell", "generation", "replicate", "metric", "value"]]
            .astype({"cell": str, "metric": str})
            .sort_values(["cell", "metric", "generation", "replicate"]).reset_index(drop=True))


class _Spy:
    """Counts the fits of the family class and records the generations it samples at."""

    def __init__(self, monkeypatch, family: str) -> None:
        cls = FAMILIES.get(family)
        self.fits, self.sampled = 0, []
        fit, sample = cls.fit, cls.sample

        def spy_fit(fam, *a, **kw):
            self.fits += 1
            return fit(fam, *a, **kw)

        def spy_sample(fam, model, n, generation, *a, **kw):
            self.sampled.append(generation)
            return sample(fam, model, n, generation, *a, **kw)

        monkeypatch.setattr(cls, "fit", spy_fit)
        monkeypatch.setattr(cls, "sample", spy_sample)


@pytest.mark.parametrize("family, policy, params", CASES,
                         ids=[f"{f}-{p}-{i}" for i, (f, p, _) in enumerate(CASES)])
def test_extend_in_generations_computes_only_the_new_ones(tmp_path, monkeypatch, family,
                                                          policy, params):
    out = tmp_path / "run"
    first = run_study(_study(family, policy, params, 3), out, plots=False).metrics
    assert sorted(p.name for p in (out / "cells").glob("*/final/*")) == [
        "0-2.state.npz", "2-4.state.npz", "4-5.state.npz"]
    spy = _Spy(monkeypatch, family)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecomputeWarning)   # the fast path, for every chunk
        ext = run_study(_study(family, policy, params, 6), out, plots=False, extend=True).metrics
    # Generations 0..2 are neither refitted nor resampled: 3 chunks x 3 new fits, and the
    # samples drawn are those of generations 2..4 (generation 2's model trains generation 3).
    assert spy.fits == 3 * 3
    n_draws = len(spy.sampled) // 3
    assert sorted(set(spy.sampled)) == [2, 3, 4] and len(spy.sampled) == 3 * n_draws
    monkeypatch.undo()
    merged = _key(first).merge(_key(ext), on=["cell", "generation", "replicate", "metric"],
                               how="left", suffixes=("_old", "_new"))
    assert np.array_equal(merged["value_old"].to_numpy(), merged["value_new"].to_numpy())
    fresh = run_study(_study(family, policy, params, 6), tmp_path / "fresh", plots=False).metrics
    assert _key(fresh).equals(_key(ext))   # bit-identical to a run of 6 from the start


def test_gen0_metrics_continue_from_the_saved_gen0_model(tmp_path, monkeypatch):
    """kl_to_gen0 / w2_to_gen0 judge every generation by the chain's generation-0 model,
    which only exists at generation 0: the final state carries it."""
    params = {"n_real": 20, "n_synthetic": 80, "real_source": "fresh"}
    out = tmp_path / "run"
    run_study(_study("gaussian", "mix", params, 4), out, plots=False)
    spy = _Spy(monkeypatch, "gaussian")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecomputeWarning)
        ext = run_study(_study("gaussian", "mix", params, 7), out, plots=False, extend=True).metrics
    assert spy.fits == 3 * 3
    monkeypatch.undo()
    fresh = run_study(_study("gaussian", "mix", params, 7), tmp_path / "fresh", plots=False).metrics
    assert {"kl_to_gen0", "w2_to_gen0"} <= set(ext["metric"].astype(str))
    late = ext[ext["metric"].isin(["kl_to_gen0", "w2_to_gen0"]) & (ext["generation"] > 4)]
    assert (late["value"] > 0).all()
    assert _key(fresh).equals(_key(ext))


def test_more_replicates_and_generations_together(tmp_path, monkeypatch):
    """Old replicates continue (3 new fits per old chunk); new ones run from generation 0."""
    out = tmp_path / "run"
    run_study(_study("categorical", "replace", {}, 3, replicates=4), out, plots=False)
    spy = _Spy(monkeypatch, "categorical")
    bigger = _study("categorical", "replace", {}, 6, replicates=7)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecomputeWarning)
        ext = run_study(bigger, out, plots=False, extend=True).metrics
    assert spy.fits == 2 * 3 + 2 * 6   # chunks 0-2, 2-4 continue; 4-6, 6-7 are new
    monkeypatch.undo()
    fresh = run_study(bigger, tmp_path / "fresh", plots=False).metrics
    assert _key(fresh).equals(_key(ext))
    # the final states now hold generation 5 of every chunk: a second extension continues
    assert sorted(p.name for p in (out / "cells").glob("*/final/*")) == [
        "0-2.state.npz", "2-4.state.npz", "4-6.state.npz", "6-7.state.npz"]


def test_a_family_that_cannot_save_its_models_is_recomputed_and_says_so(tmp_path, monkeypatch):
    cls = FAMILIES.get("gaussian")
    monkeypatch.setattr(cls, "state_classes", ())
    out = tmp_path / "run"
    run_study(_study("gaussian", "replace", {}, 3), out, plots=False)
    assert not list((out / "cells").glob("*/final/*"))
    with pytest.warns(RecomputeWarning, match="cannot save its models as data"):
        ext = run_study(_study("gaussian", "replace", {}, 5), out, plots=False, extend=True).metrics
    fresh = run_study(_study("gaussian", "replace", {}, 5), tmp_path / "fresh", plots=False).metrics
    assert _key(fresh).equals(_key(ext))


@pytest.mark.parametrize("damage", ["garbage", "other_model"])
def test_a_bad_final_state_is_recomputed_not_trusted(tmp_path, monkeypatch, damage):
    """A damaged file, or a well-formed state whose model is not the one behind the stored
    values (here: another chunk's, renamed), is caught before any work and recomputed."""
    out = tmp_path / "run"
    run_study(_study("gaussian", "replace", {}, 3), out, plots=False)
    final = next((out / "cells").glob("*/final"))
    if damage == "garbage":
        (final / "0-2.state.npz").write_bytes(b"not a zip")
    else:   # chunk 2-4's state under 0-2's name: the replicates differ, so it is refused
        (final / "2-4.state.npz").replace(final / "0-2.state.npz")
        run_study(_study("gaussian", "replace", {}, 3), tmp_path / "again", plots=False)
        other = next((tmp_path / "again" / "cells").glob("*/final"))
        (other / "2-4.state.npz").replace(final / "2-4.state.npz")
    spy = _Spy(monkeypatch, "gaussian")
    with pytest.warns(RecomputeWarning, match="replicates 0-1"):
        ext = run_study(_study("gaussian", "replace", {}, 5), out, plots=False, extend=True).metrics
    assert spy.fits == 5 + 2 + 2   # chunk 0-2 retraced from generation 0, the others continue
    monkeypatch.undo()
    fresh = run_study(_study("gaussian", "replace", {}, 5), tmp_path / "fresh", plots=False).metrics
    assert _key(fresh).equals(_key(ext))


def _edit_saved_state(tmp_path, params: dict, edit) -> None:
    """Run 3 generations of the Gaussian under ``params`` into tmp_path/run, then rewrite its
    saved final state: ``edit(members, meta)`` changes the archive's members in place
    (``meta``: its parsed meta.json, written back afterwards)."""
    import json
    import zipfile
    out = tmp_path / "run"
    run_study(_study("gaussian", "replace", params, 3), out, plots=False)
    path = next((out / "cells").glob("*/final")) / "0-2.state.npz"
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    meta = json.loads(members["meta.json"])
    edit(members, meta)
    members["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def _extension_is_recomputed(tmp_path, params: dict, match: str) -> None:
    """Extending tmp_path/run to 5 generations warns ``match`` and recomputes: the table is
    that of a fresh 5-generation run."""
    with pytest.warns(RecomputeWarning, match=match):
        ext = run_study(_study("gaussian", "replace", params, 5), tmp_path / "run",
                        plots=False, extend=True).metrics
    fresh = run_study(_study("gaussian", "replace", params, 5), tmp_path / "fresh",
                      plots=False).metrics
    assert _key(fresh).equals(_key(ext))


def test_a_state_whose_model_was_edited_is_caught_by_remeasuring(tmp_path):
    """Values copied from the table but a different model: measuring the saved model again
    does not give the stored last generation, so the chunk is recomputed."""
    import io

    def shift_the_mean(members, meta):
        mean_ref = meta["model"]["object"]["attrs"]["mean_"]["$array"]
        arr = np.load(io.BytesIO(members[f"{mean_ref}.npy"]))
        buf = io.BytesIO()
        np.save(buf, arr + 0.5)
        members[f"{mean_ref}.npy"] = buf.getvalue()

    params = {"sufficient_stats": True}
    _edit_saved_state(tmp_path, params, shift_the_mean)
    _extension_is_recomputed(tmp_path, params, "does not reproduce generation 2")


def test_random_buffers_are_saved_as_what_drew_them(tmp_path):
    """A state keeps no pre-drawn randomness: a buffer is its draw spec and the generator
    states before the block, drawn again on load; a spec that does not fit its key is
    refused (and the chunk recomputed), never drawn."""

    def reshape_a_buffer(members, meta):
        buffers = [b for st in meta["streams"].values() for b in st["buffers"].values()]
        assert buffers and all("before" in b and "array" not in b for b in buffers)
        first = next(st for st in meta["streams"].values() if st["buffers"])
        key = next(iter(first["buffers"]))
        first["buffers"][key]["spec"]["shape"] = [7]   # another shape under the same key

    params = {"sufficient_stats": False}
    _edit_saved_state(tmp_path, params, reshape_a_buffer)
    _extension_is_recomputed(tmp_path, params, "another key")
