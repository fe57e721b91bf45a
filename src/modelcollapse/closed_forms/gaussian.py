"""Exact expectations for the Gaussian family beyond replace: accumulate, accumulate-subsample,
mixing with real data (fresh, or the same real points every generation: Bertrand et al.'s
setting) and their steady states, the Dey & Donoho bound, and E[W2^2] under replace.

Per coordinate of a truth N(mu*, sigma^2 I): v_g = E[s2_g] (the fitted variance, divisor
N - ddof) and r_g = E[(mu_g - mu*)^2]; ``mean_error`` and ``cov_trace`` are d times these.
Every recursion below is exact: it takes expectations of the sums of squares that the fit
computes, using only that a sample of m points from a model with variance s2 has a mean with
conditional variance s2/m and a within-sample scatter with conditional mean (m-1) s2, and
that pooling two groups adds n1 n2/(n1+n2) times their squared mean difference.
Generation 0 (n = 1 fit) is the fit on the real data.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln


def accumulate(sigma2: float, m: int, generations: int, ddof: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(v, r) per generation 0..G-1 under accumulate (all data kept; M new synthetic points
    per generation; generation g fits (g+1) M points).

    The pooled scatter grows by E = v_{k-1} (M - 1 + k/(k+1)) per generation, and the mean
    error is a martingale sum, e_k = e_{k-1} + u_k/(k+1) with E u_k^2 = v_{k-1}/M, so
    r = sigma^2/M + sum_{k>=1} v_{k-1} / (M (k+1)^2): close to sigma^2/M sum 1/i^2 and below
    (pi^2/6) sigma^2/M (Dey & Donoho 2024)."""
    v, r = np.empty(generations), np.empty(generations)
    scatter = (m - 1) * sigma2
    v[0], r[0] = scatter / (m - ddof), sigma2 / m
    for k in range(1, generations):
        scatter += v[k - 1] * (m - 1 + k / (k + 1))
        v[k] = scatter / ((k + 1) * m - ddof)
        r[k] = r[k - 1] + v[k - 1] / (m * (k + 1) ** 2)
    return v, r


def accumulate_mean_sq_simple(sigma2: float, m: int, n: np.ndarray) -> np.ndarray:
    """sigma^2/M sum_{i=1}^n 1/i^2: the accumulate mean error when every sampler has the
    true variance (Kazdan et al. 2024; the exact form is ``accumulate``)."""
    n = np.atleast_1d(np.asarray(n, dtype=int))
    return sigma2 / m * np.cumsum(1.0 / np.arange(1, n.max() + 1) ** 2)[n - 1]


def dey_donoho_bound(sigma2: float, m: int) -> float:
    """(pi^2/6) sigma^2/M: under accumulate the error stays within pi^2/6 of one fit on real
    data (Dey & Donoho 2024)."""
    return np.pi**2 / 6 * sigma2 / m


def accumulate_subsample(sigma2: float, m: int, generations: int, keep: int = 0,
                         ddof: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(v, r) under accumulate-subsample (Kazdan et al. 2024): every generation adds M synthetic
    points to a pool that starts with the M real ones, and the next model fits a uniform
    subset of ``keep`` (0: M) points of the whole pool, without replacement.

    Pool scatter P, pool size N_k = (k+1) M, subsample-mean variance q = P/(N-1) (1/K)(1-K/N),
    pool-mean error rho: P_k = P_{k-1} + (M-1) v_{k-1} + (N_{k-1} M / N_k)(v_{k-1}/M + q_{k-1}),
    v_k = (K-1)/(K-ddof) P_k/(N_k-1), rho_k = rho_{k-1} + (M/N_k)^2 (q_{k-1} + v_{k-1}/M),
    r_k = rho_k + q_k."""
    k_keep = keep or m
    v, r = np.empty(generations), np.empty(generations)
    pool, size = (m - 1) * sigma2, m
    q, rho = 0.0, sigma2 / m
    v[0], r[0] = pool / (m - ddof), rho
    for k in range(1, generations):
        new = size + m
        pool += (m - 1) * v[k - 1] + (size * m / new) * (v[k - 1] / m + q)
        rho += (m / new) ** 2 * (q + v[k - 1] / m)
        size = new
        unbiased = pool / (size - 1)
        v[k] = (k_keep - 1) / (k_keep - ddof) * unbiased
        q = unbiased / k_keep * (1.0 - k_keep / size)
        r[k] = rho + q
    return v, r


def mix(sigma2: float, n_real: int, n_synthetic: int, generations: int, ddof: int = 0,
        real_source: str = "fresh", first: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(v, r, dist0) per generation when every later training set holds ``n_real`` real
    points and ``n_synthetic`` points sampled from the previous model.

    real_source 'fresh': new real points every generation; generation 0 fits ``first``
    real points (default n_real + n_synthetic). 'fixed': the same n_real real points every
    generation, and generation 0 is the fit on them alone (Bertrand et al. 2024's setting,
    lambda = n_synthetic / n_real); then the fixed real mean's error eps enters every
    generation, tracked through c_g = E[(mu_g - mu*) eps]. dist0 = E[(mu_g - mu_0)^2], the
    distance of the mean to the generation-0 model's (Bertrand et al.'s quantity; under
    'fresh', mu_0 is the first fit's mean). See ``steady_state`` for the limits."""
    k, s = n_real, n_synthetic
    n = k + s
    fixed = real_source == "fixed"
    m0 = k if fixed else (first or n)
    v, r, dist0 = np.empty(generations), np.empty(generations), np.empty(generations)
    v[0], r[0], dist0[0] = (m0 - 1) / (m0 - ddof) * sigma2, sigma2 / m0, 0.0
    c = sigma2 / m0          # E[(mu_g - mu*)(mu_0 - mu*)]
    for g in range(1, generations):
        # E[(xbar_real - xbar_synthetic)^2]: the fixed real mean is correlated with mu_{g-1}.
        gap = (sigma2 / k if k else 0.0) + (v[g - 1] / s if s else 0.0) + r[g - 1] \
            - (2 * c if fixed else 0.0)
        scatter = (k - 1) * sigma2 * (k > 0) + (s - 1) * v[g - 1] * (s > 0) + (k * s / n) * gap
        v[g] = scatter / (n - ddof)
        real_term = (k / n) ** 2 * sigma2 / k if k else 0.0
        syn_term = (s / n) ** 2 * (r[g - 1] + v[g - 1] / s) if s else 0.0
        if fixed:
            r[g] = real_term + syn_term + 2 * (k / n) * (s / n) * c
            c = (k / n) * sigma2 / k + (s / n) * c
        else:
            r[g] = real_term + syn_term
            c = (s / n) * c       # fresh real points are independent of mu_0
        dist0[g] = r[g] - 2 * c + sigma2 / m0
    return v, r, dist0


def steady_state(sigma2: float, n_real: int, n_synthetic: int, ddof: int = 0,
                 real_source: str = "fresh", tol: float = 1e-14) -> tuple[float, float]:
    """(v*, r*): the limits of ``mix`` as generations grow (the recursion is affine with a
    contraction factor of at most s/(k+s) per generation, iterated here to ``tol``)."""
    g = 64
    while True:
        v, r, _ = mix(sigma2, n_real, n_synthetic, g, ddof, real_source)
        if abs(v[-1] - v[-2]) < tol * max(1.0, v[-1]) and abs(r[-1] - r[-2]) < tol * max(1.0, r[-1]):
            return float(v[-1]), float(r[-1])
        if g > 2**20:
            raise ValueError("the mix recursion does not settle (no real data?)")
        g *= 2


def replace_w2_squared(sigma2: float, m: int, n: np.ndarray, ddof: int = 0,
                       temperature: float = 1.0) -> np.ndarray:
    """E[W2^2] between the n-th 1-D fit and the truth under replace:
    E(mu - mu*)^2 + E s2 - 2 sigma E s + sigma^2, with s_n = sigma tau^(n-1) prod_i
    sqrt(chi2_{M-1}/(M-ddof)) and E sqrt(chi2_nu) = sqrt(2) Gamma((nu+1)/2)/Gamma(nu/2)."""
    n = np.asarray(n, dtype=float)
    c = (m - 1) / (m - ddof)
    ratio = c * temperature**2
    mean_sq = sigma2 / m * (n if np.isclose(ratio, 1.0) else (1.0 - ratio**n) / (1.0 - ratio))
    var = sigma2 * c**n * temperature ** (2 * (n - 1))
    root = np.exp(0.5 * np.log(2.0 / (m - ddof)) + gammaln(m / 2.0) - gammaln((m - 1) / 2.0))
    sd = np.sqrt(sigma2) * root**n * temperature ** (n - 1)
    return mean_sq + var - 2 * np.sqrt(sigma2) * sd + sigma2
