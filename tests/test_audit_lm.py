"""The audit with a (tiny, random) language model: an LLM-written AI reference, zero-shot
detector signals, the detector share, --scores output and the honesty caveats."""

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from modelcollapse.audit import audit, write_audit  # noqa: E402
from modelcollapse.audit.output import write_scores  # noqa: E402
from modelcollapse.audit.lmsignals import NO_LM  # noqa: E402
from modelcollapse.data import load_corpus, split_documents  # noqa: E402
from modelcollapse.errors import UserError  # noqa: E402
from tiny_lm import tiny_lm  # noqa: E402

N = 60
AI_DOCS = 48   # enough usable ones (>= 38: 30 in every fold's fit) for combined
FAST = dict(sample_tokens=1000, n_boot=20, lexical_replicates=10, target_fpr=0.05,
            dedup_docs=200, bleu_docs=20)


def _jsonl(path: Path, texts) -> str:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return str(path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("lm")
    texts = load_corpus("embedded").texts()
    split = split_documents(texts, 0.0, 0.3, 0)
    model, tok = tiny_lm(texts)
    split.train[:] = split.train[:400]
    folder = d / "tiny"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    ref = _jsonl(d / "ref.jsonl", split.train)
    human = _jsonl(d / "human.jsonl", split.test[:N])
    return d, str(folder), ref, human


@pytest.fixture(scope="module")
def lm_result(setup, tmp_path_factory):
    d, folder, ref, human = setup
    mp = pytest.MonkeyPatch()
    mp.setenv("MODELCOLLAPSE_CACHE", str(d / "cache"))
    from modelcollapse.audit import machine
    mp.setattr(machine, "MIN_GENERATED_DOCS", 10)   # a unit-test-sized AI reference
    try:
        yield audit(human, ref, ai_generator=folder, ai_reference_docs=AI_DOCS, **FAST)
    finally:
        mp.undo()


def test_lm_signals_and_calibration(lm_result):
    cand = lm_result.candidates[0]
    lm = lm_result.reference["language_model"]
    assert lm["scorer"].endswith("tiny") and lm["best_detector"] in lm["detectors"]
    # the combined criterion: fitted on the model half, calibrated on the held-out half
    assert {"fast_detectgpt", "log_likelihood", "log_rank", "combined"} <= set(lm["detectors"])
    comb = lm["combination"]
    assert len(comb["weights"]) == len(comb["features"]) == 8 and comb["human_docs_fitted"] >= 30
    for name, rec in lm["detectors"].items():
        assert 0 <= rec["achieved_fpr_ci"][0] <= rec["achieved_fpr"] <= rec["achieved_fpr_ci"][1]
        assert f"{name}_rate" in cand.signals
    made = lm_result.reference["ai_reference_made"]
    assert made["documents_kept"] >= 10 and sum(made["modes"].values()) == made["documents_kept"]
    assert "detector_share" in cand.signals and cand.ai_share.verdict in ("ok", "watch", "alert")
    assert not any(c["kind"] == "no_language_model" for c in cand.caveats)
    hist = cand.machine["histograms"][lm["best_detector"]]
    assert sum(hist["candidate"]) == N and len(cand.machine["most_machine_like"]) == 20
    doc = lm_result.to_json()
    json.dumps(doc, allow_nan=False)


def test_scores_file_one_row_per_document(lm_result, tmp_path):
    import pyarrow.parquet as pq
    path = write_scores(lm_result, tmp_path / "s.parquet")
    table = pq.read_table(path).to_pydict()
    assert table["index"] == list(range(N))
    for col in ("fast_detectgpt", "log_likelihood", "combined", "flagged", "occurrence_llr"):
        assert len(table[col]) == N
    rows = [json.loads(x) for x in
            write_scores(lm_result, tmp_path / "s.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(N))
    flagged = lm_result.candidates[0].signals[
        f"{lm_result.reference['language_model']['best_detector']}_rate"].extra["positives"]
    assert sum(r["flagged"] for r in rows) == flagged
    paths = write_audit(lm_result, tmp_path / "out", "html")
    html = paths[0].read_text()
    assert "most machine-like" in html.lower() and "<script" not in html


def test_generated_reference_is_cached(setup, lm_result, monkeypatch):
    d, folder, ref, human = setup
    monkeypatch.setenv("MODELCOLLAPSE_CACHE", str(d / "cache"))
    from modelcollapse.audit import machine
    monkeypatch.setattr(machine, "MIN_GENERATED_DOCS", 10)
    from modelcollapse.zeroshot import generate
    calls = []
    real = generate.rewrite
    monkeypatch.setattr(generate, "rewrite", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = audit(human, ref, ai_generator=folder, ai_reference_docs=AI_DOCS, **FAST)
    assert calls == []
    a, b = again.candidates[0].ai_share, lm_result.candidates[0].ai_share
    assert (a.estimate, a.ci_low, a.ci_high) == (b.estimate, b.ci_low, b.ci_high)


def test_no_combined_criterion_against_the_trigram_reference(setup, monkeypatch):
    """A scorer without a generator or an AI reference file: the AI reference is the trigram
    model's text, which no fit may take for LLM text (the fixed criteria stay)."""
    d, folder, ref, human = setup
    monkeypatch.setenv("MODELCOLLAPSE_CACHE", str(d / "cache"))
    result = audit(human, ref, scorer=folder, **FAST)
    lm = result.reference["language_model"]
    assert lm["combination"] is None and "combined" not in lm["detectors"]
    assert "fast_detectgpt" in lm["detectors"] and lm["best_detector"] != "combined"
    assert "combined_rate" not in result.candidates[0].signals


def test_without_lm_caveat_and_ai_share_not_judged(setup):
    d, folder, ref, human = setup
    res = audit(human, ref, **FAST)
    cand = res.candidates[0]
    assert any(c["message"] == NO_LM for c in cand.caveats)
    assert cand.ai_share.verdict == "not judged"


def test_bad_lm_input_one_sentence(setup, tmp_path):
    d, folder, ref, human = setup
    with pytest.raises(UserError):   # the loader names the file in one sentence
        audit(human, ref, ai_generator=str(tmp_path / "missing.gguf"), **FAST)
    with pytest.raises(UserError, match="both --observer and --performer"):
        audit(human, ref, observer=folder, **FAST)
    model, tok = tiny_lm(["other words only here"], chat=False)
    other = tmp_path / "other"
    model.save_pretrained(other)
    tok.save_pretrained(other)
    with pytest.raises(UserError, match="same tokenizer"):
        audit(human, ref, observer=folder, performer=str(other), **FAST)
    import torch
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            audit(human, ref, scorer=folder, device="cuda", **FAST)


def test_cli_end_to_end_with_scores(setup, lm_result, tmp_path, monkeypatch):
    from modelcollapse.audit import machine
    from modelcollapse.cli import main
    d, folder, ref, human = setup
    monkeypatch.setenv("MODELCOLLAPSE_CACHE", str(d / "cache"))   # generation cached above
    monkeypatch.setattr(machine, "MIN_GENERATED_DOCS", 10)
    scores = tmp_path / "s.jsonl"
    args = ["audit", human, "--reference", ref, "--ai-generator", folder,
            "--ai-reference-docs", str(AI_DOCS), "--scores", str(scores), "--out",
            str(tmp_path / "out"), "--quiet", "--sample-tokens", "1000", "--n-boot", "20",
            "--lexical-replicates", "10", "--target-fpr", "0.05", "--dedup-docs", "200",
            "--bleu-docs", "20"]
    assert main(args) == 0
    rows = [json.loads(x) for x in scores.read_text().splitlines()]
    assert len(rows) == N and (tmp_path / "out" / "audit.html").exists()
    assert main(["audit", human, "--reference", ref, "--scores", str(tmp_path / "s.csv")]) == 2
