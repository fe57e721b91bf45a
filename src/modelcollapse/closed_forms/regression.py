"""The exact expected test error of the regression chain (replace and accumulate).

Setting (see ``families/linear_regression.py``): generation 0 fits T real rows X_0 labelled
y_0 = X_0 w* + sigma e_0; generation k >= 1 fits data its predecessor labelled,
y_k = X_k w_{k-1} + sigma_s e_k on T0 rows X_k (the same rows for every k with a fixed
design, new rows with a fresh one), sigma_s = sigma * temperature * sqrt(v) where v is the
variance of the (truncated) standard noise. Write G_k = X_k'X_k and H = (G + ridge I)^+.

Replace (w_k = H_k X_k'y_k): with A_k = H_k G_k the mean b_k = A_k b_{k-1} (b_{-1} = w*) and
the noise covariance C_k = A_k C_{k-1} A_k' + sigma_k^2 H_k G_k H_k. For a fixed design
this is the closed form E[err | X] = ||(A^(g+1) - I) w*||^2 + sigma^2 sum_{k<=g} ||A^k B||_F^2,
B = H X'.

Accumulate (w_k = H_k s_k with H_k = (sum_{j<=k} G_j + ridge I)^+, s_k = sum_j X_j'y_j):
s_k = (I + G_k H_{k-1}) s_{k-1} + X_k'e_k, so its mean m_k and covariance V_k follow
m_k = M_k m_{k-1}, V_k = M_k V_{k-1} M_k' + sigma_k^2 G_k (m_0 = G_0 w*, V_0 = sigma^2 G_0),
and w_k has mean H_k m_k and covariance H_k V_k H_k.

The test error is ||w_k - w*||_Sigma^2, so E[err | designs] = (b_k - w*)'Sigma(b_k - w*)
+ tr(Sigma C_k). Averaged over designs it is exact in closed form where one is known
(ridge 0: Gerstgrasser et al.'s n sigma^2 d/(T-d-1) and sigma^2 d/(T-d-1) sum 1/i^2, any
spectrum, and the minimum-norm d > T + 1 forms derived in ``min_norm_*``), and a Monte Carlo
mean over designs with its standard error otherwise: the conditional expectation is exact,
only the design average is sampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri
from scipy.stats import norm

MC_FLOP_BUDGET = 3e8   # sizes the Monte Carlo over designs (a plot overlay stays ~1 s)


def truncated_noise_variance(truncation: float) -> float:
    """Var of a standard normal restricted to its central ``truncation`` mass."""
    if truncation >= 1.0:
        return 1.0
    z = ndtri(0.5 * (1.0 + truncation))
    return float(1.0 - 2.0 * z * norm.pdf(z) / truncation)


def eigh_small(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.linalg.eigh`` of a stack of small matrices on one BLAS thread: LAPACK's threads
    only contend on matrices this small (25x slower on a busy 2-core machine at d = 50)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:   # pragma: no cover - scikit-learn's dependency, normally present
        return np.linalg.eigh(a)
    with threadpool_limits(1, user_api="blas"):
        return np.linalg.eigh(a)


def pinv_sym(a: np.ndarray) -> np.ndarray:
    """(..., d, d) pseudo-inverse of symmetric PSD matrices, with the threshold the
    family's fit uses (``models.linear_regression.solve_ridge``)."""
    d = a.shape[-1]
    evals, evecs = eigh_small(a)
    tol = d * np.finfo(float).eps * np.abs(evals).max(axis=-1, keepdims=True) * 10
    inv = np.where(evals > tol, 1.0 / np.where(evals > tol, evals, 1.0), 0.0)
    return (evecs * inv[..., None, :]) @ np.swapaxes(evecs, -1, -2)


def conditional_error(grams: list[np.ndarray], w: np.ndarray, eig: np.ndarray, ridge: float,
                      noise_var: list[float], policy: str) -> np.ndarray:
    """(D, G) E[||w_g - w*||_Sigma^2 | designs] for D design draws and G generations.

    grams : G arrays of shape (D, d, d) (or (1, d, d) shared), G_k = X_k'X_k of the rows
        generation k is fitted on (k = 0: the real rows).
    w : (d,) w*. eig : (d,) the diagonal of Sigma. noise_var : G label-noise variances.
    policy : 'replace' or 'accumulate'.
    """
    d = len(w)
    eye = ridge * np.eye(d)
    out = []
    if policy == "replace":
        b = w[None, :]
        cov = np.zeros((1, d, d))
        for g, (gram, v) in enumerate(zip(grams, noise_var)):
            h = pinv_sym(gram + eye)
            a = h @ gram
            b = np.einsum("rij,rj->ri", a, np.broadcast_to(b, (len(a), d)))
            cov = a @ cov @ np.swapaxes(a, 1, 2) + v * (h @ gram @ h)
            out.append(_error(b, cov, w, eig))
    elif policy == "accumulate":
        total = grams[0]
        h = pinv_sym(total + eye)
        m = np.einsum("rij,j->ri", grams[0], w)
        vcov = noise_var[0] * grams[0]
        out.append(_error(np.einsum("rij,rj->ri", h, m), h @ vcov @ h, w, eig))
        for gram, v in zip(grams[1:], noise_var[1:]):
            step = np.eye(d) + gram @ h          # s_k = (I + G_k H_{k-1}) s_{k-1} + X_k'e_k
            m = np.einsum("rij,rj->ri", step, m)
            vcov = step @ vcov @ np.swapaxes(step, 1, 2) + v * gram
            total = total + gram
            h = pinv_sym(total + eye)
            out.append(_error(np.einsum("rij,rj->ri", h, m), h @ vcov @ h, w, eig))
    else:
        raise ValueError(f"no regression closed form for policy {policy}")
    return np.stack(out, axis=1)


def conditional_error_mix(gram0: np.ndarray, real: list[np.ndarray], synthetic: list[np.ndarray],
                          w: np.ndarray, eig: np.ndarray, ridge: float, noise_var: float,
                          synthetic_var: float) -> np.ndarray:
    """(D, G) E[err | designs] under mix with fresh real data: generation 0 fits the real
    rows of ``gram0``; generation g >= 1 fits k fresh real rows (Gram real[g-1]) labelled
    by w* and s rows (Gram synthetic[g-1]) labelled by w_{g-1}. Fresh real noise is
    independent of the past, so with H = (G_r + G_s + ridge I)^+:
    b_g = H (G_r w* + G_s b_{g-1}), C_g = H (sigma^2 G_r + G_s C_{g-1} G_s + sigma_s^2 G_s) H."""
    d = len(w)
    eye = ridge * np.eye(d)
    h = pinv_sym(gram0 + eye)
    b = np.einsum("rij,rjk,k->ri", h, gram0, w)
    cov = noise_var * (h @ gram0 @ h)
    out = [_error(b, cov, w, eig)]
    for g_r, g_s in zip(real, synthetic):
        g_r, g_s = np.broadcast_to(g_r, cov.shape), np.broadcast_to(g_s, cov.shape)
        h = pinv_sym(g_r + g_s + eye)
        b = np.einsum("rij,rj->ri", h, np.einsum("rij,j->ri", g_r, w) + np.einsum("rij,rj->ri", g_s, b))
        cov = h @ (noise_var * g_r + g_s @ cov @ g_s + synthetic_var * g_s) @ h
        out.append(_error(b, cov, w, eig))
    return np.stack(out, axis=1)


def _error(b: np.ndarray, cov: np.ndarray, w: np.ndarray, eig: np.ndarray) -> np.ndarray:
    """(D,) (b - w*)'Sigma(b - w*) + tr(Sigma C)."""
    return (((b - w) ** 2) * eig).sum(axis=1) + np.einsum("rii,i->r", cov, eig)


@dataclass(frozen=True)
class Setting:
    """The parameters of a regression cell that the expected error depends on."""

    dim: int
    n_train: int
    n_gen: int
    noise: float
    ridge: float = 0.0
    eig: tuple[float, ...] | None = None    # None: isotropic
    design: str = "fixed"
    temperature: float = 1.0
    truncation: float = 1.0

    @property
    def eigenvalues(self) -> np.ndarray:
        return np.ones(self.dim) if self.eig is None else np.asarray(self.eig)

    @property
    def synthetic_var(self) -> float:
        return self.noise**2 * self.temperature**2 * truncated_noise_variance(self.truncation)


def monte_carlo(s: Setting, policy: str, generations: int, n_designs: int | None = None,
                seed: int = 0, mix: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(G,) mean over design draws of the exact conditional expected error, and (G,) its
    standard error. Designs are drawn as the family draws them (see the module docstring
    of ``models.linear_regression``)."""
    d, t, t0 = s.dim, s.n_train, s.n_gen
    if n_designs is None:
        per_design = generations * (d**3 * 12 + d * d * max(t, t0) * 2)
        n_designs = int(np.clip(MC_FLOP_BUDGET / per_design, 200, 4000))
    rng = np.random.default_rng(seed)
    root = np.sqrt(s.eigenvalues)
    w = np.full(d, 1.0 / np.sqrt(d))
    length = max(t, t0)
    x = rng.standard_normal((n_designs, length, d)) * root
    g0 = np.swapaxes(x[:, :t], 1, 2) @ x[:, :t]
    if s.design == "fixed":
        xs = x[:, length - t0:]
        gen = np.swapaxes(xs, 1, 2) @ xs
        grams = [g0] + [gen] * (generations - 1)
    else:
        grams = [g0]
        for _ in range(generations - 1):
            xs = rng.standard_normal((n_designs, t0, d)) * root
            grams.append(np.swapaxes(xs, 1, 2) @ xs)
    if policy == "mix":
        err = _mix_error(s, x, rng, generations, mix, root, w)
        return err.mean(axis=0), err.std(axis=0, ddof=1) / np.sqrt(n_designs)
    noise = [s.noise**2] + [s.synthetic_var] * (generations - 1)
    err = conditional_error(grams, w, s.eigenvalues, s.ridge, noise, policy)
    return err.mean(axis=0), err.std(axis=0, ddof=1) / np.sqrt(n_designs)


def _gram_rows(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    rows = x[:, index]
    return np.swapaxes(rows, 1, 2) @ rows


def _mix_error(s: Setting, x: np.ndarray, rng: np.random.Generator, generations: int,
               sizes: tuple[int, int], root: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Designs as the family lays them under mix with fresh real data: a fixed design's
    real part is rows 0..k-1 and its synthetic part the last s rows (cyclically); a fresh
    design draws both anew each generation."""
    k, n_syn = sizes
    length = x.shape[1]
    g0 = _gram_rows(x, np.arange(s.n_train) % length)
    if s.design == "fixed":
        real = [_gram_rows(x, np.arange(k) % length)] * (generations - 1)
        syn = [_gram_rows(x, (length - n_syn + np.arange(n_syn)) % length)] * (generations - 1)
    else:
        real, syn = [], []
        for _ in range(generations - 1):
            xr = rng.standard_normal((len(x), k, s.dim)) * root
            xs = rng.standard_normal((len(x), n_syn, s.dim)) * root
            real.append(np.swapaxes(xr, 1, 2) @ xr)
            syn.append(np.swapaxes(xs, 1, 2) @ xs)
    return conditional_error_mix(g0, real, syn, w, s.eigenvalues, s.ridge, s.noise**2, s.synthetic_var)


def infinite_mean(s: Setting) -> str | None:
    """Why E[err] is infinite (ridge 0 with T or T0 in d-1..d+1), or None."""
    if s.ridge > 0:
        return None
    for name, n in (("n_train T", s.n_train), ("n_gen T0", s.n_gen)):
        if s.dim - 1 <= n <= s.dim + 1:
            return (f"E[test error] is infinite for ridge 0 with {name}={n} within 1 of "
                    f"dim={s.dim}")
    return None


def min_norm_replace(sigma2: float, d: int, t: int, t0: int, n: np.ndarray, design: str,
                     sigma2_s: float | None = None) -> np.ndarray:
    """E||w_n - w*||^2 after n minimum-norm fits on an isotropic design with d > T + 1 and
    d > T0 + 1, ||w*|| = 1 (derived here, checked by simulation in tests/test_regression.py).

    Each fit projects onto the row space of its design, a uniformly random subspace:
    E[P] = (T/d) I and E tr((XX')^-1) = T/(d-T-1). Fresh designs (independent projections):
    (1 - c_0 c^(n-1)) + sigma^2 c^(n-1) T/(d-T-1) + sigma_s^2 sum_{k=1}^{n-1} c^(n-1-k) T0/(d-T0-1)
    with c_0 = T/d, c = T0/d. A fixed design (T0 = T, one projection P = P^2):
    (1 - T/d) + n sigma^2 T/(d-T-1).
    """
    n = np.asarray(n, dtype=float)
    s2s = sigma2 if sigma2_s is None else sigma2_s
    if design == "fixed":
        if t0 != t:
            raise ValueError("the fixed-design minimum-norm form needs T0 = T")
        return (1.0 - t / d) + sigma2 * t / (d - t - 1) + (n - 1) * s2s * t / (d - t - 1)
    c0, c = t / d, t0 / d
    k = n - 1
    geo = np.where(np.isclose(c, 1.0), k, (1.0 - c**k) / (1.0 - c))
    return (1.0 - c0 * c**k) + sigma2 * c**k * t / (d - t - 1) + s2s * geo * t0 / (d - t0 - 1)


def min_norm_accumulate_fixed(sigma2: float, d: int, t: int, n: np.ndarray) -> np.ndarray:
    """E||w_n - w*||^2 under accumulate on one isotropic design with d > T + 1, ||w*|| = 1:
    the null space of X keeps its share 1 - T/d of w* for good, and inside the row space
    the stacked fits are Gerstgrasser et al.'s accumulate chain: (1 - T/d) +
    sigma^2 T/(d-T-1) sum_{i=1}^n 1/i^2 (derived here, checked by simulation)."""
    n = np.atleast_1d(np.asarray(n, dtype=int))
    partial = np.cumsum(1.0 / np.arange(1, max(int(n.max()), 1) + 1) ** 2)
    return (1.0 - t / d) + sigma2 * t / (d - t - 1) * partial[n - 1]


def ols_replace(sigma2: float, d: int, t: int, t0: int, n: np.ndarray,
                sigma2_s: float | None = None) -> np.ndarray:
    """sigma^2 d/(T-d-1) + (n-1) sigma_s^2 d/(T0-d-1): least squares (T, T0 > d + 1) adds one
    independent error per fit, whatever the spectrum (the Sigma-weighted error is that of
    whitened data) and whether the design is fixed or fresh (Gerstgrasser et al. 2024;
    Dohmatob, Feng and Kempe 2024 with T0 != T)."""
    n = np.asarray(n, dtype=float)
    s2s = sigma2 if sigma2_s is None else sigma2_s
    return sigma2 * d / (t - d - 1) + (n - 1) * s2s * d / (t0 - d - 1)


def expected_error(s: Setting, policy: str, generations: int,
                   mix: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(G,) E[test error] per generation 0..G-1, its standard error (None when exact) and a
    label naming the form. ``mix`` = (real, synthetic rows per generation) for policy
    'mix' with fresh real data. Raises ValueError when the expectation is infinite."""
    why = infinite_mean(s)
    if why:
        raise ValueError(why)
    if policy == "mix":
        if s.ridge == 0 and sum(mix) <= s.dim + 1:
            raise ValueError(f"E[test error] may be infinite for ridge 0 with {sum(mix)} rows per "
                             f"generation and dim={s.dim}")
        mean, se = monte_carlo(s, "mix", generations, mix=mix)
        return mean, se, "exact given X, Monte Carlo over designs (fresh real data)"
    n = np.arange(1, generations + 1)
    d, t, t0, s2 = s.dim, s.n_train, s.n_gen, s.noise**2
    biased = s.temperature != 1.0 or s.truncation != 1.0
    if s.ridge == 0 and t > d + 1 and t0 > d + 1:
        if policy == "replace":
            return (ols_replace(s2, d, t, t0, n, s.synthetic_var), None,
                    "s2 d/(T-d-1) + (n-1) s2 d/(T0-d-1) (Gerstgrasser et al.)")
        if s.design == "fixed" and t0 == t and not biased:
            return (s2 * d / (t - d - 1) * np.cumsum(1.0 / n**2), None,
                    "s2 d/(T-d-1) sum 1/i^2 (Gerstgrasser et al.)")
    if s.ridge == 0 and s.eig is None and d > t + 1 and d > t0 + 1:
        if policy == "replace" and (s.design == "fresh" or t0 == t):
            return (min_norm_replace(s2, d, t, t0, n, s.design, s.synthetic_var), None,
                    "min-norm: (1-T/d) + n s2 T/(d-T-1)" if s.design == "fixed"
                    else "min-norm, fresh designs (exact)")
        if policy == "accumulate" and s.design == "fixed" and t0 == t and not biased:
            return (min_norm_accumulate_fixed(s2, d, t, n), None,
                    "min-norm: (1-T/d) + s2 T/(d-T-1) sum 1/i^2")
    mean, se = monte_carlo(s, policy, generations)
    return mean, se, "exact given X, Monte Carlo over designs"
