"""Trigram language models on real text: ours (modelcollapse.lm) vs nltk.lm (Laplace and
KneserNeyInterpolated) vs KenLM's query, in one run.

Corpus: the values of CPython's ``pydoc_data.topics.topics`` (the interpreter's bundled
documentation, ~80 documents, ~65k words), in sorted key order; tokens
``re.findall(r"\\w+", text.lower())``; 80/20 split by document (a seeded permutation).
Vocabulary: the training words (ids 3.. by decreasing frequency); test words outside it are
``<unk>`` for us and for KenLM, and nltk's own ``<UNK>`` for nltk.

Steps, each timed for our add-k with k = 1 (Laplace) and our Kneser-Ney:

  fit         ours: ``NGramLM(3, ...).fit`` on token ids, best of 15; "fit + encode" adds
              building the vocabulary and mapping the training words to ids (what nltk's
              fit does inside). nltk: ``padded_everygram_pipeline`` + ``fit``, best of 2.
  perplexity  over the test split, n-grams per second. Ours: ``perplexity`` on id arrays
              (every token and each final </s>), best of 30. nltk: ``lm.perplexity`` on the
              padded test trigrams: all of them for Laplace (best of 3); for Kneser-Ney,
              which scores ~100 n-grams/s, the first ``--nltk-kn-ngrams``, extrapolated.
  sampling    20,000 tokens. nltk: ``generate(20000)`` (one stream) for Laplace, best of
              2; for Kneser-Ney (~1 token/s) ``--nltk-kn-tokens`` tokens, extrapolated. Ours:
              ``sample(200, rng, max_len=100)``: 200 documents advancing together, at most
              20,000 draws (a document stops at </s>; draws of </s> are counted as tokens,
              as nltk's generate counts them), best of 7. Also reported, not used in the
              ratios: "natural" (63 documents, the training split's count, until </s>: one
              step per token of the longest, the per-step cost shows), "top-p" (the same
              200 x 100 with temperature 0.8 and top-p 0.9: full V-dim distributions), and
              a sweep of the batch: 1, 10, 100, 1000 documents of at most 20,000 / that
              tokens (one document alone stops at its </s>, well before 20,000).
  KenLM       when ``kenlm`` is importable: our Kneser-Ney written with ``to_arpa``, loaded
              by ``kenlm.Model``, ``sum(model.score(doc))`` over the test documents (strings,
              prepared beforehand), best of 30; perplexity agreement, and our scoring rate
              over KenLM's (ours on ids; also ours including the mapping of the test words
              to ids, the fair comparison with KenLM reading strings).

Usage: .venv/bin/python benchmarks/bench_ngram.py [--nltk-kn-ngrams 300] [--nltk-kn-tokens 6]
Writes benchmarks/results/ngram.json.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

import numpy as np

from modelcollapse.lm import UNK, NGramLM

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from provenance import code_version, machine, save  # noqa: E402

ORDER = 3
SAMPLE_DOCS, SAMPLE_LEN = 200, 100
SWEEP = (1, 10, 100, 1000)  # documents sampled together, max_len 20,000 / that


def corpus() -> tuple[list[list[str]], list[list[str]]]:
    from pydoc_data.topics import topics

    docs = [re.findall(r"\w+", topics[key].lower()) for key in sorted(topics)]
    perm = np.random.default_rng(0).permutation(len(docs))
    n_train = round(0.8 * len(docs))
    return [docs[i] for i in sorted(perm[:n_train])], [docs[i] for i in sorted(perm[n_train:])]


def encode(train, test=None):
    """Vocabulary from the training words, and the documents as id arrays."""
    words = [w for d in train for w in d]
    counts = Counter(words)
    vocab = ["<unk>", "<s>", "</s>"] + sorted(counts, key=lambda w: (-counts[w], w))
    w2i = {w: i for i, w in enumerate(vocab)}
    ids = np.fromiter(map(w2i.__getitem__, words), np.int64, len(words))
    tr = np.split(ids, np.cumsum([len(d) for d in train])[:-1])
    te = None if test is None else [to_ids(w2i, d) for d in test]
    return vocab, w2i, tr, te


def to_ids(w2i, doc):
    return np.fromiter((w2i.get(w, UNK) for w in doc), np.int64, len(doc))


def timed(f, repeats: int):
    runs = []
    out = None
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        runs.append(time.perf_counter() - t)
    return min(runs), runs, out


def drawn(docs, max_len: int) -> int:
    """Tokens drawn: every kept token, plus the </s> that ended a document early."""
    return sum(len(d) + (len(d) < max_len) for d in docs)


def ours(train, test, kenlm_mod):
    vocab, w2i, tr, te = encode(train, test)
    V = len(vocab)
    n_test = sum(len(d) + 1 for d in te)
    enc_s, _, _ = timed(lambda: encode(train), 15)
    res = {"vocab_size": V, "encode_train_s": enc_s}
    models = {}
    for name, kw in [("laplace", {"smoothing": "add_k", "k": 1.0}), ("kneser_ney", {})]:
        fit_s, fit_runs, lm = timed(lambda kw=kw: NGramLM(ORDER, **kw).fit(tr, V), 15)
        ppl_s, ppl_runs, ppl = timed(lambda lm=lm: lm.perplexity(te), 30)
        samp_s, samp_runs, docs = timed(
            lambda lm=lm: lm.sample(SAMPLE_DOCS, np.random.default_rng(1), SAMPLE_LEN), 7)
        n_samp = drawn(docs, SAMPLE_LEN)
        sweep = {}
        for b in SWEEP:
            sw_s, _, sw = timed(
                lambda lm=lm, b=b: lm.sample(b, np.random.default_rng(4), 20_000 // b), 2)
            sweep[str(b)] = {"max_len": 20_000 // b, "s": sw_s, "tokens": drawn(sw, 20_000 // b),
                             "tokens_per_s": drawn(sw, 20_000 // b) / sw_s}
        nat_s, _, nat = timed(
            lambda lm=lm: lm.sample(len(tr), np.random.default_rng(2), 20_000), 1)
        top_s, _, top = timed(lambda lm=lm: lm.sample(
            SAMPLE_DOCS, np.random.default_rng(3), SAMPLE_LEN, temperature=0.8, top_p=0.9), 1)
        models[name] = lm
        res[name] = {
            "fit_s": fit_s, "fit_runs_s": fit_runs, "fit_plus_encode_s": fit_s + enc_s,
            "n_ngrams": lm.n_ngrams_,
            "perplexity": ppl, "perplexity_s": ppl_s, "perplexity_runs_s": ppl_runs,
            "test_ngrams": n_test, "ngrams_per_s": n_test / ppl_s,
            "sample_s": samp_s, "sample_runs_s": samp_runs, "sample_tokens": n_samp,
            "tokens_per_s": n_samp / samp_s,
            "batch_sweep": sweep,
            "natural": {"docs": len(tr), "s": nat_s, "tokens": drawn(nat, 20_000),
                        "longest": max(map(len, nat)),
                        "tokens_per_s": drawn(nat, 20_000) / nat_s},
            "top_p": {"temperature": 0.8, "top_p": 0.9, "s": top_s,
                      "tokens": drawn(top, SAMPLE_LEN),
                      "tokens_per_s": drawn(top, SAMPLE_LEN) / top_s},
        }
    kn = models["kneser_ney"]
    res["kneser_ney"]["discounts"] = kn.discounts_.tolist()
    res["kneser_ney"]["discount_fallback"] = kn.discount_fallback_
    if kenlm_mod is not None:
        res["kenlm"] = kenlm_query(kenlm_mod, kn, vocab, w2i, test, te, n_test)
    return res


def kenlm_query(kenlm, lm, vocab, w2i, test, te, n_test):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pydoc3.arpa"
        arpa_s, _, _ = timed(lambda: lm.to_arpa(path, vocab), 1)
        t = time.perf_counter()
        model = kenlm.Model(str(path))
        load_s = time.perf_counter() - t
        size = path.stat().st_size
    sents = [" ".join(d) for d in test]
    ken_s, ken_runs, total = timed(
        lambda: sum(model.score(s, bos=True, eos=True) for s in sents), 30)
    ken_ppl = 10 ** (-total / n_test)
    ours_s, _, ours_ppl = timed(lambda: lm.perplexity(te), 30)
    enc_s, _, _ = timed(lambda: lm.perplexity([to_ids(w2i, d) for d in test]), 30)
    return {
        "arpa_write_s": arpa_s, "arpa_bytes": size, "load_s": load_s,
        "score_s": ken_s, "score_runs_s": ken_runs, "ngrams_per_s": n_test / ken_s,
        "perplexity": ken_ppl, "ours_perplexity": ours_ppl,
        "perplexity_rel_diff": abs(ken_ppl - ours_ppl) / ours_ppl,
        "ours_ngrams_per_s": n_test / ours_s,
        "ours_with_encoding_ngrams_per_s": n_test / enc_s,
        "ours_over_kenlm": ken_s / ours_s,
        "ours_with_encoding_over_kenlm": ken_s / enc_s,
    }


def nltk_side(train, test, kn_ngrams: int, kn_tokens: int):
    from nltk.lm import KneserNeyInterpolated, Laplace
    from nltk.lm.preprocessing import pad_both_ends, padded_everygram_pipeline
    from nltk.util import ngrams

    test_ngrams = [g for d in test for g in ngrams(pad_both_ends(d, n=ORDER), ORDER)]
    res = {"test_ngrams": len(test_ngrams)}
    for name, cls in [("laplace", Laplace), ("kneser_ney", KneserNeyInterpolated)]:
        def fit(cls=cls):
            lm = cls(ORDER)
            grams, vocab = padded_everygram_pipeline(ORDER, train)
            lm.fit(grams, vocab)
            return lm

        fit_s, _, lm = timed(fit, 2)
        if name == "laplace":
            scored, n_gen, repeats = test_ngrams, 20_000, 3
        else:
            scored, n_gen, repeats = test_ngrams[:kn_ngrams], kn_tokens, 1
        ppl_s, _, ppl = timed(lambda lm=lm, scored=scored: lm.perplexity(scored), repeats)
        gen_s, _, gen = timed(lambda lm=lm, n=n_gen: lm.generate(n, random_seed=0),
                              min(repeats, 2))
        res[name] = {
            "fit_s": fit_s,
            "ngrams_scored": len(scored), "perplexity_s": ppl_s,
            "perplexity": ppl, "ngrams_per_s": len(scored) / ppl_s,
            "extrapolated_perplexity": len(scored) < len(test_ngrams),
            "tokens_generated": len(gen) if isinstance(gen, list) else 1,
            "sample_s": gen_s,
            "extrapolated_sampling": n_gen < 20_000,
        }
        res[name]["tokens_per_s"] = res[name]["tokens_generated"] / gen_s
        res[name]["sample_20k_s"] = 20_000 / res[name]["tokens_per_s"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nltk-kn-ngrams", type=int, default=300)
    ap.add_argument("--nltk-kn-tokens", type=int, default=6)
    args = ap.parse_args()
    try:
        import kenlm
    except ImportError:
        kenlm = None
    train, test = corpus()
    print(f"corpus: pydoc_data.topics, {len(train)} train / {len(test)} test documents, "
          f"{sum(map(len, train))} / {sum(map(len, test))} words; trigram")
    # warm-up: imports, caches, and the allocator's state in a long-running process
    vocab, _, tr, te = encode(train, test)
    for kw in ({"smoothing": "add_k"}, {}):
        lm = NGramLM(ORDER, **kw).fit(tr, len(vocab))
        lm.perplexity(te)
        lm.sample(SAMPLE_DOCS, np.random.default_rng(0), SAMPLE_LEN)
    us = ours(train, test, kenlm)
    print("ours done; nltk (about a minute) ...", flush=True)
    them = nltk_side(train, test, args.nltk_kn_ngrams, args.nltk_kn_tokens)

    ratios = {}
    for mine in ("laplace", "kneser_ney"):
        for other in ("laplace", "kneser_ney"):
            o, m = them[other], us[mine]
            ratios[f"{mine}_vs_nltk_{other}"] = {
                "fit": o["fit_s"] / m["fit_s"],
                "fit_plus_encode": o["fit_s"] / m["fit_plus_encode_s"],
                "perplexity": m["ngrams_per_s"] / o["ngrams_per_s"],
                "sampling": m["tokens_per_s"] / o["tokens_per_s"],
            }
    kn, lp = us["kneser_ney"], us["laplace"]
    ratios["our_kneser_ney_vs_our_laplace"] = {
        "fit": lp["fit_s"] / kn["fit_s"],
        "perplexity": kn["ngrams_per_s"] / lp["ngrams_per_s"],
        "sampling": kn["tokens_per_s"] / lp["tokens_per_s"],
    }
    goals = {
        f"{m}_100x_nltk_laplace_{step}": ratios[f"{m}_vs_nltk_laplace"][step] >= 100
        for m in ("laplace", "kneser_ney") for step in ("fit", "fit_plus_encode", "perplexity",
                                                         "sampling")
    }
    goals.update({f"kneser_ney_as_fast_as_laplace_{step}": r >= 1.0
                  for step, r in ratios["our_kneser_ney_vs_our_laplace"].items()})
    if "kenlm" in us:
        k = us["kenlm"]
        goals["kenlm_perplexity_within_1e-4"] = k["perplexity_rel_diff"] <= 1e-4
        goals["kenlm_query_within_2x"] = k["ours_over_kenlm"] >= 0.5
        goals["kenlm_query_within_2x_with_encoding"] = k["ours_with_encoding_over_kenlm"] >= 0.5

    report(us, them, ratios, goals)
    libs = {"nltk": version("nltk")}
    if kenlm is not None:
        libs["kenlm"] = version("kenlm")
    save("ngram", {
        "machine": {**machine("numpy"), **libs},
        "code": code_version(),
        "setting": {"order": ORDER, "corpus": "pydoc_data.topics (sorted keys)",
                    "tokenizer": "re.findall(r'\\w+', text.lower())",
                    "split": "80/20 by document, numpy default_rng(0) permutation",
                    "train_docs": len(train), "test_docs": len(test),
                    "train_words": sum(map(len, train)), "test_words": sum(map(len, test)),
                    "sample": f"{SAMPLE_DOCS} documents x max_len {SAMPLE_LEN}",
                    "nltk_kn_ngrams_scored": args.nltk_kn_ngrams,
                    "nltk_kn_tokens_generated": args.nltk_kn_tokens},
        "ours": us, "nltk": them, "ratios": ratios, "goals": goals,
    })


def report(us, them, ratios, goals) -> None:
    def row(name, fit, ppl_rate, samp_rate, note=""):
        print(f"| {name:<34} | {fit:>9.4f} | {ppl_rate:>14,.0f} | {samp_rate:>12,.0f} |{note}")

    print("\n| model | fit s | perplexity n-grams/s | sampling tokens/s |")
    print("|---|---:|---:|---:|")
    for m in ("laplace", "kneser_ney"):
        o = them[m]
        row(f"nltk {m}", o["fit_s"], o["ngrams_per_s"], o["tokens_per_s"],
            " (extrapolated)" if o["extrapolated_sampling"] else "")
    for m in ("laplace", "kneser_ney"):
        u = us[m]
        row(f"ours {m}", u["fit_s"], u["ngrams_per_s"], u["tokens_per_s"])
        row(f"ours {m} (fit + encode)", u["fit_plus_encode_s"], u["ngrams_per_s"],
            u["tokens_per_s"])
    print("\nratios (ours / nltk laplace):")
    for m in ("laplace", "kneser_ney"):
        r = ratios[f"{m}_vs_nltk_laplace"]
        print(f"  ours {m:<11} fit {r['fit']:7.1f}x (with encode {r['fit_plus_encode']:6.1f}x)"
              f"  perplexity {r['perplexity']:7.1f}x  sampling {r['sampling']:7.1f}x")
    r = ratios["kneser_ney_vs_nltk_kneser_ney"]
    print(f"  ours kneser_ney / nltk kneser_ney: fit {r['fit']:.0f}x, perplexity "
          f"{r['perplexity']:,.0f}x, sampling {r['sampling']:,.0f}x")
    r = ratios["our_kneser_ney_vs_our_laplace"]
    print(f"  our kneser_ney / our laplace (speed): fit {r['fit']:.2f}, perplexity "
          f"{r['perplexity']:.2f}, sampling {r['sampling']:.2f}")
    for m in ("laplace", "kneser_ney"):
        sw = us[m]["batch_sweep"]
        print(f"  ours {m}: tokens/s by documents sampled together: " + ", ".join(
            f"{b}: {v['tokens_per_s']:,.0f}" for b, v in sw.items()))
    for m in ("laplace", "kneser_ney"):
        u = us[m]
        print(f"  ours {m}: natural lengths {u['natural']['tokens_per_s']:,.0f} tokens/s "
              f"({u['natural']['tokens']} tokens, longest {u['natural']['longest']}); "
              f"T=0.8 top-p 0.9 {u['top_p']['tokens_per_s']:,.0f} tokens/s")
    if "kenlm" in us:
        k = us["kenlm"]
        print(f"\nKenLM on our ARPA ({k['arpa_bytes'] / 1e6:.1f} MB): perplexity "
              f"{k['perplexity']:.6f} vs ours {k['ours_perplexity']:.6f} (rel diff "
              f"{k['perplexity_rel_diff']:.1e}); {k['ngrams_per_s']:,.0f} n-grams/s vs ours "
              f"{k['ours_ngrams_per_s']:,.0f} ({k['ours_over_kenlm']:.2f}x KenLM; with the "
              f"words-to-ids mapping {k['ours_with_encoding_ngrams_per_s']:,.0f}, "
              f"{k['ours_with_encoding_over_kenlm']:.2f}x)")
    print("\ngoals:")
    for g, ok in goals.items():
        print(f"  {'met ' if ok else 'MISS'}  {g}")


if __name__ == "__main__":
    main()
