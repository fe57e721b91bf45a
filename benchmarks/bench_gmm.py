"""GMM collapse chains: scikit-learn refitted in a Python loop vs our batched EM, plus fit
quality at equal data.

Setting: 2-D, 8 components, 1,000 samples per generation, 100 generations, 5 replicates
(``--replicates``, ``--generations``, ``--n-samples`` change it), replace policy, truth =
our ``gmm`` family's default ring (8 equal-weight components, radius 4, std 0.5).

Chains
  sklearn cold  per replicate, per generation: a new
                ``GaussianMixture(n_components=8, random_state=<int per generation>)``
                (k-means init, sklearn defaults), fitted on the current training set; the
                next training set is sampled from the fit with our own numpy generator.
  sklearn warm  the same with one ``GaussianMixture(..., warm_start=True)`` per replicate:
                each generation's EM starts from the previous fit.
  ours warm     ``run_cell`` on the gmm cell with ``params={"warm_start": True}`` (the
                family's default at commit d8ffb70).
  ours cold     the same cell with ``params={"warm_start": False}`` (k-means init every
                generation: the like-for-like peer of "sklearn cold").

Fit quality at equal data: ``--datasets`` datasets of n points (half from the truth, half
from randomly perturbed mixtures), each fitted by sklearn (default settings) and by our
batched EM (``fit_em``, all datasets in one batch, k-means init, sklearn's max_iter / tol /
reg_covar); we compare the mean training log-likelihood per point: sklearn ``gm.score(x)``,
ours ``model.log_likelihood_`` and, since that value is the one computed in the last E-step
(before the final M-step), also ours re-evaluated at the returned parameters.

Usage: .venv/bin/python benchmarks/bench_gmm.py [--replicates 5] [--generations 100]
Writes benchmarks/results/gmm.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from modelcollapse.api import make_study
from modelcollapse.loop import run_cell
from modelcollapse.families.gmm import GMMParams, fit_em
from modelcollapse.families.mixture import Mixture
from modelcollapse.families.mixture import ring
from modelcollapse.randomness import SeedTree, Stream

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from provenance import code_version, machine as _machine, save  # noqa: E402
K, D = 8, 2
ALIVE = GMMParams().alive_threshold


def machine() -> dict:
    return _machine("numpy", "sklearn")


def sample_mixture(weights: np.ndarray, means: np.ndarray, covs: np.ndarray, n: int,
                   rng: np.random.Generator) -> np.ndarray:
    """n draws from one mixture, with a generator that lives for the whole chain.

    We do not call ``GaussianMixture.sample``: it rebuilds its generator from
    ``random_state`` on every call (``check_random_state(self.random_state)``), so with an
    int random_state every call restarts the same noise stream; a chain that samples that
    way reuses (nearly) the same uniforms and normals generation after generation, which
    correlates the generations and is not the process the papers describe.
    """
    labels = rng.choice(len(weights), size=n, p=weights / weights.sum())
    chol = np.linalg.cholesky(covs)
    z = rng.standard_normal((n, means.shape[1]))
    return means[labels] + np.einsum("nij,nj->ni", chol[labels], z)


def truth():
    t = ring(D, K, GMMParams().truth_radius, GMMParams().truth_std)
    return t.weights[0], t.means[0], t.covs[0]


def sklearn_chains(replicates: int, generations: int, n: int, warm: bool) -> tuple[float, dict]:
    """Time the sklearn chains; returns seconds and per-replicate alive counts and stats."""
    tw, tm, tc = truth()
    alive = np.zeros((generations, replicates))
    iters = np.zeros((generations, replicates))
    n_warn = 0
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        for r in range(replicates):
            rng = np.random.default_rng([7, r])
            x = sample_mixture(tw, tm, tc, n, rng)
            gm = GaussianMixture(n_components=K, warm_start=True, random_state=100_000 * r) if warm else None
            for g in range(generations):
                if not warm:
                    gm = GaussianMixture(n_components=K, random_state=100_000 * r + g)
                gm.fit(x)
                alive[g, r] = (gm.weights_ > ALIVE).sum()
                iters[g, r] = gm.n_iter_
                if g < generations - 1:
                    x = sample_mixture(gm.weights_, gm.means_, gm.covariances_, n, rng)
        n_warn = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    return time.perf_counter() - t0, {"alive_final": alive[-1].tolist(),
                                      "alive_mean_final": float(alive[-1].mean()),
                                      "em_iters_mean": float(iters.mean()),
                                      "convergence_warnings": int(n_warn)}


def ours(replicates: int, generations: int, n: int, warm: bool) -> tuple[float, dict]:
    params = {"warm_start": warm}  # explicit: independent of the family's default
    cell = make_study(family="gmm", policy="replace", generations=generations, replicates=replicates,
                      n_samples=n, metrics=["n_components_alive"], params=params).cells[0]
    assert cell.params["warm_start"] is warm and cell.params["components"] == K
    t0 = time.perf_counter()
    df = run_cell(cell)
    dt = time.perf_counter() - t0
    final = df.loc[df.generation == generations - 1, "value"].to_numpy()
    return dt, {"alive_final": final.tolist(), "alive_mean_final": float(final.mean())}


def datasets(count: int, n: int, seed: int = 11) -> tuple[np.ndarray, list[str]]:
    """(count, n, 2): even indices from the truth, odd ones from perturbed mixtures."""
    rng = np.random.default_rng(seed)
    tw, tm, tc = truth()
    xs, kinds = [], []
    for i in range(count):
        if i % 2 == 0:
            xs.append(sample_mixture(tw, tm, tc, n, rng))
            kinds.append("truth")
        else:
            w = rng.dirichlet(np.full(K, 2.0))
            m = tm * rng.uniform(0.5, 1.5) + rng.normal(0.0, 0.8, (K, D))
            a = rng.normal(0.0, 0.4, (K, D, D))
            c = a @ np.swapaxes(a, 1, 2) + 0.02 * np.eye(D)
            xs.append(sample_mixture(w, m, c, n, rng))
            kinds.append("perturbed")
    return np.stack(xs), kinds


def mixture_from_resp(x: np.ndarray, resp: np.ndarray, reg_covar: float) -> Mixture:
    """The M-step from hard labels, as sklearn's init does (written here so the benchmark
    does not depend on our internal ``m_step`` signature). x (R, N, d), resp (R, K, N)."""
    nk = resp.sum(-1) + 10 * np.finfo(float).eps
    means = (resp @ x) / nk[:, :, None]
    diff = x[:, None] - means[:, :, None]
    covs = np.einsum("rkn,rkni,rknj->rkij", resp, diff, diff) / nk[:, :, None, None]
    covs += reg_covar * np.eye(x.shape[2])
    return Mixture(nk / nk.sum(-1, keepdims=True), means, covs)


def fit_quality(count: int, n: int) -> dict:
    x, kinds = datasets(count, n)
    t0 = time.perf_counter()
    sk = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i in range(count):
            gm = GaussianMixture(n_components=K, random_state=i).fit(x[i])
            sk.append(gm.score(x[i]))
    t_sk = time.perf_counter() - t0
    sk = np.array(sk)
    p = GMMParams()
    t0 = time.perf_counter()
    model = fit_em(x, k=K, init=None, stream=Stream(SeedTree(0, "bench"), "fit", range(count)),
                   max_iter=p.max_iter, tol=p.tol, reg_covar=p.reg_covar)
    t_ours = time.perf_counter() - t0
    reported = np.asarray(model.log_likelihood_, dtype=float)
    at_params = model.mixture.logpdf(x).mean(-1)
    # Diagnostic: our EM started from the labels of sklearn's own k-means init (what
    # GaussianMixture(random_state=i) uses), to separate the EM iterations from the init.
    resp = np.zeros((count, K, n))
    for i in range(count):
        labels = KMeans(n_clusters=K, n_init=1, random_state=i).fit(x[i]).labels_
        resp[i, labels, np.arange(n)] = 1.0
    p_init = mixture_from_resp(x, resp, p.reg_covar)
    same_init = fit_em(x, k=K, init=p_init, stream=Stream(SeedTree(0, "bench"), "fit", range(count)),
                       max_iter=p.max_iter, tol=p.tol, reg_covar=p.reg_covar)
    same_init_ll = same_init.mixture.logpdf(x).mean(-1)

    def compare(ours_ll: np.ndarray, tie: float = 1e-3) -> dict:
        d = ours_ll - sk
        return {"mean_diff_ours_minus_sklearn": float(d.mean()), "median_diff": float(np.median(d)),
                "min_diff": float(d.min()), "max_diff": float(d.max()),
                "ours_wins": int((d > tie).sum()), "sklearn_wins": int((d < -tie).sum()),
                "ties": int((np.abs(d) <= tie).sum()), "tie_tolerance": tie}

    return {"datasets": count, "n": n, "kinds": kinds, "sklearn_score": sk.tolist(),
            "ours_log_likelihood_": reported.tolist(), "ours_at_returned_params": at_params.tolist(),
            "ours_n_iter": model.n_iter_.tolist(),
            "vs_log_likelihood_": compare(reported), "vs_at_returned_params": compare(at_params),
            "vs_ours_em_from_sklearn_kmeans_init": compare(same_init_ll),
            "reported_minus_at_params_max_abs": float(np.abs(reported - at_params).max()),
            "sklearn_fit_s": t_sk, "ours_batched_fit_s": t_ours}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=5)
    ap.add_argument("--generations", type=int, default=100)
    ap.add_argument("--n-samples", type=int, default=1000)
    ap.add_argument("--datasets", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2, help="timed runs of each chain method (min is reported)")
    a = ap.parse_args()
    R, G, N = a.replicates, a.generations, a.n_samples
    res: dict = {"machine": machine(), "code": code_version(), "setting": {"dim": D, "components": K, "n_samples": N,
                                                    "generations": G, "replicates": R, "policy": "replace"}}
    print(f"machine: {res['machine']['nproc']} cpus, {res['machine']['cpu_model']}, "
          f"sklearn {res['machine']['sklearn']}; {R} replicates x {G} generations x {N} samples")

    # Warm-up (not timed): imports, BLAS/OpenMP thread pools, first calls.
    sklearn_chains(1, 3, N, warm=False)
    ours(1, 3, N, warm=True)

    chains = {}
    for name, fn, warm in (("sklearn_cold", sklearn_chains, False), ("sklearn_warm", sklearn_chains, True),
                           ("ours_warm", ours, True), ("ours_cold", ours, False)):
        runs = []
        for _ in range(a.repeats):
            dt, info = fn(R, G, N, warm)
            runs.append(dt)
        chains[name] = {"s": min(runs), "runs_s": runs, **info}
        print(f"  {name}: {', '.join(f'{t:.2f}' for t in runs)}s, alive at last generation {info['alive_final']}")
    ratios = {"sklearn_cold_over_ours_warm": chains["sklearn_cold"]["s"] / chains["ours_warm"]["s"],
              "sklearn_cold_over_ours_cold": chains["sklearn_cold"]["s"] / chains["ours_cold"]["s"],
              "sklearn_warm_over_ours_warm": chains["sklearn_warm"]["s"] / chains["ours_warm"]["s"]}
    res["chains"], res["ratios"] = chains, ratios

    q = fit_quality(a.datasets, N)
    res["fit_quality"] = q

    print()
    print(f"{'chain (' + str(R) + ' x ' + str(G) + ' x ' + str(N) + ')':<34}{'seconds':>9}"
          f"{'alive@last (mean)':>19}")
    for name in chains:
        print(f"{name:<34}{chains[name]['s']:>9.2f}{chains[name]['alive_mean_final']:>19.1f}")
    print(f"sklearn cold / ours warm: {ratios['sklearn_cold_over_ours_warm']:.1f}x | "
          f"sklearn cold / ours cold: {ratios['sklearn_cold_over_ours_cold']:.1f}x | "
          f"sklearn warm / ours warm: {ratios['sklearn_warm_over_ours_warm']:.1f}x")
    print()
    print(f"fit quality, {q['datasets']} datasets x {N} points (mean train log-lik per point, ours - sklearn):")
    for key, label in (("vs_log_likelihood_", "ours model.log_likelihood_"),
                       ("vs_at_returned_params", "ours at returned params"),
                       ("vs_ours_em_from_sklearn_kmeans_init", "ours EM, sklearn's k-means init")):
        c = q[key]
        print(f"  {label:<32} mean diff {c['mean_diff_ours_minus_sklearn']:+.4f} "
              f"(min {c['min_diff']:+.4f}, max {c['max_diff']:+.4f}); wins ours {c['ours_wins']}, "
              f"sklearn {c['sklearn_wins']}, ties {c['ties']} (|diff| <= {c['tie_tolerance']})")
    print(f"  fit time for all {q['datasets']}: sklearn {q['sklearn_fit_s']:.2f}s (one by one), "
          f"ours {q['ours_batched_fit_s']:.2f}s (one batch)")
    print(f"  max |log_likelihood_ - loglik at returned params| = {q['reported_minus_at_params_max_abs']:.2e}")

    save("gmm", res)


if __name__ == "__main__":
    main()
