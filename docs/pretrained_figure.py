"""The figure of studies/pretrained_cpu.toml: per policy, perplexity on the real test blocks,
the median per-sequence perplexity under generation 0, and distinct-2, against generation.

Usage: python docs/pretrained_figure.py RUN_FOLDER [OUT.png]   (default docs/pretrained_cpu.png)
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import pandas as pd  # noqa: E402

PANELS = [("perplexity_real", "perplexity of real test blocks"),
          ("seq_ppl_gen0_p50", "median sequence perplexity\nunder generation 0"),
          ("distinct_2", "distinct-2 of generated text")]


def main(run: str, out: str = "docs/pretrained_cpu.png") -> None:
    df = pd.read_parquet(Path(run) / "metrics.parquet")
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.4))
    for ax, (metric, title) in zip(axes, PANELS):
        sel = df[df.metric == metric]
        for i, (policy, part) in enumerate(sel.groupby("policy")):
            color = f"C{i}"
            for _, chain in part.groupby("replicate"):
                chain = chain.sort_values("generation")
                ax.plot(chain.generation, chain.value, color=color, lw=0.8, alpha=0.5)
            mean = part.groupby("generation").value.mean()
            ax.plot(mean.index, mean.values, color=color, lw=2.2, marker="o", label=policy)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("generation")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes[0].legend(fontsize=8)
    chains, gens = df.replicate.nunique(), df.generation.nunique()
    fig.suptitle("SmolLM2-135M fine-tuned on its own continuations (embedded corpus, CPU; "
                 f"{chains} chains per policy, {gens} generations; thin: each chain)", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(*sys.argv[1:])
