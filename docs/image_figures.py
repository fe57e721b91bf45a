"""The README's image figures, from the stored runs of the image studies.

  python docs/image_figures.py     # after running studies/images_*.toml into runs/

docs/images_vae.png: digits fading (replicate 0's sample grids, generation by generation,
under replace, accumulate and fresh data) beside FID, recall and the largest class share of
every chain. docs/images_more.png: the sampling-bias and diffusion studies.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
import modelcollapse as mc  # noqa: E402

RUNS = ROOT / "runs"


def cell_folders(run: str) -> dict[str, Path]:
    """label -> cell folder of a stored run."""
    labels = json.loads((RUNS / run / "manifest.json").read_text())["cells"]
    return {label: RUNS / run / "cells" / key for key, label in labels.items()}


def strip(grid_png: Path, rows: int = 2) -> np.ndarray:
    """The first ``rows`` rows of digits of a stored 8x8 grid, as a grey array."""
    from PIL import Image
    img = np.asarray(Image.open(grid_png).convert("L"), dtype=float) / 255.0
    return img[: 1 + rows * (img.shape[0] - 1) // 8]


def fading(ax, folder: Path, title: str) -> None:
    grids = sorted((folder / "grids").glob("gen-*.png"))
    rows = [strip(g) for g in grids]
    ax.imshow(np.concatenate(rows, axis=0), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    h = rows[0].shape[0]
    ax.set_yticks([h * i + h / 2 for i in range(len(rows))], [f"gen {i}" for i in range(len(rows))])
    ax.set_xticks([])
    ax.set_title(title, fontsize=10)


def chains(ax, df, metric: str, ref: float | None = None) -> None:
    sub = df[df.metric == metric]
    for i, (label, cell) in enumerate(sub.groupby("label", sort=False)):
        piv = cell.pivot(index="generation", columns="replicate", values="value")
        color = f"C{i}"
        ax.plot(piv.index, piv.to_numpy(), color=color, lw=0.7, alpha=0.45)
        ax.plot(piv.index, piv.mean(axis=1), color=color, lw=2.2, label=label.split(" · ", 1)[-1])
    if ref is not None:
        ax.axhline(ref, color="0.5", ls=":", lw=1.2, label="real vs real")
    ax.set_title(metric, fontsize=10)
    ax.set_xlabel("generation")


def reference(run: str, metric: str) -> float | None:
    """The metric's real-vs-real value (the same for every cell of a run on one corpus)."""
    from modelcollapse.report.truth import truth_value
    from modelcollapse.runs.store import RunStore
    return truth_value(RunStore(RUNS / run).read_study().cells[0], metric)


NAMES = {"real_fraction=0.5 · real_source=fresh": "fresh (half fresh real)"}


def short(label: str) -> str:
    name = label.split(" · ", 1)[-1] if label.count(" · ") == 1 and "=" not in label.split(" · ")[-1] else label
    return NAMES.get(name, name)


def vae_figure(out: Path) -> None:
    folders = cell_folders("images_vae")
    df = mc.load(RUNS / "images_vae")
    df["label"] = df["label"].map(lambda s: short(s.split(" · ", 1)[1]) if " · " in s else s)
    fig = plt.figure(figsize=(13, 10))
    grid = fig.add_gridspec(2, 3, height_ratios=[1.5, 1])
    for i, (label, folder) in enumerate(folders.items()):
        name = label.split(" · ", 1)[1] if " · " in label else label
        fading(fig.add_subplot(grid[0, i]), folder, short(name))
    for j, metric in enumerate(("fid", "recall", "class_share_max")):
        ax = fig.add_subplot(grid[1, j])
        chains(ax, df, metric, reference("images_vae", metric))
        if j == 0:
            ax.legend(fontsize=8)
    fig.suptitle("VAE on real 8x8 digits: replicate 0's samples per generation (top); every "
                 "chain (thin) and their mean (thick), real vs real dotted (bottom)", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print("wrote", out)


def more_figure(out: Path) -> None:
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, (run, metric) in zip(axes, [("images_sampling", "precision"), ("images_sampling", "recall"),
                                        ("images_diffusion", "fid"), ("images_diffusion", "recall")]):
        if not (RUNS / run).is_dir():
            ax.set_axis_off()
            continue
        chains(ax, mc.load(RUNS / run), metric, reference(run, metric))
        ax.set_title(f"{run.split('_', 1)[1]}: {metric}", fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print("wrote", out)


if __name__ == "__main__":
    vae_figure(ROOT / "docs" / "images_vae.png")
    more_figure(ROOT / "docs" / "images_more.png")
