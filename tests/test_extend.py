"""--extend: a finished run takes more replicates or generations in place; only the new work
is computed and the stored values stay bit-identical; any other change is refused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modelcollapse.api import load, make_study, run_study
from modelcollapse.errors import UserError
from modelcollapse.runs.store import RunStore

BASE = dict(family=["gaussian", "categorical"], policy=["replace", "mix"], generations=4,
            replicates=6, params={"real_fraction": 0.2, "chunk_size": 4})


def _study(**over):
    kw = {**BASE, **over}
    return make_study(**kw)


def _key(df: pd.DataFrame) -> pd.DataFrame:
    return (df[["cell", "generation", "replicate", "metric", "value"]].astype({"cell": str, "metric": str})
            .sort_values(["cell", "metric", "generation", "replicate"]).reset_index(drop=True))


def _merge(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    return _key(old).merge(_key(new), on=["cell", "generation", "replicate", "metric"],
                           how="left", suffixes=("_old", "_new"))


@pytest.mark.parametrize("grow", [{"replicates": 10}, {"generations": 7},
                                  {"replicates": 9, "generations": 6}])
def test_extend_equals_a_fresh_run_and_keeps_stored_values(tmp_path, grow):
    out = tmp_path / "run"
    first = run_study(_study(), out, plots=False).metrics
    bigger = _study(**grow)
    ext = run_study(bigger, out, plots=False, extend=True)
    assert sorted(ext.ran) == sorted(c.key for c in bigger.cells)
    m = _merge(first, ext.metrics)
    assert m["value_new"].notna().all()
    assert np.array_equal(m["value_old"].to_numpy(), m["value_new"].to_numpy())   # bit-identical
    fresh = run_study(bigger, tmp_path / "fresh", plots=False).metrics
    assert _key(fresh).equals(_key(ext.metrics))
    assert _key(load(out)).equals(_key(fresh))
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["extensions"]) == 1
    # a second --extend with the same sizes runs nothing
    again = run_study(bigger, out, plots=False, extend=True)
    assert again.ran == [] and len(again.skipped) == len(bigger.cells)


def _one(**over):
    return make_study(**{"family": "gaussian", "policy": "replace", "generations": 4,
                         "replicates": 6, "params": {"chunk_size": 4}, **over})


def test_only_new_work_is_computed(tmp_path, monkeypatch):
    """More replicates: the old chains are not simulated at all; more generations: each old
    chain runs once, to its new horizon."""
    import modelcollapse.loop as loop
    out = tmp_path / "run"
    run_study(_one(), out, plots=False)
    calls = []
    real = loop.simulate

    def spy(*args, **kw):
        calls.append((args[5], list(args[7])))   # generations, replicates
        return real(*args, **kw)

    monkeypatch.setattr(loop, "simulate", spy)
    run_study(_one(replicates=9), out, plots=False,
              extend=True)
    assert sorted(r for _, reps in calls for r in reps) == [6, 7, 8]
    calls.clear()
    run_study(_one(replicates=9, generations=6), out,
              plots=False, extend=True)
    assert sorted(r for _, reps in calls for r in reps) == list(range(9))
    assert {g for g, _ in calls} == {6}


@pytest.mark.parametrize("change, message", [
    ({"params": {"real_fraction": 0.3, "chunk_size": 4}}, "changes more than"),
    ({"seed": 1}, "changes more than"),
    ({"replicates": 3}, "fewer replicates"),
    ({"generations": 2, "replicates": 8}, "fewer generations"),
])
def test_extend_refuses_other_changes(tmp_path, change, message):
    out = tmp_path / "run"
    run_study(_study(), out, plots=False)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(UserError, match=message):
        run_study(_study(**change), out, plots=False, extend=True)
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert before == after   # nothing written


def test_growth_without_extend_is_refused_with_a_hint(tmp_path):
    out = tmp_path / "run"
    run_study(_study(), out, plots=False)
    with pytest.raises(UserError, match="add --extend"):
        run_study(_study(replicates=8), out, plots=False)


def test_extend_needs_a_folder():
    with pytest.raises(UserError, match="needs a run folder"):
        run_study(_study(), None, extend=True)


def test_a_tampered_table_cannot_be_extended(tmp_path):
    """Old chains must retrace their stored values; a table that no longer matches its chain
    (here: edited by hand) is refused rather than spliced onto a different chain."""
    out = tmp_path / "run"
    study = _one()
    run_study(study, out, plots=False)
    store = RunStore(out)
    path = store.cell_dir(study.cells[0]) / "metrics.parquet"
    df = pd.read_parquet(path)
    df.loc[0, "value"] += 1.0
    df.to_parquet(path, index=False)
    with pytest.raises(UserError, match="does not reproduce"):
        run_study(_one(generations=6), out, plots=False,
                  extend=True)


def test_cli_extend(tmp_path, capsys):
    from modelcollapse.cli import main
    out = tmp_path / "run"
    args = ["run", "--family", "gaussian", "--generations", "3", "--replicates", "4",
            "--out", str(out), "--no-plots", "--quiet"]
    assert main(args) == 0
    assert main([*args[:-5], "5", "--out", str(out), "--no-plots", "--quiet"]) == 2
    assert "add --extend" in capsys.readouterr().err
    assert main([*args[:-5], "5", "--out", str(out), "--no-plots", "--quiet", "--extend"]) == 0
    assert load(out).replicate.nunique() == 5


def test_families_with_weights_on_disk_take_more_replicates_only():
    from modelcollapse.runs.store import _growth
    cell = {"key": "abc", "family": "transformer", "policy": "replace", "n_samples": 8,
            "generations": 3, "replicates": 1, "seed": 0, "metrics": ["m"], "params": {}}
    old = {"name": "t", "seed": 0, "axes": [], "cells": [cell]}
    more_reps = {**old, "cells": [{**cell, "replicates": 2}]}
    more_gens = {**old, "cells": [{**cell, "generations": 4}]}
    assert _growth(old, more_reps) is None
    assert "more replicates, not more generations" in _growth(old, more_gens)
    gaussian = {**old, "cells": [{**cell, "family": "gaussian"}]}
    assert _growth(gaussian, {**gaussian, "cells": [{**cell, "family": "gaussian", "generations": 4}]}) is None


def test_markers_written_before_sizes_were_kept_still_count(tmp_path):
    """A run folder from before --extend: DONE holds only the row count; the sizes come from
    the cell's config.toml, so the cell is done (and growing it is an extension)."""
    out = tmp_path / "run"
    study = _one()
    run_study(study, out, plots=False)
    store = RunStore(out)
    done = store.cell_dir(study.cells[0]) / "DONE"
    done.write_text(json.dumps({"rows": 1}))
    assert store.is_done(study.cells[0])
    assert store.finished_sizes(study.cells[0]) == (4, 6)
    bigger = _one(replicates=8)
    assert not store.is_done(bigger.cells[0])
    ext = run_study(bigger, out, plots=False, extend=True)
    assert ext.metrics.replicate.nunique() == 8
