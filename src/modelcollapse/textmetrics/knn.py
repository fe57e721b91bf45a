"""k-NN precision, recall, density and coverage of generated embeddings against real ones.

Precision and recall: Kynkaanniemi et al. 2019 ("Improved precision and recall metric for
assessing generative models"); density and coverage: Naeem et al. 2020 ("Reliable fidelity
and diversity metrics for generative models"). Definitions and the strict ``<`` follow the
authors' reference code (the ``prdc`` package); distances are Euclidean.

Let r_i be the distance from real point i to its k-th nearest *other* real point, and r'_j
the same among the fake points. With M fake and N real points:

- precision = share of fake points inside some real ball: any_i d(f_j, x_i) < r_i;
- recall    = share of real points inside some fake ball: any_j d(x_i, f_j) < r'_j;
- density   = (1 / (k M)) sum_j #{i : d(f_j, x_i) < r_i}   (can exceed 1);
- coverage  = share of real points whose ball holds a fake point: min_j d(x_i, f_j) < r_i.

Distances are computed block by block (at most ``max_block_bytes`` of float64 distances
live at once), so memory stays bounded whatever N and M; time is O(N M d).
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .embedding import _matrix

#: Default memory bound for one block of distances (64 MiB).
MAX_BLOCK_BYTES = 64 * 2**20


def _blocks(n_rows: int, n_cols: int, max_block_bytes: int):
    step = max(1, int(max_block_bytes) // (8 * max(n_cols, 1)))
    for start in range(0, n_rows, step):
        yield start, min(n_rows, start + step)


def _sq_dists(a, a_sq, b, b_sq) -> np.ndarray:
    d = a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0, out=d)


def knn_radii(x: np.ndarray, k: int, max_block_bytes: int = MAX_BLOCK_BYTES) -> np.ndarray:
    """Squared distance from each row of ``x`` to its k-th nearest other row."""
    x_sq = np.einsum("ij,ij->i", x, x)
    out = np.empty(x.shape[0])
    for lo, hi in _blocks(x.shape[0], x.shape[0], max_block_bytes):
        d = _sq_dists(x[lo:hi], x_sq[lo:hi], x, x_sq)
        d[np.arange(hi - lo), np.arange(lo, hi)] = 0.0    # self, exactly
        out[lo:hi] = np.partition(d, k, axis=1)[:, k]     # k+1-th smallest, self included
    return out


def knn_precision_recall_density_coverage(real, fake, k: int = 5,
                                          max_block_bytes: int = MAX_BLOCK_BYTES) -> dict:
    """Precision, recall, density and coverage of ``fake`` (M, d) against ``real`` (N, d).

    ``k``: the neighbour defining each ball (Naeem et al. use 5); both sets need more than
    k rows. Returns ``{"precision", "recall", "density", "coverage", "k"}``; see the module
    docstring for the definitions.
    """
    k = int(k)
    if k < 1:
        raise UserError(f"k must be >= 1, got {k}")
    x = _matrix(real, "real", min_rows=k + 1)
    f = _matrix(fake, "fake", min_rows=k + 1)
    if x.shape[1] != f.shape[1]:
        raise UserError(f"real and fake must have the same width, got {x.shape[1]} "
                        f"and {f.shape[1]}")
    r_real = knn_radii(x, k, max_block_bytes)
    r_fake = knn_radii(f, k, max_block_bytes)
    x_sq = np.einsum("ij,ij->i", x, x)
    f_sq = np.einsum("ij,ij->i", f, f)
    in_real_balls = np.zeros(f.shape[0], dtype=np.int64)   # per fake: real balls holding it
    for lo, hi in _blocks(f.shape[0], x.shape[0], max_block_bytes):
        d = _sq_dists(f[lo:hi], f_sq[lo:hi], x, x_sq)
        in_real_balls[lo:hi] = (d < r_real[None, :]).sum(axis=1)
    recalled = np.zeros(x.shape[0], dtype=bool)
    covered = np.zeros(x.shape[0], dtype=bool)
    for lo, hi in _blocks(x.shape[0], f.shape[0], max_block_bytes):
        d = _sq_dists(x[lo:hi], x_sq[lo:hi], f, f_sq)
        recalled[lo:hi] = (d < r_fake[None, :]).any(axis=1)
        covered[lo:hi] = d.min(axis=1) < r_real[lo:hi]
    return {"precision": float((in_real_balls > 0).mean()),
            "recall": float(recalled.mean()),
            "density": float(in_real_balls.sum() / (k * f.shape[0])),
            "coverage": float(covered.mean()),
            "k": k}
