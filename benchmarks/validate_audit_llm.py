"""Validate the audit on real LLM text (issue 15): studies/audit_llm.toml.

    python benchmarks/validate_audit_llm.py studies/audit_llm.toml --out runs/audit_llm

1. The model rewrites ``generated_docs`` paragraphs of the corpus (a seeded sample) with the
   audit's own generator (:func:`modelcollapse.zeroshot.generate.ai_reference`: continue,
   paraphrase, summarize-then-expand; cached per document in $MODELCOLLAPSE_CACHE).
2. Detector quality over the whole corpus: every human paragraph against every rewrite,
   per criterion: AUROC and TPR at 1% and 5% FPR, on all documents and on documents of at
   least ``min_words`` words. The fitted ``combined`` criterion is scored out of fold: five
   folds of paragraphs, each rewrite in its original's fold, each fold scored by a
   combination fitted on the other four.
3. Per seed, a random split: ``reference_share`` of the paragraphs are the human reference,
   the rest the candidates' human pool. The AI reference is the model's rewrites of
   reference paragraphs; the candidates' AI pool its rewrites of the other paragraphs (so no
   candidate text, human or AI, is derived from the reference). For each share, a candidate
   of ``candidate_docs`` documents mixes the two pools; the audit runs on it with the
   language model (the same code as ``--ai-generator``, the AI reference supplied from the
   cache rather than re-sampled from the split's model half; ``combined`` fitted on the
   reference's model half, as the audit does).
4. Other sampling settings (``[[transfer]]`` tables of the study): the model rewrites a
   further sample of paragraphs with other settings (say near-greedy, or pure sampling);
   each criterion is measured on them as in step 2 (``combined`` for each rewrite by the
   fold model that never saw its original): how the detectors carry over to text generated
   in a way they were neither fitted nor chosen on.
5. Reported: interval coverage and mean absolute error of ``ai_share`` and
   ``detector_share`` over (share, seed) cells; for human-only candidates (share 0) the
   upper bound of ``ai_share`` and the overall verdict.

Writes OUT/validation.json, OUT/validation.md and docs/audit_llm.png (with --figure).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from modelcollapse.audit import AuditSettings  # noqa: E402
from modelcollapse.audit.core import audit_prepared  # noqa: E402
from modelcollapse.audit.machine import MIN_WORDS, Scorer, prepare_machine  # noqa: E402
from modelcollapse.audit.machine import _cache_folder  # noqa: E402
from modelcollapse.audit.reference import prepare_reference  # noqa: E402
from modelcollapse.data import load_corpus  # noqa: E402
from modelcollapse.zeroshot import auroc, criteria, tpr_at_fpr  # noqa: E402
from modelcollapse.zeroshot.criteria import Combination, features  # noqa: E402
from modelcollapse.zeroshot.generate import (GenerationSettings, ai_reference,  # noqa: E402
                                             model_identity)
from modelcollapse.zeroshot.model_cache import load_lm  # noqa: E402


def _jsonl(path: Path, texts) -> str:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return str(path)


def machine_folder():
    return _cache_folder("scores")


FOLDS = 5


def paragraph_folds(n: int) -> np.ndarray:
    """(n,) the fold of each corpus paragraph (a rewrite goes with its original)."""
    return np.random.default_rng(5).permutation(n) % FOLDS


def out_of_fold_combination(x_human: np.ndarray, x_ai: np.ndarray, ai_src: list[int]
                            ) -> tuple[np.ndarray, np.ndarray, list[Combination]]:
    """``combined`` scores of every human paragraph (N_h, F) and rewrite (N_a, F), each
    from a combination fitted without its fold, and the fold models."""
    fold_h = paragraph_folds(len(x_human))
    fold_a = np.array([fold_h[i] if i >= 0 else (-i) % FOLDS for i in ai_src])
    h, a = np.full(len(x_human), np.nan), np.full(len(x_ai), np.nan)
    models = []
    for k in range(FOLDS):
        comb = Combination.fit(x_human[fold_h != k], x_ai[fold_a != k])
        h[fold_h == k] = comb(x_human[fold_h == k])
        a[fold_a == k] = comb(x_ai[fold_a == k])
        models.append(comb)
    return h, a, models


def transfer_quality(h_scores: dict, h_words, fold_models: list, study: dict, model, tok,
                     texts, scorer) -> list[dict]:
    """Step 4 of the module docstring, one entry per ``[[transfer]]`` table: the human
    scores are step 2's (``combined`` out of fold); a transferred rewrite's ``combined``
    score comes from the fold model that never saw its original."""
    fold_h = paragraph_folds(len(texts))
    out = []
    for k, spec in enumerate(study.get("transfer", [])):
        spec = dict(spec)
        n = int(spec.pop("docs"))
        settings = GenerationSettings(**spec)
        pick = np.random.default_rng([study["generation_seed"], k, 31]).permutation(
            len(texts))[:n]
        made = ai_reference(model, tok, [texts[i] for i in pick], settings,
                            model_identity(model, tok),
                            progress=lambda a, b: print(f"transfer {k}: {a}/{b}", flush=True))
        keep = [(int(i), t) for i, (_, t) in zip(pick, made) if len(t.split()) >= MIN_WORDS]
        stats = scorer.stats([t for _, t in keep])
        crit = criteria(stats)
        x = features(stats)
        crit["combined"] = np.array([fold_models[fold_h[i]](x[j:j + 1])[0]
                                     for j, (i, _) in enumerate(keep)])
        words = np.array([len(t.split()) for _, t in keep])
        out.append({"settings": settings.key(), "asked": n, "usable": len(keep),
                    "quality": detector_quality(h_scores, crit, h_words, words,
                                                study["min_words"])})
    return out


def detector_quality(human: dict, ai: dict, h_words, a_words, min_words: int) -> dict:
    out = {}
    for name in human:
        row = {}
        for tag, hm, am in (("all", np.ones_like(h_words, bool), np.ones_like(a_words, bool)),
                            (f">={min_words}w", h_words >= min_words, a_words >= min_words)):
            h, a = human[name][hm], ai[name][am]
            row[tag] = {"auroc": auroc(h, a), "tpr_at_1pct_fpr": tpr_at_fpr(h, a, 0.01),
                        "tpr_at_5pct_fpr": tpr_at_fpr(h, a, 0.05),
                        "n_human": int(np.isfinite(h).sum()), "n_ai": int(np.isfinite(a).sum())}
        out[name] = row
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study")
    ap.add_argument("--out", default="runs/audit_llm")
    ap.add_argument("--figure", default="docs/audit_llm.png")
    ap.add_argument("--model", help="override the study's model spec")
    ap.add_argument("--threads", type=int, help="torch threads")
    ap.add_argument("--precision", default="float32", choices=("auto", "float32", "bfloat16"),
                    help="scoring arithmetic (float32: the one the cached scores were made with)")
    ap.add_argument("--cached-only", action="store_true",
                    help="use only the rewrites and human scores already in the cache (a "
                         "partial validation when generating is too slow); candidates shrink "
                         "to what the pools hold")
    ap.add_argument("--seeds", type=int, nargs="+", help="override the study's seeds")
    ap.add_argument("--n-boot", type=int, help="override the study's n_boot")
    args = ap.parse_args(argv)
    study = tomllib.loads(Path(args.study).read_text())
    if args.seeds:
        study["seeds"] = args.seeds
    if args.n_boot:
        study["n_boot"] = args.n_boot
    out = Path(args.out)
    (out / "data").mkdir(parents=True, exist_ok=True)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.time()
    spec = args.model or study["model"]
    model, tok = load_lm(spec)
    texts = load_corpus(study["corpus"]).texts()
    pick = np.random.default_rng(study["generation_seed"]).permutation(len(texts))
    pick = pick[:study["generated_docs"]]
    scorer = Scorer(spec, model, tok, precision=args.precision)
    if args.cached_only:
        # human paragraphs: those already scored; rewrites: those already generated (their
        # originals need not be among the human paragraphs: a rewrite whose original is
        # not in the corpus cannot leak it into a candidate)
        from modelcollapse.zeroshot.generate import RewriteCache, doc_hash
        from modelcollapse.zeroshot.scoring import ScoreCache
        have = RewriteCache(model_identity(model, tok), GenerationSettings()).entries
        scored = ScoreCache(machine_folder(), scorer._key).rows
        gen_texts = [texts[i] for i in pick if doc_hash(texts[i]) in have]
        texts = [t for t in texts if doc_hash(t) in scored]
        index = {t: i for i, t in enumerate(texts)}
        pick = np.array([index.get(t, -1 - j) for j, t in enumerate(gen_texts)], int)
        print(f"cached only: {len(pick)} rewrites, {len(texts)} paragraphs", flush=True)
    else:
        gen_texts = [texts[i] for i in pick]
    made = ai_reference(model, tok, gen_texts, GenerationSettings(),
                        model_identity(model, tok),
                        progress=lambda a, b: print(f"generated {a}/{b}", flush=True))
    ai_src = [int(i) for i, (_, t) in zip(pick, made) if len(t.split()) >= MIN_WORDS]
    ai_text = {int(i): t for i, (_, t) in zip(pick, made) if len(t.split()) >= MIN_WORDS}
    modes = [m for m, t in made if len(t.split()) >= MIN_WORDS]
    print(f"{len(ai_src)} usable rewrites ({time.time() - t0:.0f} s)", flush=True)
    human_stats = scorer.stats(texts)
    ai_stats = scorer.stats([ai_text[i] for i in ai_src])
    human_scores, ai_scores = criteria(human_stats), criteria(ai_stats)
    human_scores["combined"], ai_scores["combined"], fold_models = out_of_fold_combination(
        features(human_stats), features(ai_stats), ai_src)
    print(f"scored ({time.time() - t0:.0f} s)", flush=True)
    h_words = np.array([len(t.split()) for t in texts])
    a_words = np.array([len(ai_text[i].split()) for i in ai_src])
    quality = detector_quality(human_scores, ai_scores, h_words, a_words, study["min_words"])
    transfer = transfer_quality(human_scores, h_words, fold_models, study, model, tok, texts,
                                scorer)
    print(f"transfer done ({time.time() - t0:.0f} s)", flush=True)

    settings = AuditSettings(target_fpr=study["target_fpr"], n_boot=study["n_boot"],
                             lexical_replicates=study["lexical_replicates"],
                             sample_tokens=1000, text_field="text", ai_generator=spec)
    cells = []
    n_cfg = int(study["candidate_docs"])
    for seed in study["seeds"]:
        rng = np.random.default_rng([seed, 15])
        in_ref = rng.random(len(texts)) < study["reference_share"]
        # a rewrite goes to the side of its original; one whose original is not among the
        # paragraphs (index < 0, --cached-only) to a side of its own draw
        side = {i: (bool(in_ref[i]) if i >= 0 else bool(rng.random() < study["reference_share"]))
                for i in ai_src}
        ref_path = _jsonl(out / "data" / f"reference-{seed}.jsonl",
                          [t for t, r in zip(texts, in_ref) if r])
        # the audit's default AI reference size: a seeded sample of the reference's rewrites
        ai_ref = [ai_text[i] for i in ai_src if side[i]]
        keep = np.sort(rng.permutation(len(ai_ref))[:settings.ai_reference_docs])
        ai_ref = [ai_ref[i] for i in keep]
        ai_pool = [ai_text[i] for i in ai_src if not side[i]]
        human_pool = [t for t, r in zip(texts, in_ref) if not r]
        n = min(n_cfg, len(ai_pool))   # share 1 needs n AI documents
        record = {"generator": spec, "documents_kept": len(ai_ref), "modes": {
            m: modes.count(m) for m in sorted(set(modes))}, "note": "validation: rewrites of "
            "every reference paragraph among the generated sample"}
        s_seed = AuditSettings(**{**settings.as_record(), "seed": seed, "watermark": None})
        ref = prepare_reference(ref_path, text_field="text", target_fpr=s_seed.target_fpr,
                                seed=seed, ai_writer=lambda _m: (ai_ref, record))
        lm = prepare_machine(scorer, ref.heldout_texts, ref.ai_texts, s_seed.target_fpr,
                             np.random.default_rng([seed, 16]), sorted(ref.model_texts))
        specs, truth = [], {}
        for share in study["shares"]:
            n_ai = int(round(share * n))
            r = np.random.default_rng([seed, int(share * 1000), 17])
            if n_ai > len(ai_pool):
                raise SystemExit(f"share {share} needs {n_ai} AI documents; the pool has "
                                 f"{len(ai_pool)}: raise generated_docs or lower candidate_docs")
            docs = ([human_pool[i] for i in r.choice(len(human_pool), n - n_ai, replace=False)]
                    + [ai_pool[i] for i in r.choice(len(ai_pool), n_ai, replace=False)])
            path = _jsonl(out / "data" / f"seed{seed}-share{share:g}.jsonl",
                          [docs[i] for i in r.permutation(len(docs))])
            specs.append(path)
            truth[path] = n_ai / n
        result = audit_prepared(specs, ref, s_seed, lm=lm)
        for cand in result.candidates:
            a, d = cand.ai_share, cand.signals.get("detector_share")
            t = truth[cand.name]
            cells.append({
                "seed": seed, "share": t, "ai_share": a.estimate,
                "ai_ci": [a.ci_low, a.ci_high], "ai_covered": a.ci_low <= t <= a.ci_high,
                "detector_share": None if d is None else d.estimate,
                "detector_ci": None if d is None else [d.ci_low, d.ci_high],
                "detector_covered": None if d is None else d.ci_low <= t <= d.ci_high,
                "verdict": cand.verdict, "ai_verdict": a.verdict,
                "not_ok": [k for k, s in cand.all_signals().items() if s.verdict != "ok"],
                "caveats": [c["kind"] for c in cand.caveats],
                "best_detector": lm.best, "ai_reference_docs": len(ref.ai_texts),
                "best_tpr": lm.calibrations[lm.best].tpr,
                "best_fpr": lm.calibrations[lm.best].fpr,
                "candidate_docs": n})
        print(f"seed {seed} done ({time.time() - t0:.0f} s)", flush=True)

    summary = summarize(cells)
    doc = {"study": study, "usable_rewrites": len(ai_src), "transfer": transfer,
           "combined_fold_models": [m.as_record() for m in fold_models],
           "modes": {m: modes.count(m) for m in sorted(set(modes))},
           "detector_quality": quality, "summary": summary, "cells": cells,
           "seconds": time.time() - t0}
    (out / "validation.json").write_text(json.dumps(doc, indent=2, default=float))
    (out / "validation.md").write_text(markdown(doc))
    if args.figure:
        figure(cells, quality, args.figure)
    print(markdown(doc))
    return 0


def summarize(cells: list[dict]) -> dict:
    ai_err = [abs(c["ai_share"] - c["share"]) for c in cells]
    det = [c for c in cells if c["detector_share"] is not None]
    human = [c for c in cells if c["share"] == 0]
    return {
        "cells": len(cells),
        "ai_share_coverage": float(np.mean([c["ai_covered"] for c in cells])),
        "ai_share_mae": float(np.mean(ai_err)),
        "detector_share_coverage": float(np.mean([c["detector_covered"] for c in det]))
        if det else None,
        "detector_share_mae": float(np.mean([abs(c["detector_share"] - c["share"])
                                             for c in det])) if det else None,
        "human_only_runs": len(human),
        "human_only_ai_upper_le_0.10": float(np.mean([c["ai_ci"][1] <= 0.10 for c in human])),
        "human_only_verdict_ok": float(np.mean([c["verdict"] == "ok" for c in human])),
        "human_only_not_ok_signals": sorted({s for c in human for s in c["not_ok"]}),
        "by_share": {f"{s:g}": {
            "ai_share_mean": float(np.mean([c["ai_share"] for c in cells if c["share"] == s])),
            "ai_covered": int(sum(c["ai_covered"] for c in cells if c["share"] == s)),
            "detector_share_mean": float(np.mean([c["detector_share"] for c in det
                                                  if c["share"] == s])) if det else None,
            "runs": sum(c["share"] == s for c in cells)}
            for s in sorted({c["share"] for c in cells})}}


def quality_table(quality: dict) -> list[str]:
    """Markdown rows of :func:`detector_quality`'s output."""
    lines = ["| detector | AUROC (all) | TPR@1% | TPR@5% | AUROC (>= 40 words) | TPR@1% | "
             "TPR@5% | AI docs >= 40 words |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, q in quality.items():
        a, b = q["all"], next(v for k, v in q.items() if k != "all")
        lines.append(f"| {name} | {a['auroc']:.3f} | {a['tpr_at_1pct_fpr']:.0%} | "
                     f"{a['tpr_at_5pct_fpr']:.0%} | {b['auroc']:.3f} | "
                     f"{b['tpr_at_1pct_fpr']:.0%} | {b['tpr_at_5pct_fpr']:.0%} | {b['n_ai']} |")
    return lines


def markdown(doc: dict) -> str:
    s = doc["summary"]
    lines = ["| true share | runs | ai_share mean | ai_share covered | detector_share mean |",
             "|---:|---:|---:|---:|---:|"]
    for share, row in s["by_share"].items():
        det = "n/a" if row["detector_share_mean"] is None else f"{row['detector_share_mean']:.3f}"
        lines.append(f"| {share} | {row['runs']} | {row['ai_share_mean']:.3f} | "
                     f"{row['ai_covered']}/{row['runs']} | {det} |")
    lines += ["", f"ai_share: coverage {s['ai_share_coverage']:.0%}, MAE "
                  f"{s['ai_share_mae']:.3f}; detector_share: coverage "
                  f"{(s['detector_share_coverage'] or 0):.0%}, MAE "
                  f"{(s['detector_share_mae'] or float('nan')):.3f}",
              f"human-only candidates: ai_share upper bound <= 0.10 in "
              f"{s['human_only_ai_upper_le_0.10']:.0%}, overall verdict ok in "
              f"{s['human_only_verdict_ok']:.0%} (signals not ok: "
              f"{', '.join(s['human_only_not_ok_signals']) or 'none'})", ""]
    lines += quality_table(doc["detector_quality"])
    for t in doc.get("transfer", []):
        lines += ["", f"Transfer: rewrites sampled with {t['settings']} ({t['usable']} usable "
                      f"of {t['asked']})", ""]
        lines += quality_table(t["quality"])
    return "\n".join(lines) + "\n"


def figure(cells: list[dict], quality: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.2, 4))
    rng = np.random.default_rng(0)
    for key, ci, colour, label, dx in (("ai_share", "ai_ci", "C0", "ai_share (occurrence)", -0.008),
                                       ("detector_share", "detector_ci", "C3",
                                        "detector_share", 0.008)):
        for c in cells:
            if c[key] is None:
                continue
            x = c["share"] + dx + rng.uniform(-0.004, 0.004)
            ax.plot([x, x], c[ci], color=colour, alpha=0.35, lw=1)
            ax.plot(x, c[key], "o", color=colour, ms=3, label=label)
            label = None
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("true share of SmolLM2-written documents")
    ax.set_ylabel("estimate and 95% interval")
    ax.legend(fontsize=8)
    ax.set_title("audit on SmolLM2-135M rewrites of CPython docs", fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
