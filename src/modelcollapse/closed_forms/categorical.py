"""Wright-Fisher forms for the categorical memorizer (counts resampled every generation).

Under replace with n draws per generation, the count of any one outcome is a Wright-Fisher
chain: c_g ~ Binomial(n, c_{g-1}/n), whatever the other outcomes do (the multinomial's
margins are binomial). Generation 0's count is Binomial(n0, p_i) from the truth. Every form
below is exact (a finite Markov chain on 0..n), beside the diffusion approximations of the
literature: mean absorption time -2n[p ln p + (1-p) ln(1-p)] (Kimura) and mean time to loss,
given loss, -2n p ln p / (1-p), about 2c ln(n/c) generations for an outcome seen c times
(n = 400: c = 1 -> 11.4 exact, 12.0 diffusion; c = 10 -> 74.2 and 75.7). Suresh et al.
(2025) summarize this as a count-c symbol being forgotten after a number of generations of
the order of c (up to the logarithm).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom


def transition(n: int) -> np.ndarray:
    """(n+1, n+1) Wright-Fisher matrix Q[c, c'] = Binomial(c'; n, c/n)."""
    c = np.arange(n + 1)
    return binom.pmf(c[None, :], n, c[:, None] / n)


def lost_by(n: int, generations: int) -> np.ndarray:
    """(generations, n+1) P(count 0 at or before g resamplings | count c now), g = 0..G-1."""
    q = transition(n) if generations > 1 else None
    d = (np.arange(n + 1) == 0).astype(float)
    out = np.empty((generations, n + 1))
    for g in range(generations):
        out[g] = d
        if g + 1 < generations:
            d = q @ d
    return out


def outcome_loss(p: np.ndarray, n: int, generations: int, n0: int | None = None) -> np.ndarray:
    """(G, K) P(outcome i has probability 0 in the model of generation g) for truth
    probabilities p (K,), generation 0 fitted on n0 (default n) real draws."""
    n0 = n0 or n
    start = binom.pmf(np.arange(n0 + 1)[None, :], n0, np.asarray(p)[:, None])   # (K, n0+1)
    if n0 == n:
        return (start @ lost_by(n, generations).T).T
    # first step from n0 real counts to n-draw resampling: count c0 of n0 -> Bin(n, c0/n0)
    step = binom.pmf(np.arange(n + 1)[None, :], n, np.arange(n0 + 1)[:, None] / n0)
    lost = lost_by(n, generations)
    out = np.empty((generations, len(p)))
    out[0] = start[:, 0]
    for g in range(1, generations):
        out[g] = start @ (step @ lost[g - 1])
    return out


def support_size(p: np.ndarray, n: int, generations: int) -> np.ndarray:
    """(G,) E[number of outcomes with non-zero probability] under replace."""
    return (1.0 - outcome_loss(p, n, generations)).sum(axis=1)


def missing_mass(p: np.ndarray, n: int, generations: int) -> np.ndarray:
    """(G,) E[true mass of the outcomes the model lost] under replace."""
    return outcome_loss(p, n, generations) @ np.asarray(p)


def absorption_time(n: int) -> np.ndarray:
    """(n+1,) exact E[generations until the count is 0 or n | count c] for two outcomes
    (or one outcome against the rest): t = (I - Q_transient)^-1 1."""
    q = transition(n)[1:n, 1:n]
    t = np.zeros(n + 1)
    t[1:n] = np.linalg.solve(np.eye(n - 1) - q, np.ones(n - 1))
    return t


def absorption_time_diffusion(n: int, p: np.ndarray) -> np.ndarray:
    """Kimura's diffusion approximation -2n[p ln p + (1-p) ln(1-p)] of the mean absorption
    time from frequency p."""
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where((p > 0) & (p < 1), p * np.log(p) + (1 - p) * np.log1p(-p), 0.0)
    return -2.0 * n * h


def loss_time_diffusion(n: int, p: np.ndarray) -> np.ndarray:
    """-2n p ln p / (1 - p): the diffusion approximation of ``loss_time`` at frequency p."""
    p = np.asarray(p, dtype=float)
    return -2.0 * n * p * np.log(p) / (1.0 - p)


def loss_time(n: int) -> np.ndarray:
    """(n+1,) exact E[generations until the count hits 0 | it does, count c now]: with
    h(c) = 1 - c/n the loss probability, u = (I - Q_transient)^-1 h gives E[T 1{loss}] and the
    conditional mean is u/h (0 at c = 0; undefined, NaN, at c = n)."""
    q = transition(n)[1:n, 1:n]
    c = np.arange(1, n)
    h = 1.0 - c / n
    u = np.linalg.solve(np.eye(n - 1) - q, h)
    out = np.full(n + 1, np.nan)
    out[0] = 0.0
    out[1:n] = u / h
    return out


def mix_collision(s0: float, n_real: int, n_synthetic: int, generations: int,
                  first: int | None = None) -> np.ndarray:
    """(G,) E[sum_i q_i^2] when each training set holds n_real fresh real draws and
    n_synthetic draws from the previous model (M = n_real + n_synthetic); generation 0 fits
    ``first`` (default M) real draws. M^2 S_g = k(1 - S0) + k^2 S0 + 2 k s S0 + s + (s^2 - s) S_{g-1};
    with k = 0 this is Seddik et al.'s 1 - (1 - 1/n)^m (1 - S0)."""
    k, s = n_real, n_synthetic
    m = k + s
    out = np.empty(generations)
    out[0] = s0 + (1.0 - s0) / (first or m)
    for g in range(1, generations):
        out[g] = (k * (1 - s0) + k * k * s0 + 2 * k * s * s0 + s + (s * s - s) * out[g - 1]) / m**2
    return out


def mix_collision_steady(s0: float, n_real: int, n_synthetic: int) -> float:
    """The limit of ``mix_collision``: [k(1-S0) + k^2 S0 + 2ks S0 + s] / (M^2 - s^2 + s)."""
    k, s = n_real, n_synthetic
    m = k + s
    return (k * (1 - s0) + k * k * s0 + 2 * k * s * s0 + s) / (m * m - s * s + s)


def top_k_replace(p: np.ndarray, n: int, k: int, generations: int, draws: int = 4000,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """E[support size] and E[missing mass] per generation under replace when the sampler
    keeps the model's k most likely outcomes (the rank-k cut of "A tale of tails").

    Generation 0 is the empirical distribution of n real draws, uncut: exact. Its sampler
    cuts it to the top-k set S (ties: lower index) and renormalizes, q_i = c_i / C_S; from
    then on the model has at most k outcomes, so the cut never binds again and each kept
    outcome's count is a Wright-Fisher chain started by Binomial(n, q_i): P(lost by
    generation g | q_i) = sum_j Bin(j; n, q_i) lost_by[g-1, j] exactly, and an outcome
    outside S is lost at generation 1 for good. So for g >= 1 the missing mass is at least
    the truth's mass beyond its own top k (sum_{i>k} p_i for a sorted truth) in every chain:
    the plateau of the paper. The law of S and C_S has no closed form, so the expectation
    over generation 0 is a Monte Carlo average over ``draws`` multinomial count vectors
    (common to every generation), exact given each.

    Returns
    -------
    support, support_se, missing, missing_se : (G,) means and their Monte Carlo standard
        errors (0 at generation 0, which is exact).
    """
    p = np.asarray(p, dtype=float)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, p, size=draws)                             # (D, K)
    order = np.argsort(-counts, axis=1, kind="stable")[:, :k]             # the kept outcomes
    c = np.take_along_axis(counts, order, axis=1)                         # (D, k)
    total = c.sum(axis=1, keepdims=True)                                  # C_S (>= 1)
    pk = p[order]                                                         # (D, k) truth mass kept
    support = np.empty((draws, generations))
    missing = np.empty((draws, generations))
    lost0 = (1.0 - p) ** n
    support[:, 0], missing[:, 0] = (1.0 - lost0).sum(), (p * lost0).sum()
    if generations > 1:
        lost = lost_by(n, generations - 1)                                # (G-1, n+1)
        # P(lost by g) depends on (c, C) only: integers in 0..n, computed once per pair.
        pair = c * (n + 1) + total                                        # (D, k)
        uniq, inv = np.unique(pair, return_inverse=True)
        cu, tu = np.divmod(uniq, n + 1)
        loss = np.empty((uniq.size, generations - 1))
        j = np.arange(n + 1)
        for lo in range(0, uniq.size, 2048):                              # bounded memory
            x = (cu[lo:lo + 2048] / tu[lo:lo + 2048])[:, None]
            loss[lo:lo + 2048] = binom.pmf(j[None, :], n, x) @ lost.T
        loss = loss[inv.reshape(pair.shape)]                              # (D, k, G-1)
        alive = 1.0 - loss
        support[:, 1:] = alive.sum(axis=1)
        missing[:, 1:] = 1.0 - np.einsum("dk,dkg->dg", pk, alive)
    root = np.sqrt(draws)
    support_se, missing_se = support.std(axis=0, ddof=1) / root, missing.std(axis=0, ddof=1) / root
    support_se[0] = missing_se[0] = 0.0   # generation 0 is exact (the same for every draw)
    return support.mean(axis=0), support_se, missing.mean(axis=0), missing_se


def top_k_plateau(p: np.ndarray, k: int) -> float:
    """The truth's mass outside its k most likely outcomes: the least missing mass any model
    with at most k outcomes can have (every chain under the rank-k cut, from generation 1)."""
    return float(np.sort(np.asarray(p, dtype=float))[::-1][k:].sum())
