"""Image metrics: FID, precision / recall / density / coverage, class shares, memorization.

Generation g is measured on ``n_eval`` images it generates per replicate (default: as many
as the test split holds), drawn from its own seeded stream (stage ``evaluate``), so measuring
never changes the chain, with the chain's sampling bias. The reference is the real test
split (never trained on). The feature space of FID and of the k-NN metrics is the hidden
layer of a classifier trained once on the real train images, or an autoencoder's code when
the corpus has no labels (:mod:`.image_features`). Each metric's real-vs-real value (a random
subset of the real train split, as many images, in place of the generated ones) is drawn as
a dotted reference line: it is what a perfect generator scores at this sample size.

* ``fid``: ||mu_g - mu_r||^2 + tr(S_g + S_r - 2 (S_g^1/2 S_r S_g^1/2)^1/2) of the Gaussian
  fits of the two feature sets (Heusel et al. 2017).
* ``image_precision`` / ``image_recall`` (Kynkaanniemi et al. 2019): the share of generated features
  inside some real feature's k-NN ball, and of real features inside some generated one's.
  ``density`` / ``coverage`` (Naeem et al. 2020): the mean number of real balls holding a
  generated feature divided by k, and the share of real balls holding one. k = ``nn_k``
  (5, Naeem et al.'s value, used for all four; the k-th neighbour excludes the point itself).
* ``class_entropy`` (nats) and ``class_share_max`` of the classifier's predicted classes of
  the generated images: mode collapse and bias amplification (labelled corpora only).
* ``memorization``: the share of generated images closer (pixel L2) to their nearest real
  train image than the ``memorization_quantile`` (5%) quantile of the real test images'
  distances to theirs; a generator that neither copies nor strays scores that quantile.
* ``pixel_variance``: the per-pixel variance across the generated images, averaged over
  pixels (diversity in pixel space).
* ``train_loss`` (vae, diffusion): the last epoch's mean training loss.
"""

from __future__ import annotations

import numpy as np

from ..capabilities import GeneratesImages
from ..randomness import SHARED, Stream
from .base import MetricContext, metric
from .image_features import feature_net

IMAGES = (GeneratesImages,)


def _labeled(params) -> bool:
    from ..data.images import folder_stamp, load_images
    p = params
    return load_images(p.corpus, p.image_size, p.test_share, p.split_seed,
                       folder_stamp(p.corpus)).labeled


def _trained(params) -> bool:
    """Families trained by gradient descent (vae, diffusion) report their training loss."""
    return params.trained


def _memo(ctx: MetricContext) -> dict:
    """This module's memo in the chunk's evaluation state (recomputable from the seeds)."""
    return ctx.state.extra.setdefault("images", {})


def evaluations(ctx: MetricContext) -> np.ndarray:
    """(R, n_eval, D) generated images of this generation (cached), or (1, n_eval, D) real
    train images for the truth (the real-vs-real reference)."""
    from ..families.images.base import RealImages
    family, seeds, memo = ctx.family, ctx.state.seeds, _memo(ctx)
    n = family.n_eval
    if isinstance(ctx.model, RealImages):
        key = ("img-eval", "real")
        if key not in memo:
            train = family.data.train
            rng = seeds.generator("evaluate", SHARED, "real-images")
            pick = np.sort(rng.choice(len(train), min(n, len(train)), replace=False))
            memo[key] = train[pick][None]
        return memo[key]
    key = ("img-eval", ctx.generation)
    if key not in memo:
        for old in [k for k in memo if isinstance(k, tuple) and k[0] == "img-eval" and k[1] != "real"]:
            del memo[old]   # one generation's images at a time
        stream = Stream(seeds, "evaluate", ctx.model.replicates)
        images = family.images(ctx.model, n, ctx.generation, stream, ctx.state.sampling)
        family.record_grid(ctx.generation, ctx.model.replicates, images)
        memo[key] = images
    return memo[key]


def _real_features(ctx: MetricContext) -> np.ndarray:
    memo = _memo(ctx)
    if "img-real-features" not in memo:
        memo["img-real-features"] = feature_net(ctx.family.data).features(ctx.family.data.test)
    return memo["img-real-features"]


def _features(ctx: MetricContext) -> np.ndarray:
    """(R, n, H) features of the evaluation images (cached per generation)."""
    memo = _memo(ctx)
    key = ("img-features", "real" if ctx.train is None else ctx.generation)
    if key not in memo:
        net = feature_net(ctx.family.data)
        # one product per replicate: a batched (R, n, D) product may round a row differently
        # depending on R, and results must not depend on the chunk
        memo[key] = np.stack([net.features(x) for x in evaluations(ctx)])
    return memo[key]


# -- pure functions (tested against their known answers and the prdc package) -------------
def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussian fits of a (n, H) and b (m, H): 0 for a == b."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(sa)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T                # S_a^1/2
    inner = np.linalg.eigvalsh(root @ sb @ root)                   # symmetric PSD
    cross = np.sqrt(np.clip(inner, 0, None)).sum()                 # tr (S_a^1/2 S_b S_a^1/2)^1/2
    return float(max(0.0, ((mu_a - mu_b) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * cross))


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """(n,) squared distance of each point to its k-th nearest other point."""
    d = _sq_dist(x, x)
    return np.partition(d, k, axis=1)[:, k]   # column 0 of the sorted row is the point itself


def prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` (m, H) against ``real`` (n, H)."""
    real_r, fake_r = knn_radii(real, k), knn_radii(fake, k)
    d = _sq_dist(real, fake)                                         # (n, m)
    inside_real = d <= real_r[:, None]                               # fake j in real ball i
    return {"precision": float(inside_real.any(axis=0).mean()),
            "recall": float((d <= fake_r[None, :]).any(axis=1).mean()),
            "density": float(inside_real.sum() / (k * fake.shape[0])),
            "coverage": float(inside_real.any(axis=1).mean())}


def class_shares(labels: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(labels, minlength=n_classes) / max(1, len(labels))


def entropy_nats(shares: np.ndarray) -> float:
    s = shares[shares > 0]
    return float(-(s * np.log(s)).sum())


# -- registered metrics -------------------------------------------------------------------
@metric("fid", direction="lower", requires=IMAGES,
        description="Fréchet distance to the real test images in the features of a classifier "
                    "trained on the real train images (an autoencoder's code without labels)")
def fid(ctx: MetricContext) -> np.ndarray:
    real = _real_features(ctx)
    return np.array([frechet_distance(f, real) for f in _features(ctx)])


def _prdc_all(ctx: MetricContext) -> list[dict[str, float]]:
    memo = _memo(ctx)
    key = ("img-prdc", "real" if ctx.train is None else ctx.generation)
    if key not in memo:
        real, k = _real_features(ctx), ctx.family.params.nn_k
        memo[key] = [prdc(real, f, k) for f in _features(ctx)]
    return memo[key]


def _prdc_metric(name: str, key: str, text: str):
    @metric(name, direction="higher", requires=IMAGES, description=text)
    def fn(ctx: MetricContext) -> np.ndarray:
        return np.array([d[key] for d in _prdc_all(ctx)])
    return fn


# image_precision / image_recall: the names precision / recall belong to the continuous
# families' opt-in 3-NN version (metrics/drift.py); one name, one meaning
precision = _prdc_metric("image_precision", "precision", "share of generated images inside some real image's k-NN "
                         "ball in feature space (quality; Kynkaanniemi et al. 2019, k = nn_k)")
recall = _prdc_metric("image_recall", "recall", "share of real images inside some generated image's k-NN ball "
                      "(diversity; Kynkaanniemi et al. 2019, k = nn_k)")
density = _prdc_metric("density", "density", "mean number of real k-NN balls holding a generated image, / k "
                       "(Naeem et al. 2020)")
coverage = _prdc_metric("coverage", "coverage", "share of real k-NN balls holding a generated image "
                        "(Naeem et al. 2020)")


def _shares(ctx: MetricContext) -> np.ndarray:
    data = ctx.family.data
    net = feature_net(data)
    return np.stack([class_shares(net.predict(x), len(data.classes)) for x in evaluations(ctx)])


@metric("class_entropy", direction="truth", requires=IMAGES, applies=_labeled,
        description="entropy (nats) of the predicted class shares of the generated images")
def class_entropy(ctx: MetricContext) -> np.ndarray:
    return np.array([entropy_nats(s) for s in _shares(ctx)])


@metric("class_share_max", direction="truth", requires=IMAGES, applies=_labeled,
        description="largest predicted class share of the generated images (bias amplification)")
def class_share_max(ctx: MetricContext) -> np.ndarray:
    return _shares(ctx).max(axis=1)


def _nearest_train(x: np.ndarray, train: np.ndarray, block: int = 2048) -> np.ndarray:
    """(n,) pixel L2 distance of each row of x to its nearest train image (in blocks)."""
    return np.sqrt(np.concatenate([_sq_dist(x[i:i + block], train).min(axis=1)
                                   for i in range(0, len(x), block)]))


@metric("memorization", direction="lower", requires=IMAGES,
        description="share of generated images nearer a real train image than the "
                    "memorization_quantile of real test images are")
def memorization(ctx: MetricContext) -> np.ndarray:
    from ..families.images.base import RealImages
    data, memo = ctx.family.data, _memo(ctx)
    if "img-memo-threshold" not in memo:
        memo["img-memo-threshold"] = np.quantile(
            _nearest_train(data.test, data.train), ctx.family.params.memorization_quantile)
    t = memo["img-memo-threshold"]
    if isinstance(ctx.model, RealImages):   # unseen real images: the quantile, by construction
        return np.array([(_nearest_train(data.test, data.train) < t).mean()])
    return np.array([(_nearest_train(x, data.train) < t).mean() for x in evaluations(ctx)])


@metric("pixel_variance", direction="truth", requires=IMAGES,
        description="per-pixel variance across the generated images, averaged over pixels")
def pixel_variance(ctx: MetricContext) -> np.ndarray:
    return evaluations(ctx).var(axis=1).mean(axis=1)


@metric("train_loss", direction="info", requires=IMAGES, applies=_trained,
        description="the last epoch's mean training loss (vae: negative ELBO per image, nats; "
                    "diffusion: noise-prediction MSE)")
def train_loss(ctx: MetricContext) -> np.ndarray:
    return np.asarray(ctx.model.inner.loss_, dtype=float)
