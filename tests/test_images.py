"""Image families, metrics, corpora and grids (tiny epochs: each test takes seconds)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modelcollapse.cli import main
from modelcollapse.data.images import load_images, split_by_hash
from modelcollapse.errors import UserError
from modelcollapse.metrics.images import class_shares, entropy_nats, frechet_distance, prdc

from helpers import run_one

TINY = {"vae": {"epochs": 2, "hidden": 32}, "diffusion": {"epochs": 2, "steps": 10, "hidden": 32},
        "pca_gmm": {"pca_components": 4, "components": 3}, "image_kde": {}}


# -- known answers ------------------------------------------------------------------------
def test_fid_of_a_set_against_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(300, 16)) @ np.random.default_rng(1).normal(size=(16, 16))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    # and between two Gaussians with identity covariance it is the squared mean gap (+ noise)
    a = np.random.default_rng(2).normal(size=(20000, 2))
    b = np.random.default_rng(3).normal(size=(20000, 2)) + [3.0, 0.0]
    assert frechet_distance(a, b) == pytest.approx(9.0, abs=0.15)


def test_precision_recall_real_vs_real():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 8))
    same = prdc(x, x, 5)
    # each real ball holds its centre and its k neighbours: density (k + 1) / k
    assert same == {"precision": 1.0, "recall": 1.0, "density": 6 / 5, "coverage": 1.0}
    # two samples of one distribution: near 1 (the k-NN balls of 2,000 points in 2-D)
    other = prdc(rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2)), 5)
    assert other["precision"] > 0.95 and other["recall"] > 0.95 and other["coverage"] > 0.95


def test_prdc_matches_the_prdc_package():
    prdc_pkg = pytest.importorskip("prdc")
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(300, 6)), rng.normal(0.3, 1.2, size=(250, 6))
    ours = prdc(real, fake, 5)
    theirs = prdc_pkg.compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    for key in ours:
        assert ours[key] == pytest.approx(float(theirs[key]), abs=1e-12)


def test_class_entropy_of_one_class_is_zero():
    assert entropy_nats(class_shares(np.full(50, 3), 10)) == 0.0
    assert entropy_nats(class_shares(np.arange(100) % 4, 10)) == pytest.approx(np.log(4))


def test_digits_corpus_and_stable_split():
    d = load_images()
    assert d.shape == (8, 8) and d.train.shape[1] == 64 and len(d.train) + len(d.test) == 1797
    assert 0.15 < len(d.test) / 1797 < 0.25 and d.classes == [str(c) for c in range(10)]
    assert d.train.min() >= 0 and d.train.max() <= 1
    # the split of an image depends on its pixels only, not on the order of the corpus
    x = np.concatenate([d.train[:50], d.test[:50]])
    assert np.array_equal(split_by_hash(x, 0.2, 0)[::-1], split_by_hash(x[::-1], 0.2, 0))


def test_real_vs_real_reference_values():
    """The truth's values are the real-vs-real lines: FID small, precision and recall high,
    memorization at its quantile, class entropy near log(10)."""
    from modelcollapse.api import make_study
    from modelcollapse.report.truth import truth_value
    cell = make_study(family="pca_gmm", generations=1, replicates=1).cells[0]
    ref = {m: truth_value(cell, m) for m in ("fid", "precision", "recall", "memorization",
                                               "class_entropy", "pixel_variance", "train_loss")}
    assert 0 < ref["fid"] < 1.0 and ref["precision"] > 0.8 and ref["recall"] > 0.8
    assert ref["memorization"] == pytest.approx(0.05, abs=0.01)
    assert ref["class_entropy"] == pytest.approx(np.log(10), abs=0.05)
    assert ref["train_loss"] is None   # info metrics get no reference line


# -- families -------------------------------------------------------------------------------
@pytest.mark.parametrize("family", list(TINY))
def test_family_runs_and_is_chunk_invariant(family):
    kw = dict(family=family, policy="mix", n_samples=120, generations=2, replicates=3,
              params={**TINY[family], "n_eval": 40, "real_fraction": 0.25})
    a = run_one(**{**kw, "params": {**kw["params"], "chunk_size": 1}})
    b = run_one(**{**kw, "params": {**kw["params"], "chunk_size": 3}})
    pd.testing.assert_frame_equal(a, b)   # identical, not close: per-replicate streams
    assert np.isfinite(a.value).all()
    share = a[a.metric == "real_share"].groupby("generation").value.mean()
    assert share[0] == 1.0 and share[1] == pytest.approx(0.25)
    assert {"fid", "precision", "recall", "class_entropy", "memorization"} <= set(a.metric)


@pytest.mark.parametrize("family", ["vae", "diffusion"])
def test_chunk_invariance_with_odd_image_sizes(family, tmp_path):
    """5x5 images (25 pixels), 3 latent dimensions, 50 images with batches of 32: a
    replicate's slices are not aligned by accident; the families align them (batched.py)."""
    from PIL import Image
    rng = np.random.default_rng(3)
    for c in "ab":
        (tmp_path / c).mkdir()
        for i in range(36):
            Image.fromarray(rng.integers(0, 255, (9, 9), dtype=np.uint8), "L").save(tmp_path / c / f"{i}.png")
    params = {"corpus": str(tmp_path), "image_size": 5, "epochs": 3, "hidden": 16,
              "batch_size": 32, "n_eval": 20, **({"latent": 3} if family == "vae" else {"steps": 7})}
    runs = [run_one(family=family, n_samples=50, generations=2, replicates=3,
                    params={**params, "chunk_size": k}) for k in (1, 2, 3)]
    for other in runs[1:]:
        pd.testing.assert_frame_equal(runs[0], other)


def test_vae_learns_and_temperature_narrows_it():
    """A VAE with real epochs beats a barely trained one; MAD's sampling bias (temperature
    0.5) raises precision-like quality signals and lowers pixel diversity."""
    base = dict(family="vae", policy="replace", n_samples=400, generations=1, replicates=1)
    short = run_one(**base, params={"epochs": 1, "n_eval": 150})
    long = run_one(**base, params={"epochs": 10, "n_eval": 150})
    cold = run_one(**base, params={"epochs": 10, "n_eval": 150, "temperature": 0.5})

    def val(df, m):
        return float(df[df.metric == m].value.iloc[0])
    assert val(long, "train_loss") < val(short, "train_loss")
    assert val(long, "fid") < val(short, "fid")
    assert val(cold, "pixel_variance") < val(long, "pixel_variance")


# -- a user's image folder, end to end ------------------------------------------------------
def _write_folder(root, sizes=((8, 8),), classes=("a", "b"), per_class=12):
    from PIL import Image
    rng = np.random.default_rng(0)
    for ci, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            w, h = sizes[i % len(sizes)]
            base = np.zeros((h, w))
            base[:, : w // 2] = 200 if ci == 0 else 30   # two visibly different classes
            img = np.clip(base + rng.normal(0, 20, (h, w)), 0, 255).astype(np.uint8)
            ext = "png" if i % 3 else "jpg"
            Image.fromarray(img, "L").convert("RGB").save(root / name / f"{i}.{ext}")


def test_user_image_folder_end_to_end(tmp_path, capsys):
    root = tmp_path / "imgs"
    _write_folder(root, sizes=((8, 8), (12, 10)))
    out = tmp_path / "run"
    code = main(["run", "--family", "vae", "--corpus", str(root), "--generations", "2",
                 "--replicates", "1", "--set", "image_size=8", "--set", "epochs=2",
                 "--set", "hidden=16", "--set", "test_share=0.3", "--no-plots", "--quiet",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "different sizes" in err and "resized to 8x8" in err   # mixed sizes: said so
    df = pd.read_parquet(out / "metrics.parquet")
    assert {"fid", "class_entropy", "precision"} <= set(df.metric) and np.isfinite(df.value).all()
    cell = next((out / "cells").iterdir())
    assert (cell / "grids" / "gen-000.png").is_file() and (cell / "grids" / "gen-001.png").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    record = next(iter(manifest["data"].values()))
    assert record["classes"] == ["a", "b"] and record["notes"]
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert "Image samples" in html and html.count("data:image/png;base64") >= 2


def test_unlabeled_folder_uses_autoencoder_features(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(1)
    for i in range(30):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8), "L").save(tmp_path / f"{i}.png")
    df = run_one(family="pca_gmm", n_samples=15, generations=1, replicates=1,
                 params={"corpus": str(tmp_path), "image_size": 8, "test_share": 0.3,
                         "pca_components": 3, "components": 2})
    assert "fid" in set(df.metric) and "class_entropy" not in set(df.metric)


# -- bad input: one sentence, exit 2 --------------------------------------------------------
def _cli_error(capsys, corpus) -> str:
    code = main(["run", "--family", "pca_gmm", "--corpus", str(corpus), "--generations", "1",
                 "--replicates", "1", "--quiet", "--no-plots"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_bad_image_folders(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no images" in _cli_error(capsys, empty)
    assert "no such folder" in _cli_error(capsys, tmp_path / "missing")

    text = tmp_path / "text"
    _write_folder(text)
    (text / "a" / "notes.txt").write_text("not an image")
    assert "notes.txt is not an image" in _cli_error(capsys, text)

    corrupt = tmp_path / "corrupt"
    _write_folder(corrupt)
    (corrupt / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    assert "broken.png is not a readable PNG or JPEG" in _cli_error(capsys, corrupt)

    one = tmp_path / "one"
    _write_folder(one, classes=("only",))
    assert "single class folder" in _cli_error(capsys, one)


def test_bad_image_params():
    with pytest.raises(UserError, match="image_size"):
        load_images("digits", 16)
    with pytest.raises(UserError, match="multiple of 32"):
        run_one(family="vae", generations=1, replicates=1, params={"batch_size": 50})
    with pytest.raises(UserError, match="n_samples = 5000 exceeds"):
        run_one(family="pca_gmm", n_samples=5000, generations=1, replicates=1)


def test_hf_image_dataset_saved_to_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    from PIL import Image
    rng = np.random.default_rng(2)
    images = [Image.fromarray(rng.integers(0, 255, (10, 10), dtype=np.uint8), "L") for _ in range(40)]
    features = datasets.Features({"image": datasets.Image(),
                                  "label": datasets.ClassLabel(names=["x", "y"])})
    ds = datasets.Dataset.from_dict({"image": images, "label": [i % 2 for i in range(40)]},
                                    features=features)
    ds.save_to_disk(str(tmp_path / "ds"))
    d = load_images(f"hf:{tmp_path / 'ds'}", 8, 0.25, 0)
    assert d.shape == (8, 8) and d.classes == ["x", "y"] and len(d.train) + len(d.test) == 40


def test_hf_offline_is_one_sentence(monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="cannot load the image dataset hf:someone/no-such-images"):
        load_images("hf:someone/no-such-images", 0, 0.2, 0)
