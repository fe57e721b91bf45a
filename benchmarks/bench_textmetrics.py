"""Text metrics: self-BLEU vs sacrebleu and nltk, Vendi vs the vendi-score package.

Self-BLEU on 10,000 generated-like sentences (``--sentences``): sentences sampled from a
word bigram model (maximum likelihood, sentence start/end symbols) of CPython's bundled
documentation text ``pydoc_data.topics.topics``, with a fixed seed.

  ours       ``self_bleu_scores(sentences)``: every sentence against the 9,999 others,
             tokenization included; best of ``--repeats``.
  sacrebleu  the one-vs-rest loop ``sacrebleu.sentence_bleu(s_i, others)`` (defaults:
             '13a', 'exp', effective order). One call re-extracts the n-grams of all 9,999
             references, so only the first ``--peer-hyps`` hypotheses are timed and the
             time is extrapolated linearly to all sentences (every call does the same work).
  nltk       ``nltk.translate.bleu_score.sentence_bleu(others, s_i,
             smoothing_function=SmoothingFunction().method3, auto_reweigh=True)`` x 100 on
             the same 13a tokens (tokenization not timed, in nltk's favour): method3 is
             NIST's geometric smoothing, sacrebleu's 'exp', and auto_reweigh is its
             effective order, so the values must agree. Timed on ``--nltk-hyps``
             hypotheses, extrapolated the same way.
  Values: max |ours - peer| over the hypotheses the peer scored (0-100 scale).

Vendi on 10,000 x 384 embedding-like vectors (``--n``, ``--d``): 50 Gaussian clusters in
384-D plus noise, seed 0.

  ours            ``vendi_score(X)``: dual form, eigenvalues of the 384 x 384 X^T X / n.
  vendi score_X   the package's default kernel path (normalize rows, K = X X^T, n x n
                  eigvalsh): O(n^3). Timed at ``--kernel-sizes`` (first rows of X) and
                  extrapolated to n by t ~ n^3 from the largest size, unless
                  ``--full-kernel`` times it at n itself.
  vendi score_dual  the package's own dual form, for reference.
  Values: relative difference to ours at each size compared.

Usage: .venv/bin/python benchmarks/bench_textmetrics.py [--sentences 10000] [--full-kernel]
Needs: sacrebleu, nltk, vendi-score (pip install sacrebleu nltk vendi-score).
Writes benchmarks/results/textmetrics.json.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from modelcollapse.textmetrics import self_bleu_scores, tokenize, vendi_score

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from provenance import code_version, machine, save  # noqa: E402

WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?|[0-9]+|[^\sA-Za-z0-9]")
SENT_END = re.compile(r"(?<=[.!?])\s+")


def bigram_sentences(n: int, seed: int = 0, max_len: int = 60) -> list[str]:
    """n sentences sampled from a word bigram model of pydoc_data.topics."""
    from pydoc_data.topics import topics
    text = " ".join(topics[k] for k in sorted(topics))
    succ: dict[str, list[str]] = {}
    for sent in SENT_END.split(text):
        toks = ["<s>", *WORD.findall(sent), "</s>"]
        if len(toks) < 4:
            continue
        for a, b in zip(toks[:-1], toks[1:]):
            succ.setdefault(a, []).append(b)
    table = {a: np.array(b, dtype=object) for a, b in succ.items()}
    rng = np.random.default_rng(seed)
    out: list[str] = []
    while len(out) < n:
        words, prev = [], "<s>"
        while len(words) < max_len:
            options = table[prev]
            prev = options[rng.integers(options.size)]
            if prev == "</s>":
                break
            words.append(prev)
        if len(words) >= 3:
            out.append(" ".join(words))
    return out


def best_of(fn, repeats: int):
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), value


def bench_self_bleu(args) -> dict:
    import nltk
    import sacrebleu
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    sents = bigram_sentences(args.sentences, seed=0)
    n = len(sents)
    toks = tokenize(sents)
    lengths = np.array([len(t) for t in toks])
    self_bleu_scores(sents[:200])                                   # warm-up
    ours_s, ours = best_of(lambda: self_bleu_scores(sents), args.repeats)

    hyps = range(args.peer_hyps)
    t0 = time.perf_counter()
    sb = np.array([sacrebleu.sentence_bleu(sents[i], sents[:i] + sents[i + 1:]).score
                   for i in hyps])
    sb_per = (time.perf_counter() - t0) / len(hyps)

    smooth = SmoothingFunction().method3
    nhyps = range(args.nltk_hyps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        nl = np.array([100 * sentence_bleu(toks[:i] + toks[i + 1:], toks[i],
                                           smoothing_function=smooth, auto_reweigh=True)
                       for i in nhyps])
        nl_per = (time.perf_counter() - t0) / len(nhyps)
    return {
        "sentences": n, "tokens": int(lengths.sum()),
        "mean_tokens_per_sentence": float(lengths.mean()),
        "self_bleu": float(ours.mean()),
        "ours_s": ours_s,
        "sacrebleu": {"hypotheses_timed": len(hyps), "s_per_hypothesis": sb_per,
                      "extrapolated_s": sb_per * n, "version": sacrebleu.__version__,
                      "max_abs_diff": float(np.abs(ours[: len(hyps)] - sb).max())},
        "nltk": {"hypotheses_timed": len(nhyps), "s_per_hypothesis": nl_per,
                 "extrapolated_s": nl_per * n, "version": nltk.__version__,
                 "max_abs_diff": float(np.abs(ours[: len(nhyps)] - nl).max())},
    }


def embeddings(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, d))
    return centres[rng.integers(50, size=n)] + 0.8 * rng.normal(size=(n, d))


def bench_vendi(args) -> dict:
    from vendi_score import vendi

    x = embeddings(args.n, args.d)
    vendi_score(x[:500])                                             # warm-up
    ours_s, ours = best_of(lambda: vendi_score(x), args.repeats)
    dual_s, dual = best_of(lambda: float(vendi.score_dual(x)), args.repeats)
    sizes = [args.n] if args.full_kernel else args.kernel_sizes
    kernel = []
    for m in sizes:
        t0 = time.perf_counter()
        theirs = float(vendi.score_X(x[:m]))
        secs = time.perf_counter() - t0
        mine = vendi_score(x[:m])
        kernel.append({"n": m, "s": secs, "value": theirs, "ours": mine,
                       "rel_diff": abs(theirs - mine) / mine})
        print(f"  vendi score_X n={m}: {secs:.2f} s (ours {mine:.6f}, theirs {theirs:.6f})")
    last = kernel[-1]
    extrapolated = last["s"] * (args.n / last["n"]) ** 3
    return {
        "n": args.n, "d": args.d, "vendi": ours, "ours_s": ours_s,
        "score_dual": {"s": dual_s, "value": dual, "rel_diff": abs(dual - ours) / ours},
        "score_X": {"timed": kernel, "measured_at_n": last["n"] == args.n,
                    "s_at_n": last["s"] if last["n"] == args.n else extrapolated,
                    "how": ("measured" if last["n"] == args.n else
                            f"extrapolated from n={last['n']} by (n/{last['n']})^3")},
        "version": importlib.metadata.version("vendi-score"),
    }


def _extrapolated(sb: dict, peer: str) -> str:
    timed = sb[peer]["hypotheses_timed"]
    return f"{timed} hyps timed, x {sb['sentences'] / timed:.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sentences", type=int, default=10_000)
    ap.add_argument("--peer-hyps", type=int, default=20)
    ap.add_argument("--nltk-hyps", type=int, default=5)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--kernel-sizes", type=int, nargs="+", default=[1000, 2000, 4000])
    ap.add_argument("--full-kernel", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    print("self-BLEU ...", flush=True)
    sb = bench_self_bleu(args)
    print("Vendi ...", flush=True)
    vs = bench_vendi(args)

    rows = [
        (f"self-BLEU, {sb['sentences']:,} sentences", "ours", sb["ours_s"], "measured", None),
        ("", "sacrebleu one-vs-rest", sb["sacrebleu"]["extrapolated_s"],
         _extrapolated(sb, "sacrebleu"), sb["sacrebleu"]["max_abs_diff"]),
        ("", "nltk sentence_bleu", sb["nltk"]["extrapolated_s"],
         _extrapolated(sb, "nltk"), sb["nltk"]["max_abs_diff"]),
        (f"Vendi, {vs['n']:,} x {vs['d']}", "ours (dual)", vs["ours_s"], "measured", None),
        ("", "vendi-score score_X (n x n)", vs["score_X"]["s_at_n"], vs["score_X"]["how"],
         vs["score_X"]["timed"][-1]["rel_diff"]),
        ("", "vendi-score score_dual", vs["score_dual"]["s"], "measured",
         vs["score_dual"]["rel_diff"]),
    ]
    print(f"\n{'task':<28} {'method':<28} {'seconds':>10} {'vs ours':>9}  {'value diff':>10}  how")
    base = {0: sb["ours_s"], 3: vs["ours_s"]}
    for i, (task, method, secs, how, diff) in enumerate(rows):
        ours_s = base[0] if i < 3 else base[3]
        d = "-" if diff is None else f"{diff:.1e}"
        print(f"{task:<28} {method:<28} {secs:>10.3f} {secs / ours_s:>8.1f}x  {d:>10}  {how}")
    print(f"\nself-BLEU = {sb['self_bleu']:.4f}; Vendi = {vs['vendi']:.6f}")
    print("value diff: self-BLEU max |ours - peer| (0-100 scale) over the hypotheses the peer "
          "scored; Vendi relative difference (score_X at its largest timed n)")
    goals = {"self_bleu_under_5s": sb["ours_s"] < 5.0, "vendi_under_2s": vs["ours_s"] < 2.0,
             "self_bleu_equal_1e-9": max(sb["sacrebleu"]["max_abs_diff"],
                                         sb["nltk"]["max_abs_diff"]) < 1e-9,
             "vendi_equal_1e-9": max(vs["score_dual"]["rel_diff"],
                                     vs["score_X"]["timed"][-1]["rel_diff"]) < 1e-9}
    print("goals:", goals)
    save("textmetrics", {
        "benchmark": "textmetrics", "code": code_version(),
        "machine": machine("numpy", "scipy") | {
            lib: importlib.metadata.version(lib) for lib in ("sacrebleu", "nltk", "vendi-score")},
        "args": vars(args), "self_bleu": sb, "vendi": vs, "goals": goals})


if __name__ == "__main__":
    main()
