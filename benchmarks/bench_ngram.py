"""Trigram language models on real text: ours (modelcollapse.lm) vs nltk.lm (Laplace and
KneserNeyInterpolated) vs KenLM's query, in one run.

Corpus: the values of CPython's ``pydoc_data.topics.topics`` (the interpreter's bundled
documentation, ~80 documents, ~65k words), in sorted key order; tokens
``re.findall(r"\\w+", text.lower())``; 80/20 split by document (a seeded permutation).
Vocabulary: the training words (ids 3.. by decreasing frequency); test words outside it are
``<unk>`` for us and for KenLM, and nltk's own ``<UNK>`` for nltk.

Steps, each timed for our add-k with k = 1 (Laplace), our Kneser-Ney and nltk's Laplace,
interleaved: every repeat times a block of runs of each of ours, then one run of nltk's, so
that all see the same state of a shared machine whose speed drifts; each figure is the best
run over the repeats (the first run of a block finds caches evicted by the other steps; the
best is a warm one, as in a loop of calls). nltk's Kneser-Ney is too slow for repeats: it is
timed once, after.

  fit         ours: ``NGramLM(3, ...).fit`` on token ids; "fit + encode" adds building the
              vocabulary and mapping the training words to ids (what nltk's fit does
              inside). nltk: ``padded_everygram_pipeline`` + ``fit``. 5 repeats, blocks of 4
              (nltk's Kneser-Ney: best of 2). Also ours ``fit_stream`` over chunks of 8 documents
              (best of 5), checked to give the same model, and the time of each stage of
              our fit (best of 30).
  perplexity  over the test split, n-grams per second. Ours: ``perplexity`` on id arrays
              (every token and each final </s>). nltk: ``lm.perplexity`` on the padded test
              trigrams. 10 repeats, blocks of 5. For nltk's Kneser-Ney, which scores ~100
              n-grams/s, the first ``--nltk-kn-ngrams``, extrapolated.
  sampling    20,000 tokens. nltk: ``generate(20000)`` (one stream); for its Kneser-Ney
              (~1 token/s) ``--nltk-kn-tokens`` tokens, extrapolated. Ours:
              ``sample(200, rng, max_len=100)``: 200 documents advancing together, at most
              20,000 draws (a document stops at </s>; draws of </s> are counted as tokens,
              as nltk's generate counts them), the first call on a freshly fitted model
              (the fit untimed). 5 repeats, blocks of 3. "warm" is a later call on the same
              model (best of 7). Also reported, not used in the ratios: one sampling step
              split into the draw and the move to the next contexts; "natural" (63
              documents, the training split's count, until </s>: one step per token of the
              longest, the per-step cost shows), "top-p" (the same 200 x 100 with temperature
              0.8 and top-p 0.9: full V-dim distributions), and a sweep of the batch: 1, 10,
              100, 1000 documents of at most 20,000 / that tokens (one document alone stops at
              its </s>, well before 20,000).
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
import os
import re
import resource
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
MODELS = (("laplace", {"smoothing": "add_k", "k": 1.0}), ("kneser_ney", {}))
SAMPLE_DOCS, SAMPLE_LEN = 200, 100
SWEEP = (1, 10, 100, 1000)  # documents sampled together, max_len 20,000 / that
STREAM_CHUNK = 8  # documents per chunk for fit_stream


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


def page_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def interleaved(steps: dict, repeats: int, block: int = 1) -> dict:
    """Time the ``steps`` (name -> (prepare, run)) in turn, ``repeats`` times: ours
    ``block`` runs in a row (the best of a block is warm: the other steps between blocks
    evict caches), nltk's (name "nltk") one. ``prepare`` is untimed and its result is passed
    to ``run``. Per step: best and all runs (s), the last result, minor page faults per run."""
    runs = {name: [] for name in steps}
    out, faults = {}, {name: 0 for name in steps}
    for _ in range(repeats):
        for name, (prepare, run) in steps.items():
            for _ in range(1 if name == "nltk" else block):
                arg = prepare()
                f, t = page_faults(), time.perf_counter()
                out[name] = run(arg)
                runs[name].append(time.perf_counter() - t)
                faults[name] += page_faults() - f
    return {name: {"s": min(r), "runs_s": r, "out": out[name],
                   "faults": faults[name] / len(r)} for name, r in runs.items()}


def fit_stages(tr, V: int, repeats: int = 30) -> dict:
    """Where ``fit``'s time goes: the best time (s) of each stage, the models interleaved."""
    from modelcollapse.lm import counts, smoothing

    runs: dict = {name: {} for name, _ in MODELS}
    for _ in range(repeats):
        for name, kw in MODELS:
            out = runs[name]

            def stage(label, f):
                t = time.perf_counter()
                r = f()
                out.setdefault(label, []).append(time.perf_counter() - t)
                return r

            seqs = stage("as_int_arrays", lambda: counts.as_int_arrays(tr, "sequences"))
            docs = stage("prepare", lambda: counts.prepare(seqs, V, strict=True))
            tables = stage("count_tables", lambda: counts.count_tables(docs, ORDER, V))
            stage("link_tables", lambda: counts.link_tables(tables))
            fit = smoothing.Fitted(ORDER, V, kw.get("smoothing", "kneser_ney"), 1.0, tables)
            stage("estimate", lambda: smoothing.kneser_ney(fit, None) if name == "kneser_ney"
                  else smoothing.count_based(fit))
            stage("mixture_index", lambda: smoothing.mixture_index(fit))
    return {name: {label: min(r) for label, r in out.items()} for name, out in runs.items()}


def sampling_stages(models: dict, repeats: int = 300) -> dict:
    """One step of ``sample(200, ..)`` split: the draw (decode.mixture_draw) and the move
    to the next contexts (decode.advance), best of ``repeats`` (s), at the state after 5
    steps, the models interleaved."""
    from modelcollapse.lm import EOS, N_SPECIAL, decode

    setup = {}
    for name, lm in models.items():
        fit, rng = lm._fitted(), np.random.default_rng(6)
        st = decode.initial_state(fit, SAMPLE_DOCS, None)
        for _ in range(5):
            tok = decode.mixture_draw(fit, st, rng)
            tok[tok == EOS] = N_SPECIAL  # the first word id: every document goes on
            st = decode.advance(fit, st, tok)
        setup[name] = (fit, st, decode.mixture_draw(fit, st, rng), rng)
    runs = {name: {"draw": [], "advance": []} for name in models}
    for _ in range(repeats):
        for name, (fit, st, tok, rng) in setup.items():
            t = time.perf_counter()
            decode.mixture_draw(fit, st, rng)
            t1 = time.perf_counter()
            decode.advance(fit, st, tok)
            runs[name]["draw"].append(t1 - t)
            runs[name]["advance"].append(time.perf_counter() - t1)
    return {name: {k: min(v) for k, v in r.items()} for name, r in runs.items()}


def nltk_laplace_steps(train, test) -> dict:
    """nltk's Laplace trigram model: (prepare, run) pairs for ``interleaved``, per step."""
    from nltk.lm import Laplace
    from nltk.lm.preprocessing import pad_both_ends, padded_everygram_pipeline
    from nltk.util import ngrams

    def fit(_=None):
        lm = Laplace(ORDER)
        grams, vocab = padded_everygram_pipeline(ORDER, train)
        lm.fit(grams, vocab)
        return lm

    model = fit()
    test_ngrams = [g for d in test for g in ngrams(pad_both_ends(d, n=ORDER), ORDER)]
    none = lambda: None  # noqa: E731
    return {"fit": (none, fit), "perplexity": (none, lambda _: model.perplexity(test_ngrams)),
            "sample": (none, lambda _: model.generate(20_000, random_seed=0)),
            "test_ngrams": len(test_ngrams)}


def ours(train, test, kenlm_mod, peer: dict):
    """Our measurements; ``peer``: nltk's Laplace steps (see nltk_laplace_steps), timed
    within the same repeats as ours. Returns ours and nltk Laplace's results."""
    vocab, w2i, tr, te = encode(train, test)
    V = len(vocab)
    n_test = sum(len(d) + 1 for d in te)
    enc_s, _, _ = timed(lambda: encode(train), 15)
    res = {"vocab_size": V, "encode_train_s": enc_s}
    models = {name: NGramLM(ORDER, **kw).fit(tr, V) for name, kw in MODELS}
    chunks = [tr[i:i + STREAM_CHUNK] for i in range(0, len(tr), STREAM_CHUNK)]
    none = lambda: None  # noqa: E731

    def fresh(kw):
        return lambda: NGramLM(ORDER, **kw).fit(tr, V)

    def draw(lm):
        return lm.sample(SAMPLE_DOCS, np.random.default_rng(1), SAMPLE_LEN)

    fit = interleaved({**{name: (none, lambda _, kw=kw: NGramLM(ORDER, **kw).fit(tr, V))
                          for name, kw in MODELS}, "nltk": peer["fit"]}, 5, block=4)
    ppl = interleaved({**{name: (none, lambda _, lm=models[name]: lm.perplexity(te))
                          for name, _ in MODELS}, "nltk": peer["perplexity"]}, 10, block=5)
    first = interleaved({**{name: (fresh(kw), draw) for name, kw in MODELS},
                         "nltk": peer["sample"]}, 5, block=3)
    warm = interleaved({name: (none, lambda _, lm=models[name]: draw(lm))
                        for name, _ in MODELS}, 7)
    stream = interleaved({name: (none, lambda _, kw=kw: NGramLM(ORDER, **kw).fit_stream(
        iter(chunks), V)) for name, kw in MODELS}, 5)
    for name, _ in MODELS:
        lm = models[name]
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
        f, p, s1, s2, st = (x[name] for x in (fit, ppl, first, warm, stream))
        n_samp = drawn(s1["out"], SAMPLE_LEN)
        res[name] = {
            "fit_s": f["s"], "fit_runs_s": f["runs_s"], "fit_page_faults": f["faults"],
            "fit_plus_encode_s": f["s"] + enc_s,
            "n_ngrams": lm.n_ngrams_,
            "fit_stream": {"chunk_docs": STREAM_CHUNK, "chunks": len(chunks), "s": st["s"],
                           "runs_s": st["runs_s"],
                           "same_perplexity": st["out"].perplexity(te) == lm.perplexity(te),
                           "same_n_ngrams": st["out"].n_ngrams_ == lm.n_ngrams_},
            "perplexity": p["out"], "perplexity_s": p["s"], "perplexity_runs_s": p["runs_s"],
            "test_ngrams": n_test, "ngrams_per_s": n_test / p["s"],
            "sample_s": s1["s"], "sample_runs_s": s1["runs_s"], "sample_tokens": n_samp,
            "tokens_per_s": n_samp / s1["s"],
            "sample_warm_s": s2["s"], "sample_warm_runs_s": s2["runs_s"],
            "warm_tokens_per_s": drawn(s2["out"], SAMPLE_LEN) / s2["s"],
            "batch_sweep": sweep,
            "natural": {"docs": len(tr), "s": nat_s, "tokens": drawn(nat, 20_000),
                        "longest": max(map(len, nat)),
                        "tokens_per_s": drawn(nat, 20_000) / nat_s},
            "top_p": {"temperature": 0.8, "top_p": 0.9, "s": top_s,
                      "tokens": drawn(top, SAMPLE_LEN),
                      "tokens_per_s": drawn(top, SAMPLE_LEN) / top_s},
        }
    stages = fit_stages(tr, V)
    steps = sampling_stages(models)
    for name, _ in MODELS:
        res[name]["fit_stages_s"] = stages[name]
        res[name]["sample_step_s"] = steps[name]
    kn = models["kneser_ney"]
    res["kneser_ney"]["discounts"] = kn.discounts_.tolist()
    res["kneser_ney"]["discount_fallback"] = kn.discount_fallback_
    if kenlm_mod is not None:
        res["kenlm"] = kenlm_query(kenlm_mod, kn, vocab, w2i, test, te, n_test)
    n_peer = peer["test_ngrams"]
    laplace = {
        "fit_s": fit["nltk"]["s"], "fit_runs_s": fit["nltk"]["runs_s"],
        "ngrams_scored": n_peer, "perplexity_s": ppl["nltk"]["s"],
        "perplexity_runs_s": ppl["nltk"]["runs_s"], "perplexity": ppl["nltk"]["out"],
        "ngrams_per_s": n_peer / ppl["nltk"]["s"], "extrapolated_perplexity": False,
        "tokens_generated": len(first["nltk"]["out"]), "sample_s": first["nltk"]["s"],
        "sample_runs_s": first["nltk"]["runs_s"], "extrapolated_sampling": False,
        "tokens_per_s": len(first["nltk"]["out"]) / first["nltk"]["s"],
    }
    laplace["sample_20k_s"] = 20_000 / laplace["tokens_per_s"]
    return res, laplace


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


def nltk_kneser_ney(train, test, kn_ngrams: int, kn_tokens: int) -> dict:
    """nltk's KneserNeyInterpolated: too slow to time in repeats (~100 n-grams/s, ~1 token/s
    to generate): fit twice, score the first ``kn_ngrams`` test trigrams and generate
    ``kn_tokens`` tokens once, extrapolated."""
    from nltk.lm import KneserNeyInterpolated
    from nltk.lm.preprocessing import pad_both_ends, padded_everygram_pipeline
    from nltk.util import ngrams

    test_ngrams = [g for d in test for g in ngrams(pad_both_ends(d, n=ORDER), ORDER)]

    def fit():
        lm = KneserNeyInterpolated(ORDER)
        grams, vocab = padded_everygram_pipeline(ORDER, train)
        lm.fit(grams, vocab)
        return lm

    fit_s, _, lm = timed(fit, 2)
    scored = test_ngrams[:kn_ngrams]
    ppl_s, _, ppl = timed(lambda: lm.perplexity(scored), 1)
    gen_s, _, gen = timed(lambda: lm.generate(kn_tokens, random_seed=0), 1)
    n_gen = len(gen) if isinstance(gen, list) else 1
    return {
        "fit_s": fit_s,
        "ngrams_scored": len(scored), "perplexity_s": ppl_s,
        "perplexity": ppl, "ngrams_per_s": len(scored) / ppl_s,
        "extrapolated_perplexity": len(scored) < len(test_ngrams),
        "tokens_generated": n_gen, "sample_s": gen_s,
        "extrapolated_sampling": kn_tokens < 20_000,
        "tokens_per_s": n_gen / gen_s, "sample_20k_s": 20_000 / (n_gen / gen_s),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nltk-kn-ngrams", type=int, default=300)
    ap.add_argument("--nltk-kn-tokens", type=int, default=6)
    args = ap.parse_args()
    try:
        import kenlm
    except ImportError:
        kenlm = None
    load_start = os.getloadavg()
    train, test = corpus()
    print(f"corpus: pydoc_data.topics, {len(train)} train / {len(test)} test documents, "
          f"{sum(map(len, train))} / {sum(map(len, test))} words; trigram")
    # warm-up: imports, caches, and the allocator's state in a long-running process
    vocab, _, tr, te = encode(train, test)
    for kw in ({"smoothing": "add_k"}, {}):
        lm = NGramLM(ORDER, **kw).fit(tr, len(vocab))
        lm.perplexity(te)
        lm.sample(SAMPLE_DOCS, np.random.default_rng(0), SAMPLE_LEN)
        NGramLM(ORDER, **kw).fit_stream([tr[:40], tr[40:]], len(vocab))
    peer = nltk_laplace_steps(train, test)
    print("ours and nltk Laplace, interleaved (about 30 s) ...", flush=True)
    us, laplace = ours(train, test, kenlm, peer)
    print("nltk Kneser-Ney (about 30 s) ...", flush=True)
    them = {"test_ngrams": peer["test_ngrams"], "laplace": laplace,
            "kneser_ney": nltk_kneser_ney(train, test, args.nltk_kn_ngrams,
                                          args.nltk_kn_tokens)}

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
    # not goals: the same per call (200 x 100 documents, whatever their lengths), and warm
    ratios["our_kneser_ney_vs_our_laplace_other"] = {
        "sampling_time": lp["sample_s"] / kn["sample_s"],
        "sampling_warm": kn["warm_tokens_per_s"] / lp["warm_tokens_per_s"],
        "fit_stream": lp["fit_stream"]["s"] / kn["fit_stream"]["s"],
    }
    goals = {
        f"{m}_100x_nltk_laplace_{step}": ratios[f"{m}_vs_nltk_laplace"][step] >= 100
        for m in ("laplace", "kneser_ney") for step in ("fit", "fit_plus_encode", "perplexity",
                                                         "sampling")
    }
    goals.update({f"kneser_ney_as_fast_as_laplace_{step}": r >= 1.0
                  for step, r in ratios["our_kneser_ney_vs_our_laplace"].items()})
    goals["fit_stream_equals_fit"] = all(
        us[m]["fit_stream"]["same_perplexity"] and us[m]["fit_stream"]["same_n_ngrams"]
        for m in ("laplace", "kneser_ney"))
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
        "machine": {**machine("numpy"), **libs,
                    "load_average_1_5_15_min": {"start": load_start, "end": os.getloadavg()}},
        "code": code_version(),
        "setting": {"order": ORDER, "corpus": "pydoc_data.topics (sorted keys)",
                    "tokenizer": "re.findall(r'\\w+', text.lower())",
                    "split": "80/20 by document, numpy default_rng(0) permutation",
                    "train_docs": len(train), "test_docs": len(test),
                    "train_words": sum(map(len, train)), "test_words": sum(map(len, test)),
                    "sample": f"{SAMPLE_DOCS} documents x max_len {SAMPLE_LEN}",
                    "fit_stream_chunk_docs": STREAM_CHUNK,
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
    o = ratios["our_kneser_ney_vs_our_laplace_other"]
    print(f"  our kneser_ney / our laplace (speed): fit {r['fit']:.2f}, perplexity "
          f"{r['perplexity']:.2f}, sampling {r['sampling']:.2f} (per call {o['sampling_time']:.2f};"
          f" warm {o['sampling_warm']:.2f}), fit_stream {o['fit_stream']:.2f}")
    for m in ("laplace", "kneser_ney"):
        u = us[m]
        st = u["fit_stream"]
        print(f"  ours {m}: first sample {u['sample_s'] * 1e3:.2f} ms, warm "
              f"{u['sample_warm_s'] * 1e3:.2f} ms; fit_stream in {st['chunks']} chunks "
              f"{st['s'] * 1e3:.2f} ms (fit {u['fit_s'] * 1e3:.2f} ms), same model: "
              f"{st['same_perplexity'] and st['same_n_ngrams']}; fit page faults "
              f"{u['fit_page_faults']:.0f}")
    for m in ("laplace", "kneser_ney"):
        print(f"  ours {m}: fit stages (ms) " + ", ".join(
            f"{k} {v * 1e3:.3f}" for k, v in us[m]["fit_stages_s"].items())
            + "; one sampling step (us) " + ", ".join(
            f"{k} {v * 1e6:.1f}" for k, v in us[m]["sample_step_s"].items()))
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
