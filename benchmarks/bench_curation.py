"""Curation throughput on 100,000 short documents, against sampling them and against datasketch.

Documents: ``--docs`` (100,000) documents of ``--length`` (32) tokens sampled from a
trigram Kneser-Ney model of the embedded corpus (the loop's own sampler, watermarked with
gamma 0.25, delta 2 so the watermark detector has something to find), seed 0.

  sampling       ``NGram.generate`` of the documents (what one generation of the loop costs
                 to write them): the reference the issue sets, "the whole curation pass is
                 cheaper than sampling the same documents".
  watermark      ``Watermark.score`` (z-test of every document).
  likelihood     ``LikelihoodDetector.scores`` (per-token perplexity under a human-only
                 trigram model; fitting and calibration not timed: once per run).
  classifier     ``ClassifierDetector.scores`` (hashed n-gram features + logistic
                 regression; training not timed).
  exact dedup    ``ExactDedup``.
  near dedup     ``NearDedup(0.8)``: our numpy MinHash signatures, then datasketch's
                 MinHashLSH for candidate pairs.
  peer minhash   what a user writes with datasketch: one ``MinHash(num_perm=128,
                 scheme="affine64")`` per document, ``update_batch`` of its shingles (the
                 same hashed shingles as ours, not timed); timed on ``--peer-docs``
                 documents and extrapolated linearly (every document costs the same).

Each step: best of ``--repeats``. Usage: .venv/bin/python benchmarks/bench_curation.py
Needs: datasketch, scikit-learn. Writes benchmarks/results/curation.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from modelcollapse.curation import (ClassifierDetector, ExactDedup, LikelihoodDetector,
                                    NearDedup, Watermark)
from modelcollapse.curation.base import Batch
from modelcollapse.families.base import Sampling
from modelcollapse.families.ngram import NGram, NGramParams

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from provenance import code_version, machine, save  # noqa: E402


def best(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--length", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peer-docs", type=int, default=5_000)
    args = ap.parse_args()

    family = NGram(NGramParams(lengths="fixed", doc_length=args.length, watermark=True), 0)
    data = family.data
    lm = family.fit_one(data.train)
    rng = np.random.default_rng(0)
    t_sample, docs = best(lambda: family.generate(lm, args.docs, np.random.default_rng(0),
                                                  Sampling()), args.repeats)
    print(f"sampling {args.docs:,} x {args.length} tokens: {t_sample:.2f} s")

    V = len(data.vocab)
    mark: Watermark = family.watermark
    likelihood = LikelihoodDetector(3, 0.05, side="two-sided").fit(data.validation, data.train, V)
    generated = family.generate(lm, len(data.validation), rng, Sampling())
    classifier = ClassifierDetector(0.05).fit(data.validation, generated, data.train)
    batch = Batch.of(docs, 1)
    near = NearDedup(0.8)
    steps = {
        "watermark": lambda: mark.score(docs),
        "likelihood": lambda: likelihood.scores(docs),
        "classifier": lambda: classifier.scores(docs),
        "exact_dedup": lambda: ExactDedup()(batch, rng),
        "near_dedup": lambda: near(batch, rng),
        "near_dedup_signatures": lambda: near.signatures(docs),
    }
    times = {}
    for name, fn in steps.items():
        times[name], _ = best(fn, args.repeats)
        print(f"{name:<22} {times[name]:7.2f} s  ({args.docs / times[name]:,.0f} docs/s)")
    z = mark.score(docs)[2]
    print(f"watermark: {np.mean(z >= 4):.3f} of the documents at z >= 4")

    # The peer: datasketch MinHash per document on the same hashed shingles.
    import datasketch
    from modelcollapse.curation._text import Flat, ngram_hashes
    sub = docs[:args.peer_docs]
    h, doc = ngram_hashes(Flat(sub), near.shingle, key=near.seed)
    starts = np.searchsorted(doc, np.arange(len(sub) + 1))
    shingles = [h[starts[i]:starts[i + 1]].astype(np.uint64).tobytes() for i in range(len(sub))]
    shingle_lists = [[s[j:j + 8] for j in range(0, len(s), 8)] for s in shingles]

    def peer():
        out = []
        for sh in shingle_lists:
            m = datasketch.MinHash(num_perm=near.num_perm, seed=near.seed, scheme="affine64")
            m.update_batch(sh)
            out.append(m.hashvalues)
        return out

    t_peer_sub, _ = best(peer, args.repeats)
    t_peer = t_peer_sub * len(docs) / len(sub)
    print(f"peer datasketch MinHash, {len(sub):,} docs: {t_peer_sub:.2f} s -> "
          f"{t_peer:.1f} s for {len(docs):,} (extrapolated)")

    curation = (times["watermark"] + times["likelihood"] + times["classifier"]
                + times["exact_dedup"] + times["near_dedup"])
    result = {
        "benchmark": "curation", "code": code_version(),
        "machine": machine("numpy", "datasketch", "sklearn"),
        "settings": vars(args),
        "seconds": {"sampling": t_sample, **times, "peer_minhash_extrapolated": t_peer,
                    "peer_minhash_measured": t_peer_sub, "all_curation": curation},
        "ratios": {"sampling_over_all_curation": t_sample / curation,
                   "peer_minhash_over_our_signatures": t_peer / times["near_dedup_signatures"]},
        "watermark_flag_rate": float(np.mean(z >= 4)),
    }
    print(f"all curation steps: {curation:.2f} s vs sampling {t_sample:.2f} s "
          f"(sampling / curation = {t_sample / curation:.2f}); MinHash signatures "
          f"{t_peer / times['near_dedup_signatures']:.0f}x datasketch")
    save("curation", result)


if __name__ == "__main__":
    main()
