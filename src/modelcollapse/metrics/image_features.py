"""The feature network of the image metrics, trained once per corpus on the real train split.

Inception features are the usual space of FID, precision and recall; on 8x8 digits the CPU
stand-in is the hidden layer of a small classifier trained on real digits (REFERENCES:
"digits-FID"). Here: one hidden layer of ``HIDDEN`` tanh units, softmax over the classes,
trained with Adam on minibatches of the real train split (fixed seed, numpy: no torch needed
to measure). A corpus without labels gets an autoencoder instead (pixels -> ``CODE`` tanh
units -> pixels, squared error), and its code is the feature space. The network predicts the
class shares of ``class_entropy`` and ``class_share_max`` too. Trained once per process and
corpus (about a second); its test accuracy goes into the metrics' description.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HIDDEN, CODE = 128, 32
STEPS, BATCH, LR, WEIGHT_DECAY = 1500, 128, 3e-3, 1e-4
_CACHE: dict[tuple, "FeatureNet"] = {}


@dataclass
class FeatureNet:
    """w1 (D, H), b1 (H,), w2 (H, K), b2 (K,); ``kind`` 'classifier' or 'autoencoder';
    ``test_score``: the classifier's accuracy on the test split, or the autoencoder's
    test mean squared error per pixel."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    kind: str
    test_score: float

    def features(self, x: np.ndarray) -> np.ndarray:
        """(..., D) pixels -> (..., H) features (the hidden layer)."""
        return np.tanh(x @ self.w1 + self.b1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(..., D) pixels -> (...,) predicted class (classifier only)."""
        return (self.features(x) @ self.w2 + self.b2).argmax(axis=-1)


def _train(x: np.ndarray, y: np.ndarray | None, n_classes: int, seed: int) -> FeatureNet:
    rng = np.random.default_rng(seed)
    d = x.shape[1]
    classify = y is not None
    h = HIDDEN if classify else CODE
    k = n_classes if classify else d
    params = [rng.normal(0, 1 / np.sqrt(d), (d, h)), np.zeros(h),
              rng.normal(0, 1 / np.sqrt(h), (h, k)), np.zeros(k)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    x = x.astype(np.float64)
    for step in range(1, STEPS + 1):
        idx = rng.choice(len(x), size=min(BATCH, len(x)), replace=False)
        xb = x[idx]
        hid = np.tanh(xb @ params[0] + params[1])
        out = hid @ params[2] + params[3]
        if classify:
            out -= out.max(axis=1, keepdims=True)
            prob = np.exp(out)
            prob /= prob.sum(axis=1, keepdims=True)
            prob[np.arange(len(idx)), y[idx]] -= 1.0      # d(cross-entropy)/d(logits)
            g_out = prob / len(idx)
        else:
            g_out = 2.0 * (out - xb) / xb.size
        g_hid = (g_out @ params[2].T) * (1.0 - hid * hid)
        grads = [xb.T @ g_hid, g_hid.sum(0), hid.T @ g_out, g_out.sum(0)]
        for i, (p, g) in enumerate(zip(params, grads)):
            g = g + WEIGHT_DECAY * p if i % 2 == 0 else g
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            p -= LR * (m[i] / (1 - 0.9**step)) / (np.sqrt(v[i] / (1 - 0.999**step)) + 1e-8)
    return FeatureNet(*params, kind="classifier" if classify else "autoencoder", test_score=np.nan)


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:   # the limit is a speed-up only
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(1)


def feature_net(data) -> FeatureNet:
    """The corpus's feature network (an :class:`~modelcollapse.data.images.ImageData`),
    trained on its train split the first time it is asked for."""
    key = (data.record["sha256"], data.record["split"]["seed"], data.record["split"]["test_share"])
    if key not in _CACHE:
        with _one_blas_thread():   # small matrices: threads only contend (8x slower on 2 busy cores)
            net = _train(data.train, data.train_labels, len(data.classes), seed=12345)
        if net.kind == "classifier":
            net.test_score = float((net.predict(data.test) == data.test_labels).mean())
        else:
            recon = net.features(data.test) @ net.w2 + net.b2
            net.test_score = float(((recon - data.test) ** 2).mean())
        _CACHE[key] = net
    return _CACHE[key]
