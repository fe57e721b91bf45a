"""Redraw the README's multi-study figures from run folders (run the studies first).

  .venv/bin/python docs/figures.py            # reads runs/<study>, writes docs/*.png
  .venv/bin/python docs/figures.py transformer_cpu   # only docs/transformer_cpu.png
  .venv/bin/python docs/figures.py designs    # docs/mad_loops.png, docs/bertrand_stability.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from modelcollapse.api import load  # noqa: E402
from modelcollapse.report.plots import _draw  # noqa: E402
from modelcollapse.runs.store import RunStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# (study folder, metric) panels of the curation figure.
CURATION = [("synthetic_share", "perplexity_real"), ("synthetic_share", "tail_coverage"),
            ("filter_quality", "perplexity_real"), ("filter_quality", "tail_coverage"),
            ("filter_detectors", "perplexity_real"), ("filter_detectors", "detector_recall"),
            ("recovery", "perplexity_real"), ("recovery", "tail_coverage"),
            ("verifier_breakdown", "error_rate")]


TRANSFORMER = [("transformer_cpu", "perplexity_real"), ("transformer_cpu", "perplexity_gen0"),
               ("transformer_cpu", "tail_coverage"), ("transformer_cpu", "validation_loss"),
               ("transformer_cpu", "self_bleu")]


def stored_sequences(cell_dir: Path, generation: int, replicate: int, tokenizer) -> list:
    """The sequences model ``generation`` of a chain wrote (stored as text), re-encoded to
    ids; a blank line (how a separator is written) becomes the separator again. Byte-level
    BPE restores the text exactly, though not always the model's own segmentation of it."""
    import gzip
    import json

    import numpy as np
    path = cell_dir / "samples" / f"gen-{generation:03d}"
    out = []
    for f in sorted(path.glob("replicates-*.jsonl.gz")):
        for line in gzip.open(f, "rt", encoding="utf-8"):
            row = json.loads(line)
            if row["replicate"] != replicate:
                continue
            ids: list[int] = []
            for i, piece in enumerate(tokenizer.encode_many(row["text"].split("\n\n"))):
                ids += ([tokenizer.eos_id] if i else []) + piece
            if len(ids) >= 2:
                out.append(np.array(ids, dtype=np.int64))
    return out


def sequence_histogram(ax, name: str, policy: str, generations=(0, 2, 4, 5)) -> None:
    """Shumailov et al.'s Fig. 1b on our run: the perplexity of each sequence generation g
    wrote, under the chain's generation-0 model (replicate 0)."""
    import numpy as np
    from tokenizers import Tokenizer

    from modelcollapse.neural import network, score
    from modelcollapse.neural.tokenizer import BPETokenizer
    folder = ROOT / "runs" / name
    cell = next(c for c in RunStore(folder).read_study().cells if c.policy == policy)
    cell_dir = folder / "cells" / cell.key
    tok = BPETokenizer(Tokenizer.from_file(str(cell_dir / "models" / "tokenizer" / "tokenizer.json")))
    model = network.load(cell_dir / "models" / "replicate-0" / "gen-000", "cpu")
    bins = np.linspace(0.5, 4.0, 71)   # log10 of the perplexity
    for g in generations:
        seqs = stored_sequences(cell_dir, g, 0, tok)
        if not seqs:
            continue
        sums, counts = score.sequence_nll(model, seqs, "cpu")
        ppl = np.exp(sums / np.maximum(counts, 1))
        ax.hist(np.log10(ppl), bins=bins, histtype="step", density=True, lw=1.6,
                label=f"generation {g} (median {np.median(ppl):.0f})")
    ax.set_xticks([1, 2, 3, 4], ["10", "100", "1,000", "10,000"])
    ax.set_xlabel("perplexity of a sequence under the generation-0 model (log scale)")
    ax.set_ylabel("density (per log10 unit)")
    ax.set_title(f"{name}, {policy}: sequences by generation", fontsize=10)
    ax.legend(fontsize=8)


def chains(ax, name: str, metric: str) -> None:
    """Each chain as a thin line and the mean over chains as a thick one, per policy (with
    two or three chains a t-interval is too wide to read; the chains themselves say more)."""
    df = load(ROOT / "runs" / name)
    df = df[df.metric == metric]
    for i, (label, part) in enumerate(df.groupby("label", sort=True)):
        color = f"C{i}"
        wide = part.pivot_table(index="generation", columns="replicate", values="value")
        ax.plot(wide.index, wide.values, color=color, lw=0.8, alpha=0.5)
        ax.plot(wide.index, wide.mean(axis=1), color=color, lw=2.2, label=label)
    ax.set_xlabel("generation")
    ax.set_title(f"{name}: {metric}", fontsize=10)
    ax.legend(fontsize=8)


def transformer_figure(out: Path) -> None:
    fig, axes = plt.subplots(2, 3, figsize=(15.0, 7.2))
    for ax, (name, metric) in zip(axes.ravel(), TRANSFORMER):
        chains(ax, name, metric)
    beam = ROOT / "runs" / "transformer_beam" / "study.toml"
    sequence_histogram(axes.ravel()[-1], "transformer_beam" if beam.exists() else "transformer_cpu",
                       "replace")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


def draw(panels, out: Path, cols: int = 3) -> None:
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 3.6 * rows), squeeze=False)
    for ax, (name, metric) in zip(axes.ravel(), panels):
        folder = ROOT / "runs" / name
        study = RunStore(folder).read_study()
        _draw(ax, study, load(folder), study.cells[0].family, metric)
        ax.set_title(f"{name}: {metric}", fontsize=10)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


def kl_to_gen0(df):
    """Per replicate and generation, KL(model g || model 0) of a 1-D Gaussian chain, from its
    stored mean and variance (Bertrand et al.'s distance to the generation-0 model)."""
    import numpy as np
    w = df[df.metric.isin(["mean", "variance"])].pivot_table(
        index=["label", "replicate", "generation"], columns="metric", values="value",
        observed=True).reset_index()
    g0 = w[w.generation == 0].set_index(["label", "replicate"])[["mean", "variance"]]
    w = w.join(g0.rename(columns={"mean": "mean0", "variance": "var0"}), on=["label", "replicate"])
    kl = 0.5 * (w["variance"] / w["var0"] + (w["mean"] - w["mean0"]) ** 2 / w["var0"] - 1
                + np.log(w["var0"] / w["variance"]))
    return w.assign(metric="kl_to_gen0", value=kl)[["label", "generation", "replicate", "metric", "value"]]


def designs_figure() -> None:
    """docs/mad_loops.png and docs/bertrand_stability.png from runs/mad_loops and
    runs/bertrand_stability (the paired Gaussian studies of mix with absolute sizes)."""
    import modelcollapse as mc
    mad = load(ROOT / "runs" / "mad_loops")
    mad = mad.assign(label=mad["label"].astype(str).str.replace(" · real_source=fixed", " fixed")
                     .str.replace(" · real_source=fresh", " fresh"))
    fig, axes = plt.subplots(1, 3, figsize=(15.0, 3.9))
    mc.plot(mad, "variance", ax=axes[0])
    mc.plot(mad, "kl_to_truth", stat="median", ax=axes[1])
    mc.plot(mad, "mean_error", stat="median", ax=axes[2])
    axes[1].set_yscale("log")
    axes[2].set_yscale("log")
    for ax in axes[1:]:
        ax.get_legend().remove()
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "mad_loops.png", dpi=90)
    print(f"wrote {ROOT / 'docs' / 'mad_loops.png'}")
    ber = load(ROOT / "runs" / "bertrand_stability")
    lam = {f"n_synthetic={k}": f"lambda={k / 100:g}" for k in (0, 25, 50, 100, 200, 400)}
    ber = ber.assign(label=ber["label"].astype(str).map(lam))
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.9))
    mc.plot(kl_to_gen0(ber), "kl_to_gen0", ax=axes[0])
    mc.plot(ber, "kl_to_truth", ax=axes[1])
    axes[1].get_legend().remove()
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "bertrand_stability.png", dpi=90)
    print(f"wrote {ROOT / 'docs' / 'bertrand_stability.png'}")


if __name__ == "__main__":
    if sys.argv[1:] == ["designs"]:
        designs_figure()
        sys.exit(0)
    if sys.argv[1:] == ["transformer_cpu"]:
        transformer_figure(ROOT / "docs" / "transformer_cpu.png")
        sys.exit(0)
    missing = [n for n, _ in CURATION if not (ROOT / "runs" / n / "study.toml").exists()]
    if missing:
        sys.exit(f"run these studies first (modelcollapse run studies/X.toml --out runs/X): "
                 f"{', '.join(sorted(set(missing)))}")
    draw(CURATION, ROOT / "docs" / "curation.png")
    if (ROOT / "runs" / "transformer_cpu" / "study.toml").exists():
        transformer_figure(ROOT / "docs" / "transformer_cpu.png")
