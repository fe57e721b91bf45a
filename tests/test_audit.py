"""The audit (issue 7): known answers, the AI-share estimator, streaming, the report, the
command line's exit codes, and the calibration study.

One reference (three quarters of the embedded corpus, by hash) is prepared once per module
and shared by the audits below; the held-out quarter is the human candidate.
"""

import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

import chromium
from modelcollapse import textmetrics
from modelcollapse.audit import RULES, audit, write_audit
from modelcollapse.audit.calibration_study import run as run_calibration
from modelcollapse.audit.cli import EXIT_ALERT
from modelcollapse.cli import main
from modelcollapse.audit.core import audit_prepared, audit_settings
from modelcollapse.audit.occurrence import OccurrenceModel, mixture_mle
from modelcollapse.audit.reference import prepare_reference
from modelcollapse.audit.result import AuditResult
from modelcollapse.audit.stream import stream_candidate
from modelcollapse.audit.verdicts import NOT_JUDGED, VERDICTS, Rule, wilson
from modelcollapse.curation import Watermark, WatermarkDetector
from modelcollapse.data import load_corpus, split_documents
from modelcollapse.errors import UserError
from modelcollapse.lm import NGramLM, decode
from modelcollapse.families.ngram import file_stamp, prepare

ROOT = Path(__file__).resolve().parents[1]
EVIL = "<script>alert(1)</script>"
WATERMARK = Watermark(gamma=0.25, delta=4.0, context_width=1, key=99)
LEXICAL = [f"distinct_{n}_delta" for n in (1, 2, 3, 4)] + [
    "entropy_delta", "compression_ratio_delta", "self_bleu_delta"]


def write_jsonl(path: Path, texts) -> str:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), "utf-8")
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Reference, human, one-document-repeated, other-language and watermarked candidates."""
    d = tmp_path_factory.mktemp("audit-data")
    split = split_documents(load_corpus().texts(), 0.0, 0.25, 7)
    ref = write_jsonl(d / "reference.jsonl", split.train)
    # the human candidate opens with hostile text (it shows among the example documents)
    human = write_jsonl(d / "human<i>.jsonl",
                        [f"Note {EVIL} and <img src=x onerror=alert(2)> here."] + split.test)
    repeated = write_jsonl(d / "repeated.jsonl", [split.test[0]] * 300)
    rng = np.random.default_rng(0)
    letters = np.array(list("zqxjkvwy"))
    foreign = write_jsonl(d / "foreign.jsonl", [
        " ".join("".join(rng.choice(letters, 6)) for _ in range(30)) + "." for _ in range(150)])
    # watermarked text from the loop's n-gram family vocabulary of the reference corpus
    data = prepare(ref, "text", "auto", "word", False, 0, 1, 0.1, 0.1, 0, file_stamp(ref))
    lm = NGramLM(3).fit(data.train, len(data.vocab))
    docs = decode.generate(lm._fitted(), 150, 40, rng, min_len=40, watermark=WATERMARK)
    marked = write_jsonl(d / "watermarked.jsonl", [data.detokenize(x) for x in docs])
    return {"dir": d, "ref": ref, "human": human, "repeated": repeated, "foreign": foreign,
            "marked": marked, "vocab": data.vocab}


@pytest.fixture(scope="module")
def reference(files):
    return prepare_reference(files["ref"], seed=0)


@pytest.fixture(scope="module")
def result(files, reference):
    """One audit of five candidates (a trend) with the watermark scored."""
    settings = audit_settings(sample_tokens=2000, n_boot=100, lexical_replicates=20,
                              watermark=WATERMARK)
    specs = [files[k] for k in ("ref", "human", "repeated", "foreign", "marked")]
    return audit_prepared(specs, reference, settings, WatermarkDetector(WATERMARK, 4.0),
                          files["vocab"])


def by_name(result, files, key):
    return next(c for c in result.candidates if c.name == files[key])


# ----------------------------------------------------------------------- known answers


def test_identical_candidate_is_ok(result, files):
    same = by_name(result, files, "ref")
    for name in LEXICAL:
        s = same.signals[name]
        assert s.ci_low <= 0 <= s.ci_high, (name, s)
    assert same.verdict == "ok", {k: s.verdict for k, s in same.all_signals().items()}
    # the model half's documents are counted, not scored; the held-out half scores as itself
    assert any(c["kind"] == "reference_overlap" for c in same.caveats)
    assert same.ai_share.ci_low == 0 and same.ai_share.estimate < 0.1
    assert same.signals["perplexity_shift"].estimate < 0.02


def test_human_candidate_is_ok(result, files):
    human = by_name(result, files, "human")
    assert human.verdict == "ok", {k: s.verdict for k, s in human.all_signals().items()}
    assert human.ai_share.ci_low == 0
    assert not human.domain["detected"]


def test_one_repeated_document_alerts(result, files):
    rep = by_name(result, files, "repeated")
    for name in ("distinct_2_delta", "entropy_delta", "compression_ratio_delta",
                 "self_bleu_delta", "tail_coverage", "near_duplicate_rate", "perplexity_shift"):
        assert rep.signals[name].verdict == "alert", (name, rep.signals[name])
    assert rep.signals["near_duplicate_rate"].estimate > 0.95
    assert rep.signals["near_duplicate_rate"].baseline < 0.05
    assert rep.verdict == "alert" and result.verdict == "alert"


def test_other_language_is_a_domain_mismatch(result, files):
    foreign = by_name(result, files, "foreign")
    assert foreign.domain["detected"] and foreign.domain["oov_rate"] > 0.5
    (caveat,) = [c for c in foreign.caveats if c["kind"] == "domain_mismatch"]
    assert "outside the reference vocabulary" in caveat["message"]
    assert caveat["oov_rate"] == foreign.domain["oov_rate"]


def test_watermark_hit_rate(result, files):
    marked = by_name(result, files, "marked").signals["watermark_hit_rate"]
    human = by_name(result, files, "human").signals["watermark_hit_rate"]
    assert marked.estimate > 0.8 and marked.verdict == "alert"
    assert human.estimate < 0.01 and human.verdict == "ok"
    assert human.n == 334
    assert human.baseline == pytest.approx(WatermarkDetector(WATERMARK).expected_fpr)


def test_detector_rate_is_calibrated_on_held_out_text(result, files, reference):
    det = by_name(result, files, "human").signals["detector_positive_rate"]
    assert det.baseline == 0.01 and det.extra["calibration_docs"] == len(reference.heldout_docs)
    assert det.ci_low <= 0.01 <= det.ci_high and det.verdict == "ok"


# ----------------------------------------------------------------------- the AI share


def test_mixture_mle_recovers_alpha_on_bin_counts():
    h = np.array([0.30, 0.25, 0.20, 0.15, 0.10])
    a = np.array([0.05, 0.10, 0.20, 0.25, 0.40])
    rng = np.random.default_rng(1)
    n = 20_000
    for alpha in (0.0, 0.2, 0.5, 0.9, 1.0):
        c = (1 - alpha) * h + alpha * a
        m = rng.multinomial(n, c, size=200)
        # reference counts so large that smoothing and their noise are negligible
        est = mixture_mle(m, h * 1e9, a * 1e9)
        se = 1 / math.sqrt(n * np.sum((a - h) ** 2 / c))   # Fisher information of alpha
        inner = 0 < alpha < 1
        assert abs(est.mean() - alpha) < (4 * se / math.sqrt(200) if inner else 3 * se)
        assert (est >= 0).all() and (est <= 1).all()
        if inner:
            assert est.std() == pytest.approx(se, rel=0.2)


def test_occurrence_model_on_synthetic_word_occurrences():
    """Words occur independently (Liang et al.'s model holds): alpha is recovered and its
    interval covers it."""
    rng = np.random.default_rng(2)
    V = 400
    p = rng.beta(0.5, 8, V)
    q = np.clip(p * rng.lognormal(0, 0.8, V), 0, 0.9)
    p[:3] = q[:3] = 0   # the special ids never occur

    def docs(prob, n):
        return [np.flatnonzero(rng.random(V) < prob).astype(np.int32) for _ in range(n)]

    model = OccurrenceModel(docs(p, 600), docs(q, 600), V, seed=0)
    for alpha in (0.0, 0.3, 0.7):
        k = int(alpha * 400)
        cand = docs(p, 400 - k) + docs(q, k)
        est, [(lo, hi)] = model.estimate(model.bin_counts(cand), cand, rng, 100)
        assert lo <= alpha <= hi and abs(est - alpha) < 0.15, (alpha, est, lo, hi)


def test_calibration_study(tmp_path):
    """Known shares are covered, a human-only candidate reads ~0, collapse raises the risk.

    95% intervals must cover the truth at 5 of the 6 shares, so one unlucky share does not
    fail the test (over seeds 0-29 of this study they covered it in 180 of 180 cases: the
    bootstrap refits the occurrence model, which makes it conservative)."""
    study = tomllib.loads((ROOT / "studies" / "audit_calibration.toml").read_text())
    study["audit"].update(sample_tokens=2000, lexical_replicates=10, n_boot=100)
    import tomli_w
    path = tmp_path / "calibration.toml"
    path.write_bytes(tomli_w.dumps(study).encode())
    table = run_calibration(path, tmp_path / "out")
    mixtures = {row["alpha"]: row for row in table["mixtures"]}
    assert sorted(mixtures) == [0.0, 0.1, 0.25, 0.5, 0.75, 1.0]
    assert sum(row["covered"] for row in mixtures.values()) >= 5, mixtures
    human_only = mixtures[0.0]
    assert human_only["ci_low"] == 0 and human_only["estimate"] < 0.15
    assert human_only["verdict"] == "ok" and mixtures[1.0]["verdict"] == "alert"
    gens = table["generations"]
    assert [g["generation"] for g in gens] == [0, 2, 5]
    severity = [g["severity"] for g in gens]
    assert severity == sorted(severity) and severity[-1] > severity[0]
    tail = [g["tail_coverage"] for g in gens]
    assert tail[0] > tail[1] > tail[2]
    shift = [g["perplexity_shift"] for g in gens]
    assert shift == sorted(shift)
    assert (tmp_path / "out" / "audit.html").is_file()
    with pytest.raises(UserError, match="already holds a calibration"):
        run_calibration(path, tmp_path / "out")


# ----------------------------------------------------------------------- streaming


def test_streaming_counts_do_not_depend_on_chunks_or_reservoir(files, reference):
    """A candidate larger than the reservoir, read in small chunks, gives the same sums as
    read whole; the reservoir itself does not depend on the chunking."""
    runs = [stream_candidate(files["human"], reference, text_field=None, chunk_docs=chunk,
                             max_sample_docs=cap, rng=np.random.default_rng(5))
            for chunk, cap in ((7, 50), (100_000, 100_000), (13, 50))]
    (small, res_small), (whole, res_whole), (other, res_other) = runs
    assert whole.n_docs == 334 and len(res_whole.items) == 334 and len(res_small.items) == 50
    for field in ("n_docs", "n_tokens", "n_oov", "n_copies", "n_scored", "detector_positives",
                  "watermark_hits"):
        assert getattr(small, field) == getattr(whole, field), field
    for field in ("buckets", "logppl_hist", "occurrence_bins"):
        assert np.array_equal(getattr(small, field), getattr(whole, field)), field
    assert res_small.items == res_other.items          # chunk sizes 7 and 13
    alpha = [mixture_mle(t.occurrence_bins, reference.occurrence.human_bins_,
                         reference.occurrence.ai_bins_) for t in (small, whole)]
    assert alpha[0] == alpha[1]


# ----------------------------------------------------------------------- outputs


def test_json_schema(result, files, tmp_path):
    (path,) = write_audit(result, tmp_path, "json")
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == 1 and doc["verdict"] == "alert"
    assert [c["name"] for c in doc["candidates"]] == [
        files[k] for k in ("ref", "human", "repeated", "foreign", "marked")]
    for key in ("spec", "n_docs", "n_tokens", "provenance", "heldout_docs", "ai_reference"):
        assert key in doc["reference"], key
    assert set(doc["thresholds"]) == set(RULES)
    assert doc["settings"]["n_boot"] == 100 and doc["settings"]["watermark"]["key"] == 99
    for cand in doc["candidates"]:
        entries = {**cand["signals"], "ai_share": cand["ai_share"]}
        for name, s in entries.items():
            for key in ("estimate", "ci_low", "ci_high", "n", "verdict", "definition",
                        "ci_method", "baseline"):
                assert key in s, (name, key)
            assert s["verdict"] in VERDICTS + (NOT_JUDGED,) and s["ci_low"] <= s["ci_high"]
        assert isinstance(cand["caveats"], list) and "oov_rate" in cand["domain"]
    assert "signals" not in doc   # several candidates: no top-level copy
    single = AuditResult(result.reference, [by_name(result, files, "human")],
                         result.settings).to_json()
    assert single["ai_share"]["estimate"] == single["candidates"][0]["ai_share"]["estimate"]
    assert single["signals"]["distinct_2_delta"]["verdict"] == "ok"
    with pytest.raises(UserError, match="already holds an audit"):
        write_audit(result, tmp_path, "json")
    with pytest.raises(UserError, match="unknown format"):
        write_audit(result, tmp_path, "pdf")


@pytest.fixture(scope="module")
def page(result, tmp_path_factory):
    (path,) = write_audit(result, tmp_path_factory.mktemp("page"), "html")
    return path, path.read_text("utf-8")


def test_html_escapes_the_corpus(page):
    _, html = page
    assert "<script" not in html and "<img" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "human&lt;i&gt;.jsonl" in html
    assert "default-src 'none'" in html   # and nothing to fetch (SVG namespaces are names)
    assert not any(f'{attr}="http' in html for attr in ("src", "href"))
    assert html.count("<table class=audit>") >= 6 and "<svg" in html


def test_html_renders_in_chromium(page, chromium_bin, tmp_path):
    import matplotlib.image as mpimg

    path, _ = page
    res = chromium.run(chromium_bin, ["--dump-dom", path.resolve().as_uri()], tmp_path)
    dom = res.stdout
    assert "</html>" in dom, res.stderr[-2000:]
    assert "<script" not in dom and "&lt;script&gt;alert(1)" in dom
    assert dom.count('class="v v-alert"') >= 1
    png = tmp_path / "audit.png"
    chromium.run(chromium_bin, [f"--screenshot={png}", "--window-size=1200,1600",
                                path.resolve().as_uri()], tmp_path)
    rgb = mpimg.imread(png)[..., :3]
    assert rgb.shape[:2] == (1600, 1200) and rgb.std() > 0.05


# ----------------------------------------------------------------------- semantic coverage


def fake_embed(texts, **_):
    """Hashed bag of words, 64 dimensions: enough geometry for coverage to mean something."""
    out = np.zeros((len(texts), 64))
    for i, t in enumerate(texts):
        for w in t.lower().split():
            out[i, hash(w) % 64] += 1
    return out + 1e-3


def test_semantic_coverage_with_the_embed_extra(files, reference, monkeypatch):
    monkeypatch.setattr(textmetrics, "embed", fake_embed)
    settings = audit_settings(sample_tokens=1000, n_boot=20, lexical_replicates=10,
                              embed=True, embed_docs=60)
    (cand,) = audit_prepared([files["human"]], reference, settings).candidates
    s = cand.signals["semantic_coverage"]
    assert 0 < s.estimate <= 1 and s.n == 60 and s.verdict == "ok"
    assert {"precision", "recall", "vendi_candidate", "vendi_reference"} <= set(s.extra)


def test_semantic_coverage_absent_without_the_extra(files, reference, monkeypatch):
    def missing(texts, **_):
        raise UserError("embed needs the optional packages sentence-transformers")
    monkeypatch.setattr(textmetrics, "embed", missing)
    settings = audit_settings(sample_tokens=1000, n_boot=20, lexical_replicates=10, embed=True)
    (cand,) = audit_prepared([files["human"]], reference, settings).candidates
    assert "semantic_coverage" not in cand.signals
    assert any("semantic_coverage is absent" in c["message"] for c in cand.caveats)


# ----------------------------------------------------------------------- command line


def one_sentence_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("modelcollapse: error: ") and "\n" not in err, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("content, expect", [
    (b"", "is empty"),
    (b'{"text": "caf\xe9"}\n', "UTF-8"),
    (b"\x00\x01binary\x00" * 20, "binary"),
])
def test_unusable_candidate_exits_2(files, tmp_path, capsys, content, expect):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(content)
    code = main(["audit", str(bad), "--reference", files["ref"], "--out", str(tmp_path / "o")])
    assert code == 2
    assert expect in one_sentence_error(capsys)


def test_small_reference_exits_2(files, tmp_path, capsys):
    small = write_jsonl(tmp_path / "small.jsonl", load_corpus().texts()[:50])
    code = main(["audit", files["human"], "--reference", small, "--out", str(tmp_path / "o")])
    assert code == 2
    err = one_sentence_error(capsys)
    assert "50 documents" in err and "at least 200" in err


def test_missing_reference_and_conflicting_calibrate_exit_2(files, tmp_path, capsys):
    assert main(["audit", files["human"]]) == 2
    assert "--reference" in one_sentence_error(capsys)
    assert main(["audit", files["human"], "--calibrate", "x.toml"]) == 2
    one_sentence_error(capsys)


def test_fail_on_alert_exit_code(files, tmp_path, capsys):
    out = tmp_path / "gate"
    args = ["audit", files["repeated"], "--reference", files["ref"], "--out", str(out),
            "--sample-tokens", "1000", "--n-boot", "20", "--format", "json"]
    assert main(args + ["--fail-on-alert"]) == EXIT_ALERT
    assert "at alert" in capsys.readouterr().err
    doc = json.loads((out / "audit.json").read_text())
    assert doc["verdict"] == "alert" and doc["signals"]["near_duplicate_rate"]["verdict"] == "alert"
    assert main(args) == 2   # the audit is there: refused, never overwritten silently
    assert "already holds an audit" in one_sentence_error(capsys)
    assert main(args + ["--overwrite", "--quiet"]) == 0


def test_audit_function_fails_fast_on_bad_options(files):
    with pytest.raises(UserError, match="target_fpr"):
        audit(files["human"], files["ref"], target_fpr=1.5)
    with pytest.raises(UserError, match="sample_tokens"):
        audit(files["human"], files["ref"], sample_tokens=10)
    with pytest.raises(UserError, match="at least one candidate"):
        audit([], files["ref"])


# ----------------------------------------------------------------------- verdict rules


def test_verdict_uses_the_conservative_end():
    higher = Rule("higher", 0.1, 0.3, "absolute", "0")
    assert higher.verdict(0.31, 0.5, 0.0, 0.0) == "alert"
    assert higher.verdict(0.29, 0.9, 0.0, 0.0) == "watch"   # the low end decides
    assert higher.verdict(0.05, 0.9, 0.0, 0.0) == "ok"
    lower = Rule("lower", 0.1, 0.25, "relative", "ref")
    assert lower.verdict(-0.5, -0.3, 0.0, 1.0) == "alert"   # -0.3 is 30% of 1.0 below
    assert lower.verdict(-0.5, -0.15, 0.0, 1.0) == "watch"
    assert lower.verdict(-0.5, 0.01, 0.0, 1.0) == "ok"
    assert lower.verdict(float("nan"), float("nan"), 0.0, 1.0) == "ok"
    lo, hi = wilson(0, 100)
    assert lo == 0 and 0.03 < hi < 0.04
    assert all(r.watch < r.alert for r in RULES.values())


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_candidates_sharded_over_executors_give_the_same_audit(result, files, reference,
                                                               executor, monkeypatch):
    from modelcollapse.sweep.executors import make_executor
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    settings = audit_settings(sample_tokens=2000, n_boot=100, lexical_replicates=20,
                              watermark=WATERMARK)
    specs = [files[k] for k in ("ref", "human", "repeated", "foreign", "marked")]
    sharded = audit_prepared(specs, reference, settings, WatermarkDetector(WATERMARK, 4.0),
                             files["vocab"], make_executor(executor, 2))
    assert sharded.to_json()["candidates"] == result.to_json()["candidates"]


def test_unknown_executor_exits_2(files, tmp_path, capsys):
    rc = main(["audit", files["human"], "--reference", files["ref"], "--out",
               str(tmp_path / "a"), "--executor", "spark"])
    assert rc == 2 and "unknown executor 'spark'" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_same_file_from_another_folder_gives_the_same_numbers(result, files, reference,
                                                              tmp_path):
    """A candidate's random streams are seeded by its file name, not its folder."""
    import shutil
    moved = tmp_path / "elsewhere" / Path(files["human"]).name
    moved.parent.mkdir()
    shutil.copy(files["human"], moved)
    settings = audit_settings(sample_tokens=2000, n_boot=100, lexical_replicates=20,
                              watermark=WATERMARK)
    again = audit_prepared([str(moved)], reference, settings,
                           WatermarkDetector(WATERMARK, 4.0), files["vocab"])
    first = by_name(result, files, "human").to_json()
    second = again.candidates[0].to_json()
    first.pop("name"), second.pop("name")
    assert second == first
