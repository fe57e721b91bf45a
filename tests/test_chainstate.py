"""The chain state is data only (npz without pickle + JSON), resumes bit for bit, and a state
file that fails any check stops the run with one sentence naming it (never ignored, never
executed)."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from modelcollapse.errors import UserError
from modelcollapse.loop import build, simulate
from modelcollapse.families.gaussian import Gaussian, GaussianModel
from modelcollapse.api import make_study
from modelcollapse.randomness import SeedTree
from modelcollapse.runs.store import ChainStateFile


class PersistentGaussian(Gaussian):
    """The Gaussian family with the save_state / load_state pair, so the loop's chain-state
    path runs in milliseconds."""

    def save_state(self, model: GaussianModel) -> dict:
        return {"mean": model.mean_, "cov": model.cov_}

    def load_state(self, state: dict) -> GaussianModel:
        return GaussianModel(state["mean"], state["cov"])


def _setup(generations=5, replicates=3):
    study = make_study(family="gaussian", policy="accumulate", generations=generations,
                       replicates=replicates, n_samples=20, seed=3, params={"dim": 2})
    cell = study.cells[0]
    family, policy, sampling, metrics = build(cell)
    family = PersistentGaussian(family.params, family.n_samples)
    seeds = SeedTree(cell.seed, cell.key)
    return cell, family, policy, sampling, metrics, seeds


def _run(state, generations=5):
    cell, family, policy, sampling, metrics, seeds = _setup(generations)
    return simulate(family, policy, sampling, metrics, cell.n_samples, generations, seeds,
                    np.arange(cell.replicates), False, state=state)


def test_a_resumed_chain_equals_an_uninterrupted_one(tmp_path):
    whole = _run(None)
    state = ChainStateFile(tmp_path / "0-3.state.npz")
    first = _run(state)                      # leaves the state after generation 3
    np.testing.assert_array_equal(first, whole)
    with zipfile.ZipFile(state.path) as z:   # data only: .npy arrays and JSON
        names = z.namelist()
    assert "meta.json" in names and all(n == "meta.json" or n.endswith(".npy") for n in names)
    assert json.loads(zipfile.ZipFile(state.path).read("meta.json"))["generation"] == 3
    np.testing.assert_array_equal(_run(state), whole)   # resumes at generation 4


def _refused(state: ChainStateFile) -> str:
    with pytest.raises(UserError) as e:
        _run(state)
    msg = str(e.value)
    assert str(state.path) in msg and "\n" not in msg
    return msg


def test_a_pickle_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    state = ChainStateFile(tmp_path / "0-3.state.npz")
    state.path.write_bytes(pickle.dumps({"x": Payload()}))
    _refused(state)
    assert not marker.exists()


def test_a_pickled_object_array_inside_the_npz_is_refused(tmp_path):
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    state = ChainStateFile(tmp_path / "0-3.state.npz")
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array([Payload()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(state.path, "w") as z:
        z.writestr("meta.json", "{}")
        z.writestr("a0.npy", buf.getvalue())
    assert "not a numeric array" in _refused(state)
    assert not marker.exists()


def _saved(tmp_path) -> tuple[ChainStateFile, dict, dict]:
    state = ChainStateFile(tmp_path / "0-3.state.npz")
    _run(state)
    return state, *state.read()


def _rewrite(state: ChainStateFile, arrays: dict, meta) -> None:
    state.save(arrays, meta)


@pytest.mark.parametrize("edit, needle", [
    (lambda a, m: m.update(seed=4), "another cell"),
    (lambda a, m: m.update(generation=9), "generation"),
    (lambda a, m: m.update(generation=2**70), "generation"),
    (lambda a, m: m.update(version=99), "version"),
    (lambda a, m: m["batches"]["real"].update(kind="pickle"), "kind"),
    (lambda a, m: m["batches"]["real"].update(values={"$array": "zz"}), "refer"),
    (lambda a, m: m.update(model="x"), "model state"),
    (lambda a, m: next(iter(m["streams"].values()))["generators"].update(
        {"buffered": [{"bit_generator": "MT19937", "state": {}}] * 3}), "PCG64"),
    (lambda a, m: next(iter(m["streams"].values()))["generators"].update(
        {"buffered": [{"bit_generator": "PCG64", "state": {"state": -1, "inc": 1},
                       "has_uint32": 0, "uinteger": 0}] * 3}), "state"),
    (lambda a, m: m["streams"].update(evil={}), "unknown stage"),
    (lambda a, m: a.update({m["out"]["$array"]: np.zeros((1, 1, 1))}), "shape"),
    (lambda a, m: a.update({m["replicates"]["$array"]: np.arange(5, 8)}), "other replicates"),
])
def test_a_state_that_does_not_fit_is_refused_in_one_sentence(tmp_path, edit, needle):
    state, arrays, meta = _saved(tmp_path)
    edit(arrays, meta)
    _rewrite(state, arrays, meta)
    assert needle in _refused(state)


@pytest.mark.parametrize("meta_text", [
    "[" * 200_000 + "]" * 200_000,        # deep nesting
    '{"seed": ' + "9" * 5000 + "}",       # a huge integer
    '{"a": "\\ud800"}',                   # a lone surrogate: valid JSON, then refused by fields
    "\xff\xfe not utf-8",
])
def test_hostile_json_is_refused(tmp_path, meta_text):
    state = ChainStateFile(tmp_path / "0-3.state.npz")
    with zipfile.ZipFile(state.path, "w") as z:
        z.writestr("meta.json", meta_text.encode("utf-8", "surrogatepass")
                   if "\\" not in meta_text else meta_text)
    _refused(state)


def test_a_lying_npy_header_and_a_symlink_are_refused(tmp_path):
    state = ChainStateFile(tmp_path / "0-3.state.npz")
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.zeros(4))
    header = buf.getvalue().replace(b"'shape': (4,)", b"'shape': (400000000000,)")
    with zipfile.ZipFile(state.path, "w") as z:
        z.writestr("meta.json", "{}")
        z.writestr("a0.npy", header)
    assert "wrong size" in _refused(state)
    link = ChainStateFile(tmp_path / "link.state.npz")
    link.path.symlink_to("/dev/zero")
    assert "not a regular file" in _refused(link)


def test_transformer_model_state_refuses_folders_outside_the_run(tmp_path):
    pytest.importorskip("torch")
    from modelcollapse.chainstate import InvalidState
    from modelcollapse.families.transformer import Transformer, TransformerParams
    family = Transformer(TransformerParams(device="cpu"), 0)
    family.folder = tmp_path / "models"
    ok = {"replicates": np.array([0]), "lms": [{"folder": "replicate-0/gen-001",
                                                "stats": {"validation_loss": 1.0}, "generation": 1}]}
    assert family.load_state(ok).lms[0].folder == tmp_path / "models" / "replicate-0" / "gen-001"
    for folder in ("../../etc", "/etc/passwd", "replicate-0/gen-001/../../..", "replicate-1/gen-001"):
        bad = {**ok, "lms": [{**ok["lms"][0], "folder": folder}]}
        with pytest.raises(InvalidState):
            family.load_state(bad)
    with pytest.raises(InvalidState):
        family.load_state({**ok, "lms": [{**ok["lms"][0], "stats": {"x": "code"}}]})
