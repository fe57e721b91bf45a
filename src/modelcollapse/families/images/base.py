"""What the image families share: the corpus, real data, sample grids, seeded torch generators.

An image batch is a :class:`~modelcollapse.batches.Samples` whose values are (R, N, h*w)
float32 pixels in [0, 1], so every policy (replace, accumulate, mix with a fixed or fresh
real pool, ...) works on images unchanged. The truth is the corpus itself: generation 0 is
fitted on the real train split (or a random subset of ``n_samples`` of it), "fresh" real data
is a new random subset, and the test split is the held-out reference of the image metrics
(:mod:`modelcollapse.metrics.images`).

Samples are always clipped to [0, 1] (they are pixel intensities). Sampling bias: the loop's
``temperature`` scales the sampler's noise (a VAE's latent, a diffusion model's noise, a
mixture's spread): it is Alemohammad et al.'s MAD sampling-bias knob lambda (lambda = 1
unbiased, lambda < 1 trades diversity for quality); ``truncation`` keeps the central mass
of each standard-normal coordinate (the truncation trick).
"""

from __future__ import annotations

import functools
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ...capabilities import GeneratesImages, RealReference
from ...errors import UserError
from ...batches import REAL, SYNTHETIC, Samples, random_subset
from ...randomness import Stream
from ..base import Family, Sampling

GRID_SIDE = 8  # a grid shows GRID_SIDE x GRID_SIDE images


@dataclass(frozen=True)
class ImageParams:
    """corpus: 'digits' (scikit-learn's 8x8 digits), a folder of PNG/JPEG images (one
    subfolder per class, or none) or hf:NAME[:CONFIG[:SPLIT]]. image_size: side in pixels
    folders and hf: images are resized to (0: 16; digits stay 8x8). test_share, split_seed:
    the stable-hash split. n_eval: images generated per replicate and generation to measure
    it (0: as many as the test split holds). nn_k: neighbours of the k-NN metrics (precision,
    recall, density, coverage). memorization_quantile: see the memorization metric."""

    corpus: str = "digits"
    image_size: int = 0
    test_share: float = 0.2
    split_seed: int = 0
    n_eval: int = 0
    nn_k: int = 5
    memorization_quantile: float = 0.05
    trained: ClassVar[bool] = False   # trained by gradient descent (reports train_loss)

    def __post_init__(self) -> None:
        if self.n_eval < 0 or self.n_eval == 1:
            raise UserError(f"params.n_eval must be 0 (the test split's size) or >= 2; got {self.n_eval}")
        if self.nn_k < 1:
            raise UserError(f"params.nn_k must be >= 1; got {self.nn_k}")
        if not 0.0 < self.memorization_quantile < 1.0:
            raise UserError(f"params.memorization_quantile must be in (0, 1); got {self.memorization_quantile}")


class RealImages:
    """The truth as a 'model': its images are real ones (the real-vs-real reference lines)."""

    replicates = np.zeros(1, dtype=np.int64)


def truncated_normal(gen: Any, shape: tuple[int, ...], truncation: float) -> Any:
    """Standard normals (a torch tensor) from ``gen``, restricted to the central ``truncation``
    mass per entry (inverse CDF of a uniform, as :func:`models.base.standard_noise`)."""
    import torch
    if truncation >= 1.0:
        return torch.randn(shape, generator=gen)
    u = torch.rand(shape, generator=gen, dtype=torch.float64)
    p = 0.5 * (1.0 - truncation) + truncation * u
    return (torch.special.ndtri(p)).float()


def torch_generators(stream: Stream, kind: str, generation: int) -> list:
    """One ``torch.Generator`` per replicate of the chunk, seeded from the run's seed tree by
    (stage, replicate, kind, generation): a replicate's draws never depend on the chunk."""
    import torch
    gens = []
    for r in stream.replicates.tolist():
        seed = int(stream.seeds.generator(stream.stage, int(r), kind, generation).integers(2**63))
        gens.append(torch.Generator().manual_seed(seed))
    return gens


def train_batched(trainer, data: Samples, params: Any, stream: Stream, generation: int):
    """Run ``trainer(x, params, init_gens, batch_rngs, noise_gens)`` -> (weights, loss) on
    the chunk's training images (a writable float32 (R, N, pixels) tensor) with every
    replicate's own generators (initialization, minibatch order, noise): see
    :func:`train_groups`."""
    import torch
    x = torch.from_numpy(np.array(data.values, dtype=np.float32))   # a writable copy
    rngs = [stream.seeds.generator(stream.stage, int(r), "batches", generation)
            for r in stream.replicates]
    return train_groups(trainer, x, params, torch_generators(stream, "init", generation), rngs,
                        torch_generators(stream, "noise", generation))


def train_groups(trainer, x, params: Any, init: list, rngs: list, noise: list):
    """``trainer`` on one group of replicates per core torch may use, each group a batched
    model on its own thread with one torch thread (``batched.in_groups``: the same numbers
    as one group); the groups' weights and (R,) losses joined along R."""
    import torch

    from . import batched
    with batched.one_thread() as cores:
        parts = batched.in_groups(lambda g: trainer(x[g], params, init[g], rngs[g], noise[g]),
                                  len(rngs), cores)
    if len(parts) == 1:
        return parts[0]
    return ([torch.cat(ws) for ws in zip(*(w for w, _ in parts))],
            np.concatenate([loss for _, loss in parts]))


def save_grid(path: Path, images: np.ndarray, shape: tuple[int, int]) -> None:
    """Write up to GRID_SIDE^2 images (n, h*w) in [0, 1] as one grayscale PNG grid (a 1-pixel
    gap between images), atomically."""
    from PIL import Image
    h, w = shape
    k = GRID_SIDE
    images = images[:k * k]
    canvas = np.full((k * (h + 1) + 1, k * (w + 1) + 1), 0.35, dtype=np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, k)
        canvas[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + c * (w + 1):1 + c * (w + 1) + w] = img.reshape(h, w)
    scale = max(1, 96 // (k * (h + 1)))   # small images are enlarged (nearest) to be seen
    im = Image.fromarray(np.round(np.clip(canvas, 0, 1) * 255).astype(np.uint8), "L")
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    im.save(tmp, format="PNG")
    tmp.replace(path)


@dataclass
class ImageModels:
    """The fitted models of a chunk: ``inner`` (the family's own, all R replicates),
    ``replicates`` (R,) their indices, ``generation``."""

    inner: Any
    replicates: np.ndarray
    generation: int


class ImageFamily(Family, GeneratesImages, RealReference):
    """The shared half of an image family; subclasses implement ``fit`` and ``generate``."""

    default_n_samples = 0   # the train split's size
    overview = ("fid", "image_recall", "class_share_max")   # the report's headline panels

    def __init__(self, params: Any, n_samples: int) -> None:
        super().__init__(params, n_samples)
        self.grids: Path | None = None

    @property
    def data(self):
        from ...data.images import folder_stamp, load_images
        p = self.params
        return load_images(p.corpus, p.image_size, p.test_share, p.split_seed, folder_stamp(p.corpus))

    @classmethod
    def default_samples(cls, params: Any) -> int:
        return len(cls(params, 0).data.train)

    def validate(self, n_samples: int) -> None:
        super().validate(n_samples)
        n_train = len(self.data.train)
        if n_samples > n_train:
            raise UserError(f"n_samples = {n_samples} exceeds the {n_train} images of the train "
                            f"split of corpus {self.params.corpus}")

    def bytes_per_replicate(self, max_train: int) -> int:
        return 4 * self.data.dim * (2 * max_train + 4 * self.n_eval) + 2**20

    @property
    def n_eval(self) -> int:
        return self.params.n_eval or len(self.data.test)

    def fingerprint(self) -> dict[str, Any]:
        """The corpus's content hash: an edited folder is a different cell."""
        return {"corpus_sha256": self.data.record["sha256"]}

    def describe_data(self) -> dict:
        return self.data.record

    def truth_model(self) -> RealImages:
        return RealImages()

    # -- data ------------------------------------------------------------------------------
    def draw_real(self, n: int, generation: int, stream: Stream, stats: bool) -> Samples:
        """n real train images per replicate: the whole split (in corpus order) when n is its
        size, else a uniformly random subset (fresh real data = a new subset)."""
        train = self.data.train
        r = stream.n_replicates
        if n == len(train):
            values = np.broadcast_to(train, (r, *train.shape))
        else:
            values = train[random_subset(len(train), n, stream)]
        return Samples.made(values, REAL, generation)

    def fit(self, data: Samples, previous: "ImageModels | None", stream: Stream) -> "ImageModels":
        g = 0 if previous is None else previous.generation + 1
        inner = self.train(data, None if previous is None else previous.inner, stream, g)
        return ImageModels(inner, stream.replicates.copy(), g)

    def sample(self, model: "ImageModels", n: int, generation: int, stream: Stream,
               sampling: Sampling, stats: bool) -> Samples:
        return Samples.made(self.images(model, n, generation, stream, sampling), SYNTHETIC, generation)

    def images(self, model: "ImageModels", n: int, generation: int, stream: Stream,
               sampling: Sampling) -> np.ndarray:
        """(R, n, h*w) float32 images in [0, 1] from the fitted models."""
        x = self.generate(model.inner, n, generation, stream, sampling)
        return np.clip(x, 0.0, 1.0).astype(np.float32, copy=False)

    @abstractmethod
    def train(self, data: Samples, previous: Any, stream: Stream, generation: int) -> Any:
        """Models fitted on ``data`` (R, N, h*w) per replicate; ``previous``: the last
        generation's (None at generation 0)."""

    @abstractmethod
    def generate(self, model: Any, n: int, generation: int, stream: Stream,
                 sampling: Sampling) -> np.ndarray:
        """(R, n, h*w) images from ``model`` (any range; ``images`` clips them)."""

    # -- grids -----------------------------------------------------------------------------
    def attach_grids(self, folder: Path) -> None:
        """Per-generation sample grids go to ``folder`` (the cell's ``grids/``)."""
        self.grids = Path(folder)

    def record_grid(self, generation: int, replicates: np.ndarray, images: np.ndarray) -> None:
        """Write ``grids/gen-<g>.png`` from replicate 0's first 64 evaluation images (the chunk
        holding replicate 0 writes it), when the family is attached to a run folder."""
        if self.grids is None:
            return
        where = np.flatnonzero(np.asarray(replicates) == 0)
        if where.size:
            save_grid(self.grids / f"gen-{generation:03d}.png",
                      np.clip(images[where[0]], 0, 1), self.data.shape)


@functools.lru_cache(maxsize=1)
def _torch():
    try:
        import torch
    except ImportError:
        raise UserError("the vae and diffusion families need torch; install modelcollapse[torch]") from None
    return torch
