"""Bertrand et al. (2024)'s stability bound for iterative retraining with real data, in the
setting the project simulates exactly: the Gaussian under ``mix`` with a fixed real set.

The general statement. Retraining on the real data plus a share lambda of data sampled from
the last model defines a map theta_t -> theta_{t+1}: the infinite-sample map G plus a
statistical error. When G is a contraction with Lipschitz constant rho < 1 around the
real-data fit theta* (Bertrand et al. show rho <= lambda (1 + L eps / alpha) under their
assumptions: L-Lipschitz likelihood gradients, alpha-strong concavity, eps the model's
distance to the data) and each step's statistical error is at most e, then

    ||theta_t - theta*|| <= rho^t ||theta_0 - theta*|| + e (1 - rho^t) / (1 - rho)

(triangle inequality over the steps; :func:`stability_bound`). The error to the optimum
stays bounded by e / (1 - rho) for ever, while with rho >= 1 nothing is promised.

What is checked here (``tests/test_stability.py``). The Gaussian family with the same n_r
real points every generation plus n_s = lambda n_r synthetic ones, generation 0 the fit on
the real points alone: theta* is generation 0's model. For its **mean** the retraining
map is affine, mu_{t+1} = (1 - rho) mu_0 + rho m_t with m_t the synthetic sample's mean,
so rho = n_s / (n_r + n_s) = lambda / (1 + lambda) exactly (< 1 for every lambda, and below
the paper's lambda (1 + L eps/alpha) whatever its constants), and the statistical error of
step t is rho (m_t - mu_t), of root mean square rho sqrt(E tr Sigma_t / n_s). With the norm
of L2 over chains, ||X|| = sqrt(E |X|^2), the bound holds for sqrt(E |mu_t - mu_0|^2),
with e = rho max_{j<t} sqrt(d E[s2_j] / n_s) from the exact E[s2] recursion
(``gaussian.mix``), and by the triangle inequality sqrt(E |mu_t - mu_true|^2) <=
sqrt(d sigma^2 / n_r) + the same bound. Its limit, lambda sqrt(d v / n_s), exceeds the exact
stationary distance rho sqrt(d v / n_s) / sqrt(1 - rho^2) by sqrt(1 + 2 lambda): the steps'
errors are uncorrelated, which the triangle inequality ignores. Not checked: the covariance
part of the parameter distance (w2_to_gen0 includes it), other families, and the paper's
constants L, alpha, eps, which are not derived here.
"""

from __future__ import annotations

import numpy as np

from . import gaussian


def stability_bound(rate: float, step_error: np.ndarray | float, start: float,
                    t: np.ndarray) -> np.ndarray:
    """rate^t start + step_error (1 - rate^t) / (1 - rate) per t (inf where rate >= 1):
    the bound on ||theta_t - theta*|| for a map with Lipschitz constant ``rate`` and
    statistical error at most ``step_error`` per step (an array: its value at each t)."""
    t = np.asarray(t, dtype=float)
    if rate >= 1.0:
        return np.full(t.shape, np.inf)
    return rate**t * start + np.asarray(step_error) * (1.0 - rate**t) / (1.0 - rate)


def retraining_rate(n_real: int, n_synthetic: int) -> float:
    """lambda / (1 + lambda) = n_s / (n_r + n_s): the exact Lipschitz constant of the mean's
    retraining map under a mix with a fixed real set."""
    return n_synthetic / (n_real + n_synthetic)


def gaussian_fixed_mix(sigma2: float, dim: int, n_real: int, n_synthetic: int,
                       generations: int, ddof: int = 0) -> dict[str, np.ndarray]:
    """The bound and the exact values, per generation g = 0..G-1, for the Gaussian (truth
    N(0, sigma2 I_dim)) under mix with the same n_real points every generation:

    bound_gen0 : Bertrand's bound on sqrt(E |mu_g - mu_0|^2).
    bound_truth : sqrt(dim sigma2 / n_real) + bound_gen0, on sqrt(E |mu_g - mu_true|^2).
    exact_gen0 : sqrt(E |mu_g - mu_0|^2) from the exact recursion (``gaussian.mix``).
    rate, step_error : rho and the statistical error bound e used at each g.
    """
    if n_synthetic < 1 or n_real < 2:
        raise ValueError("the bound needs n_real >= 2 and n_synthetic >= 1")
    v, _, dist0 = gaussian.mix(sigma2, n_real, n_synthetic, generations, ddof, "fixed")
    rho = retraining_rate(n_real, n_synthetic)
    g = np.arange(generations)
    # e at generation g: the largest step error among steps 0..g-1 (v[0] at g = 0, unused).
    noise = np.sqrt(dim * np.maximum.accumulate(v) / n_synthetic)
    step = rho * np.concatenate([[noise[0]], noise[:-1]])
    bound = stability_bound(rho, step, 0.0, g)
    return {"bound_gen0": bound, "bound_truth": np.sqrt(dim * sigma2 / n_real) + bound,
            "exact_gen0": np.sqrt(dim * dist0), "rate": np.full(generations, rho),
            "step_error": step}
