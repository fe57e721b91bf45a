"""Capabilities: what a family's models can do, and what a metric, policy or block needs.

A family *provides* a capability by inheriting its class (each is a small abstract mixin
that declares the methods and attributes it promises); a metric, policy, curation block or
theory overlay *requires* capabilities by listing the classes. The registries match the two
with ``isinstance``/``issubclass``, so no metric, policy or report dispatches on a family's
name, and a family written outside the package (``--plugin``) gets every metric and policy
its capabilities admit, without editing anything else.

Capabilities of families (R = replicates in a chunk):

- :class:`HasMoments`: ``model.moments() -> (mean (R, d), cov (R, d, d))`` and the truth as
  a one-component-or-more :class:`~modelcollapse.families.mixture.Mixture`
  (``family.truth_mixture()``).
- :class:`HasDensity`: ``model.mixture`` is a Gaussian mixture per replicate (so held-out
  log-likelihoods, tail masses and L2 distances are exact or Monte Carlo on it).
- :class:`GaussianClosedForm`: a single Gaussian per replicate (``model.mean_`` (R, d),
  ``model.cov_`` (R, d, d); ``family.truth_mean`` (d,), ``family.truth_cov`` (d, d)):
  KL and W2 to the truth in closed form.
- :class:`MixtureComponents`: the model is a finite mixture whose components can die
  (``family.params.alive_threshold``).
- :class:`HasProbabilities`: ``model.probs_`` (R, K) over a finite outcome set and
  ``family.truth_probs`` (K,).
- :class:`HasCoefficients`: ``model.coef_`` (R, d) and ``family.coef`` (d,).
- :class:`Classifies`: ``model.pred_`` (R, n) predicted labels; training batches know their
  wrong labels (``train.wrong_share()``).
- :class:`GeneratesText`: a text family (``data`` splits, ``generate``, ``render``,
  ``fit_one``); see :class:`~modelcollapse.families.text.TextFamily`.
- :class:`Watermarks`: its sampler can embed a green-list watermark (``family.watermark``).
- :class:`ScoresSequences`: ``model.lms[r].sequence_nll(docs)`` scores documents (the
  generation-0 model judges later generations).
- :class:`TrainsWithValidation`: each generation keeps the epoch with the best real
  validation loss (``lm.stats``).
- :class:`Persistent`: the models live on disk (weights per generation); the loop saves the
  chain state after every generation and a resumed cell continues at its next unfinished one.
- :class:`LabelledBatches`: the family's batches carry a ground truth a verifier can check.
- :class:`GeneratesImages`: an image family (``data`` an ImageData with train / test pixels,
  ``n_eval``, ``images(model, n, generation, stream, sampling) -> (R, n, h*w)``,
  ``record_grid``, ``attach_grids``); see :class:`~modelcollapse.families.images.base.ImageFamily`.
- :class:`RealReference`: the truth is a real data set, so every measured (non-info) metric
  has a real-vs-real value, drawn as a reference line.

A policy can also provide capabilities (:class:`RecordsCuration`: it stores curation
measures with each training set); metrics that read them require it.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar


class Capability:
    """Base of every capability mixin (families inherit them; requirements list them)."""

    label: ClassVar[str] = ""


# -- continuous families ---------------------------------------------------------------------
class HasMoments(Capability):
    label = "moments"

    @abstractmethod
    def truth_mixture(self) -> Any:
        """The true distribution as a one-replicate Mixture."""


class HasDensity(Capability):
    label = "mixture density"


class GaussianClosedForm(Capability):
    label = "gaussian closed forms"
    truth_mean: Any
    truth_cov: Any


class MixtureComponents(Capability):
    label = "mixture components"


# -- discrete, regression, classification ----------------------------------------------------
class HasProbabilities(Capability):
    label = "outcome probabilities"


class HasCoefficients(Capability):
    label = "regression coefficients"
    coef: Any


class Classifies(Capability):
    label = "predicted labels"


class LabelledBatches(Capability):
    label = "verifiable labels"


# -- text ------------------------------------------------------------------------------------
class GeneratesText(Capability):
    label = "text generation"


class Watermarks(Capability):
    label = "watermarked sampling"

    @property
    @abstractmethod
    def watermark(self) -> Any:
        """The green-list scheme the sampler applies, or None when sampling is unmarked."""


class RefitsOnDocuments(Capability):
    """``family.fit_one(docs)`` fits one model on a list of documents cheaply (the classifier
    detector trains on what a held-out generation-0 model writes)."""

    label = "cheap single-model refit"


class ScoresSequences(Capability):
    label = "per-document likelihood"


class TrainsWithValidation(Capability):
    label = "validation-selected epochs"


class Persistent(Capability):
    """Families whose models live on disk. The loop calls ``attach(folder)`` once per cell
    (where weights go); after every generation it saves the chain state, the models as
    ``save_state(model)``, and on resume rebuilds them with ``load_state(state)``. The state
    is data only (numbers, strings, lists, dicts and numeric arrays: saved as npz + JSON,
    never pickle, see :mod:`modelcollapse.chainstate`); ``load_state`` checks every field it
    reads and raises ``chainstate.InvalidState`` for one that does not fit (a state file may
    come from someone else)."""

    label = "weights on disk"

    @abstractmethod
    def attach(self, folder: Any) -> None:
        """Keep weights under ``folder`` (a run's models folder)."""

    @abstractmethod
    def save_state(self, model: Any) -> dict:
        """``model`` (one chunk's fitted models) as data: arrays and JSON values."""

    @abstractmethod
    def load_state(self, state: dict) -> Any:
        """The models saved by :meth:`save_state`, bound to this process (weights, device)."""


# -- images ----------------------------------------------------------------------------------
class GeneratesImages(Capability):
    label = "image generation"

    @abstractmethod
    def attach_grids(self, folder: Any) -> None:
        """Write per-generation sample grids under ``folder`` (a run's cell folder's grids/)."""


class RealReference(Capability):
    label = "real-vs-real reference"


# -- policies --------------------------------------------------------------------------------
class PolicyCapability(Capability):
    """Base of what a policy can provide (metrics that read it require it)."""


class RecordsCuration(PolicyCapability):
    """The policy stores curation measures with each training set (``train.curation``); the
    names it records are ``measures`` (derived from its blocks' declared reasons)."""

    label = "curation measures"
    measures: ClassVar[tuple[str, ...]] = ()


def provided(obj_or_cls: Any) -> tuple[type[Capability], ...]:
    """The capabilities a family or policy (class or instance) provides, most basic first."""
    cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    return tuple(c for c in reversed(cls.__mro__)
                 if issubclass(c, Capability) and c.__dict__.get("label"))


def satisfies(obj_or_cls: Any, requires: tuple[type[Capability], ...]) -> bool:
    """True when ``obj_or_cls`` provides every capability in ``requires``."""
    cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    return all(issubclass(cls, r) for r in requires)


def describe(requires: tuple[type[Capability], ...]) -> str:
    """'moments + mixture density', or 'any' when nothing is required."""
    return " + ".join(r.label for r in requires) or "any"


__all__ = [name for name, value in dict(globals()).items()
           if isinstance(value, type) and issubclass(value, Capability)] + [
    "provided", "satisfies", "describe"]
