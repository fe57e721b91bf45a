"""Closed forms from the literature, for plot overlays and for the tests.

Convention: ``n`` is the number of fits so far, so generation g (0 = the first fit on real
data) has n = g + 1. ``M`` is the sample size per generation.

Sources: Shumailov et al., "AI models collapse when trained on recursively generated data"
(Nature 2024, Thm 3.1 and SI); Gerstgrasser et al. 2024 and Dohmatob, Feng and Kempe 2024,
"Model collapse demystified" (linear regression); Seddik et al. 2024 (categorical
resampling); Dohmatob, Feng, Yang, Charton and Kempe 2024, "A tale of tails" (Zipf tail
cut); Feng et al. 2024 (verifier-pruned synthetic data). The longer derivations (regression
with ridge, spectra and fresh designs; Gaussian pooling policies; Wright-Fisher) live in
``closed_forms/``; README's Theory section lists every checked form with its test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import digamma

from .capabilities import GaussianClosedForm, HasCoefficients, HasProbabilities
from .closed_forms import categorical as wright_fisher
from .closed_forms import gaussian as gaussian_forms
from .closed_forms import regression


def gaussian_variance(sigma2: float, m: int, n: np.ndarray, ddof: int = 0,
                      temperature: float = 1.0) -> np.ndarray:
    """E[s2_n] after n refits on M samples: sigma^2 c^n tau^(2(n-1)) with c = (M-1)/(M-ddof).

    With ddof 0 (MLE) and tau 1 this is sigma^2 ((M-1)/M)^n; the unbiased fit keeps sigma^2.
    The temperature tau scales each sampler's standard deviation (first fit: real data).
    """
    n = np.asarray(n, dtype=float)
    c = (m - 1) / (m - ddof)
    return sigma2 * c**n * temperature ** (2 * (n - 1))


def gaussian_mean_sq(sigma2: float, m: int, n: np.ndarray, ddof: int = 0,
                     temperature: float = 1.0) -> np.ndarray:
    """E[(mu_n - mu*)^2] = (sigma^2/M) sum_{i=0}^{n-1} (c tau^2)^i (per coordinate)."""
    n = np.asarray(n, dtype=float)
    ratio = (m - 1) / (m - ddof) * temperature**2
    if np.isclose(ratio, 1.0):
        return sigma2 / m * n
    return sigma2 / m * (1.0 - ratio**n) / (1.0 - ratio)


def gaussian_unbiased_log_variance(sigma2: float, m: int, n: np.ndarray) -> np.ndarray:
    """E[ln s2_n] = ln sigma^2 + n [psi((M-1)/2) + ln(2/(M-1))] for the unbiased refit: it
    drifts to minus infinity, so s2 -> 0 almost surely (Shumailov et al. 2024, Thm 3.1)."""
    n = np.asarray(n, dtype=float)
    return np.log(sigma2) + n * (digamma((m - 1) / 2.0) + np.log(2.0 / (m - 1)))


def gaussian_log_det(sigma2: float, m: int, n: np.ndarray, dim: int = 1, ddof: int = 0,
                     temperature: float = 1.0) -> np.ndarray:
    """E[ln det S_n] of the fitted covariance after n refits on M samples, truth sigma^2 I_d.

    Each refit multiplies the covariance by W/(M - ddof) with W ~ Wishart(M-1, I), whose
    log-determinant has mean sum_{i<d} psi((M-1-i)/2) + d ln 2, so
    E[ln det S_n] = d ln sigma^2 + n [sum_i psi((M-1-i)/2) + d ln(2/(M-ddof))] + 2 d (n-1) ln tau.
    For d = 1 and ddof 1 this is Shumailov et al.'s E[ln s2] -> -inf. Unlike E[s2], whose
    average over chains is dominated by rare chains at long horizons (s2 is a product of
    many chi-square factors), this is what a mean over a few thousand chains estimates well.
    """
    n = np.asarray(n, dtype=float)
    step = digamma((m - 1 - np.arange(dim)) / 2.0).sum() + dim * np.log(2.0 / (m - ddof))
    return dim * np.log(sigma2) + n * step + 2 * dim * (n - 1) * np.log(temperature)


def gaussian_unbiased_sample_variance(sigma2: float, m: int, n: np.ndarray) -> np.ndarray:
    """Var(X^n) = sigma^2 (1 + n/M): the variance of a draw from the n-th unbiased fit,
    over chains (Shumailov et al. 2024, SI)."""
    return sigma2 * (1.0 + np.asarray(n, dtype=float) / m)


def regression_constant(sigma2: float, d: int, t: int) -> float:
    """sigma^2 d / (T - d - 1), the error of one least-squares fit; needs T >= d + 2."""
    if t < d + 2:
        raise ValueError(f"closed form needs T >= d + 2 (T = {t}, d = {d})")
    return sigma2 * d / (t - d - 1)


def regression_replace_error(sigma2: float, d: int, t: int, n: np.ndarray) -> np.ndarray:
    """E||w_n - w*||^2 = n sigma^2 d/(T-d-1) under replace: errors add up (Gerstgrasser et al.)."""
    return np.asarray(n, dtype=float) * regression_constant(sigma2, d, t)


def regression_accumulate_error(sigma2: float, d: int, t: int, n: np.ndarray) -> np.ndarray:
    """sigma^2 d/(T-d-1) sum_{i=1}^{n} 1/i^2 under accumulate: bounded by pi^2/6 times one fit."""
    n = np.atleast_1d(np.asarray(n, dtype=int))
    partial = np.cumsum(1.0 / np.arange(1, max(int(n.max()), 1) + 1) ** 2)
    return regression_constant(sigma2, d, t) * partial[n - 1]


def collision_probability(s0: float, n_draws: int, m: np.ndarray) -> np.ndarray:
    """E[S_m] = 1 - (1 - 1/n)^m (1 - S_0) after m resamplings of n draws (Seddik et al. 2024)."""
    return 1.0 - (1.0 - 1.0 / n_draws) ** np.asarray(m, dtype=float) * (1.0 - s0)


def zipf_tail_cut_error(beta: float, support: int, t: float, k: int | None = None) -> float:
    """sum_i p_i (1 - q_i)^T for Zipf(beta) data p on ``support`` outcomes and a memorizer
    trained on T draws from q = p cut at rank k and renormalized (k None: no cut). As T
    grows the error plateaus at the truth's mass beyond rank k (Dohmatob, Feng, Yang, Charton and Kempe 2024, "A tale of tails")."""
    p = np.arange(1, support + 1, dtype=float) ** -beta
    p /= p.sum()
    q = p.copy()
    if k is not None:
        q[k:] = 0.0
        q /= q.sum()
    return float((p * np.exp(t * np.log1p(-np.minimum(q, 1.0)))).sum())


def verifier_pruned_error(p: float, phi: float, psi: float) -> float:
    """p' = p psi / (p psi + (1 - p) phi): error rate after a verifier keeps correct samples
    with rate phi and wrong ones with rate psi (Feng et al. 2024)."""
    return p * psi / (p * psi + (1.0 - p) * phi)


def verifier_breakdown(phi: float, psi: float) -> float:
    """p* = 1 / (1 + psi/phi): the generator error rate at which the pruned error p' reaches
    1/2, so that training on pruned data gives the right majority below p* and the wrong
    one above it (Feng et al. 2024)."""
    return 1.0 / (1.0 + psi / phi)


def regression_setting(params: dict[str, Any]) -> regression.Setting:
    """The regression closed forms' view of a cell's params."""
    eig = None
    if params.get("spectrum", "isotropic") != "isotropic":
        eig = tuple(np.arange(1, params["dim"] + 1, dtype=float) ** -params["spectrum_exponent"])
    return regression.Setting(
        params["dim"], params["n_train"], params.get("n_gen", 0) or params["n_train"], params["noise"],
        params.get("ridge", 0.0), eig, params.get("design", "fixed"),
        params.get("temperature", 1.0), params.get("truncation", 1.0))


def regression_curve(policy: str, params: dict[str, Any], generations: int,
                     n_samples: int | None = None) -> "Curve | None":
    """E[test error] of a regression cell: exact, or exact given X and averaged over designs
    by Monte Carlo (with its standard error). Policies: replace, accumulate, and mix with
    fresh real data."""
    sizes = None
    if policy == "mix" and params.get("real_source") == "fresh" and not params.get("n_gen"):
        sizes = mix_sizes(params, n_samples or params["n_train"])
        if sizes[0] == 0 or sizes[1] == 0:
            return None
    elif policy not in ("replace", "accumulate"):
        return None
    try:
        values, se, label = regression.expected_error(regression_setting(params), policy, generations, sizes)
    except ValueError as e:
        return Curve(None, reason=f"closed form undefined: {e}")
    return Curve(values, label, stderr=se)


@dataclass(frozen=True)
class Curve:
    """A theory overlay: ``values`` per generation, or None with the ``reason`` it is absent."""

    values: np.ndarray | None
    label: str = ""
    reason: str = ""
    stderr: np.ndarray | None = None   # Monte Carlo standard error, where values are estimated


Overlay = Callable[[str, dict, int, str, np.ndarray], "Curve | None"]

#: The registered overlays: (capabilities the family must provide, function), in order.
OVERLAYS: list[tuple[tuple[type, ...], Overlay]] = []


def overlay(*requires: type) -> Callable[[Overlay], Overlay]:
    """Register ``fn(policy, params, n_samples, metric, generations) -> Curve | None`` for
    families that provide ``requires`` (capabilities); it returns None where it has nothing
    to say (another metric, policy or setting). A plugin registers its own the same way."""
    def wrap(fn: Overlay) -> Overlay:
        OVERLAYS.append((tuple(requires), fn))
        return fn
    return wrap


def curve(family: Any, policy: str, params: dict[str, Any], n_samples: int, metric: str,
          generations: np.ndarray) -> Curve | None:
    """The closed-form expectation of ``metric`` per generation for one cell, a Curve with
    the reason when a closed form exists for the setting but is undefined, or None when the
    literature has no closed form for this metric and setting. ``family``: a registered
    family's name or class; overlays are chosen by its capabilities."""
    from .capabilities import satisfies
    if isinstance(family, str):
        from .catalog import FAMILIES
        family = FAMILIES.get(family)
    for requires, fn in OVERLAYS:
        if satisfies(family, requires):
            out = fn(policy, params, n_samples, metric, np.asarray(generations))
            if out is not None:
                return out
    return None


def _replace(policy: str, params: dict[str, Any]) -> bool:
    return policy == "replace" or (policy == "mix" and params.get("real_fraction") == 0.0)


def _plain_sampling(params: dict[str, Any]) -> bool:
    return params.get("truncation", 1.0) == 1.0 and params.get("temperature", 1.0) == 1.0


@overlay(GaussianClosedForm)
def _gaussian_overlay(policy: str, params: dict[str, Any], n_samples: int, metric: str,
                      generations: np.ndarray) -> Curve | None:
    n, tau = generations + 1, params.get("temperature", 1.0)
    if params.get("truncation", 1.0) != 1.0:
        return None
    if _replace(policy, params):
        sigma2, d, m = params["truth_std"] ** 2, params["dim"], n_samples
        ddof = 0 if params["estimator"] == "mle" else 1
        if metric == "variance" and d == 1:
            return Curve(gaussian_variance(sigma2, m, n, ddof, tau), "E[s2] (Shumailov et al.)")
        if metric == "cov_trace":
            return Curve(d * gaussian_variance(sigma2, m, n, ddof, tau), "E[tr S] (Shumailov et al.)")
        if metric == "cov_logdet" and m > d:
            return Curve(gaussian_log_det(sigma2, m, n, d, ddof, tau), "E[ln det S] (Wishart)")
        if metric == "mean_error":
            return Curve(d * gaussian_mean_sq(sigma2, m, n, ddof, tau), "E[|mu-mu*|^2]")
        return None
    if tau == 1.0:
        return _gaussian_pooled(policy, params, n_samples, metric, n)
    return None


@overlay(HasCoefficients)
def _regression_overlay(policy: str, params: dict[str, Any], n_samples: int, metric: str,
                        generations: np.ndarray) -> Curve | None:
    if metric != "test_error":
        return None
    n = generations + 1
    c = regression_curve(policy, params, int(n.max()), n_samples)
    if c is None or c.values is None:
        return c
    return Curve(c.values[n - 1], c.label, stderr=None if c.stderr is None else c.stderr[n - 1])


@overlay(HasProbabilities)
def _categorical_overlay(policy: str, params: dict[str, Any], n_samples: int, metric: str,
                         generations: np.ndarray) -> Curve | None:
    if params.get("top_k"):
        return _top_k(policy, params, n_samples, metric, generations)
    if not _plain_sampling(params):
        return None
    return _categorical(policy, _replace(policy, params), params, n_samples, metric, generations + 1)


def _top_k(policy: str, params: dict[str, Any], n: int, metric: str,
           generations: np.ndarray) -> Curve | None:
    """The rank-k cut under replace: support size and missing mass, exact given generation
    0's cut and averaged over generation 0 by Monte Carlo (closed_forms/categorical.py)."""
    if metric not in ("support_size", "missing_mass") or not _replace(policy, params) \
            or not _plain_sampling(params):
        return None
    if n > WRIGHT_FISHER_MAX:
        return Curve(None, reason=f"Wright-Fisher form computed for n_samples <= {WRIGHT_FISHER_MAX}")
    support, support_se, missing, missing_se = wright_fisher.top_k_replace(
        _truth_probs(params), n, int(params["top_k"]), int(generations.max()) + 1, TOP_K_DRAWS)
    label = "rank-k cut: exact given generation 0, Monte Carlo over it (A tale of tails)"
    if metric == "support_size":
        return Curve(support[generations], label, stderr=support_se[generations])
    return Curve(missing[generations], label, stderr=missing_se[generations])


def _truth_probs(params: dict[str, Any]) -> np.ndarray:
    if params["truth"] == "uniform":
        return np.full(params["n_outcomes"], 1.0 / params["n_outcomes"])
    p = np.arange(1, params["n_outcomes"] + 1, dtype=float) ** -params["zipf_beta"]
    return p / p.sum()


def mix_sizes(params: dict[str, Any], n_samples: int) -> tuple[int, int]:
    """(real, synthetic) points per training set of a mix cell."""
    if params.get("n_real") is not None:
        return int(params["n_real"]), int(params["n_synthetic"])
    k = int(round(params.get("real_fraction", 0.0) * n_samples))
    return k, n_samples - k


def _per_coordinate(metric: str, d: int, v: np.ndarray, r: np.ndarray) -> np.ndarray | None:
    if metric == "variance" and d == 1:
        return v
    if metric == "cov_trace":
        return d * v
    if metric == "mean_error":
        return d * r
    return None


def _gaussian_pooled(policy: str, params: dict[str, Any], m: int, metric: str,
                     n: np.ndarray) -> Curve | None:
    """Accumulate, accumulate-subsample and fresh-real mix: exact recursions (closed_forms/gaussian)."""
    sigma2, d, ddof = params["truth_std"] ** 2, params["dim"], 0 if params["estimator"] == "mle" else 1
    g = int(n.max())
    if policy == "accumulate":
        v, r = gaussian_forms.accumulate(sigma2, m, g, ddof)
        label = "exact; mean error < (pi^2/6) s2/M (Dey & Donoho)"
    elif policy == "accumulate_subsample":
        v, r = gaussian_forms.accumulate_subsample(sigma2, m, g, params.get("keep", 0), ddof)
        label = "exact (accumulate-subsample)"
    elif policy == "mix" and params.get("real_source") == "fresh":
        k, s = mix_sizes(params, m)
        if s == 0 or k == 0:
            return None
        v, r, _ = gaussian_forms.mix(sigma2, k, s, g, ddof, "fresh", first=m)
        label = "exact, fresh real data -> steady state"
    elif policy == "mix" and params.get("n_real"):
        # The same n_real points every generation, generation 0 fitted on them alone
        # (Bertrand et al.'s setting, lambda = n_synthetic / n_real).
        k, s = mix_sizes(params, m)
        if s == 0:
            return None
        v, r, _ = gaussian_forms.mix(sigma2, k, s, g, ddof, "fixed")
        label = "exact, fixed real data (Bertrand et al.'s setting)"
    else:
        return None
    values = _per_coordinate(metric, d, v, r)
    return None if values is None else Curve(values[n - 1], label)


def _categorical(policy: str, replace: bool, params: dict[str, Any], m: int, metric: str,
                 n: np.ndarray) -> Curve | None:
    p = _truth_probs(params)
    s0 = float((p**2).sum())
    if metric == "collision_probability" and replace:
        return Curve(collision_probability(s0, m, n), "1-(1-1/n)^m (1-S0) (Seddik et al.)")
    if metric == "collision_probability" and policy == "mix" and params.get("real_source") == "fresh":
        k, s = mix_sizes(params, m)
        values = wright_fisher.mix_collision(s0, k, s, int(n.max()), first=m)
        return Curve(values[n - 1], "exact, fresh real data -> steady state")
    if metric in ("support_size", "missing_mass") and replace:
        if m > WRIGHT_FISHER_MAX:
            return Curve(None, reason=f"Wright-Fisher form computed for n_samples <= {WRIGHT_FISHER_MAX}")
        fn = wright_fisher.support_size if metric == "support_size" else wright_fisher.missing_mass
        return Curve(fn(p, m, int(n.max()))[n - 1], "Wright-Fisher, exact")
    return None


WRIGHT_FISHER_MAX = 3000   # the (n+1)^2 transition matrix: 72 MB at n = 3000
TOP_K_DRAWS = 2000         # generation-0 draws of the rank-k overlay (its standard error is drawn)
