"""The validation script's summary: coverage, MAE and human-only rates from its cells."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

spec = importlib.util.spec_from_file_location(
    "validate_audit_llm", Path(__file__).parents[1] / "benchmarks" / "validate_audit_llm.py")
validate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(validate)


def _cell(share, est, lo, hi, verdict="ok"):
    return {"seed": 0, "share": share, "ai_share": est, "ai_ci": [lo, hi],
            "ai_covered": lo <= share <= hi, "detector_share": est, "detector_ci": [lo, hi],
            "detector_covered": lo <= share <= hi, "verdict": verdict, "not_ok": []}


def test_summary_numbers():
    cells = [_cell(0.0, 0.02, 0.0, 0.08), _cell(0.0, 0.05, 0.01, 0.12, "watch"),
             _cell(0.5, 0.40, 0.30, 0.45), _cell(1.0, 0.95, 0.85, 1.0)]
    s = validate.summarize(cells)
    assert s["ai_share_coverage"] == pytest.approx(0.5)   # cells 2 and 3 miss
    assert s["ai_share_mae"] == pytest.approx(np.mean([0.02, 0.05, 0.10, 0.05]))
    assert s["human_only_ai_upper_le_0.10"] == 0.5 and s["human_only_verdict_ok"] == 0.5
    doc = {"summary": s, "detector_quality": validate.detector_quality(
        {"x": np.array([0.0, 1.0, 2.0, 3.0])}, {"x": np.array([2.5, 3.5, 4.0])},
        np.array([50, 50, 10, 50]), np.array([50, 10, 50]), 40)}
    assert doc["detector_quality"]["x"]["all"]["auroc"] == pytest.approx(11 / 12)
    assert "| 0.5 | 1 |" in validate.markdown(doc)


def test_combined_is_scored_out_of_fold_with_rewrites_beside_their_originals():
    rng = np.random.default_rng(0)
    x_h = rng.normal(size=(200, 9))
    ai_src = list(rng.permutation(200)[:120])
    x_a = rng.normal(size=(120, 9)) + np.r_[1.0, np.zeros(8)]
    h, a, models = validate.out_of_fold_combination(x_h, x_a, ai_src)
    folds = validate.paragraph_folds(200)
    assert len(models) == validate.FOLDS and np.isfinite(h).all() and np.isfinite(a).all()
    for k, model in enumerate(models):
        np.testing.assert_allclose(h[folds == k], model(x_h[folds == k]))
        mine = folds[ai_src] == k          # each rewrite scored by its original's fold model
        np.testing.assert_allclose(a[mine], model(x_a[mine]))
        # ... which was fitted without that fold: refitting without it gives the same model
        again = validate.Combination.fit(x_h[folds != k], x_a[folds[ai_src] != k])
        np.testing.assert_allclose(again.weights, model.weights)
    assert validate.auroc(h, a) > 0.65
