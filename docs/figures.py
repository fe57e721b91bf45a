"""Redraw the README's multi-study figures from run folders (run the studies first).

  .venv/bin/python docs/figures.py            # reads runs/<study>, writes docs/*.png
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


if __name__ == "__main__":
    missing = [n for n, _ in CURATION if not (ROOT / "runs" / n / "study.toml").exists()]
    if missing:
        sys.exit(f"run these studies first (modelcollapse run studies/X.toml --out runs/X): "
                 f"{', '.join(sorted(set(missing)))}")
    draw(CURATION, ROOT / "docs" / "curation.png")
