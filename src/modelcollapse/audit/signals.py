"""The audit-signal registry: every signal's rule, definition and place, in one place.

A signal is added by one decorated function::

    @signal("my_rate", rule=Rule("higher", 0.05, 0.20, "absolute", "0"),
            definition="Share of candidate documents that ...", order=55)
    def my_rate(ctx: Context) -> Signal | None:
        ...

The function receives the :class:`Context` of one candidate (its streamed tally, sample
pools, the prepared reference, the settings, a seeded ``rng(stage)`` and the caveat list to
append to) and returns the :class:`~.result.Signal` (or a dict name -> Signal when one
function measures several signals: pass several names, and ``rule`` / ``definition`` as
dicts), or None when it does not apply (it should then append a caveat saying why).

Computation follows registration order (so caveats read in a stable order); the JSON lists
signals by ``order``. A Signal whose name is not registered cannot be built
(:class:`~.result.Signal` looks its rule up here), and every registered function's signals
reach the result: none can be dropped by a forgotten list. ``ai_share`` is registered like
the others and reported apart (``CandidateAudit.ai_share``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UserError
from .verdicts import RULES, Rule


@dataclass(frozen=True)
class SignalSpec:
    """A registered signal: its rule (:mod:`.verdicts`), one-sentence definition and order."""

    name: str
    rule: Rule
    definition: str
    order: float


@dataclass
class Context:
    """What a signal function sees for one candidate (see the module docstring).

    spec : the candidate's corpus spec. tally : its streamed sums (:class:`~.stream.Tally`).
    cand_pool, ref_pool : the sample pools (:class:`~.diversity.Pool`). ref : the prepared
    :class:`~.reference.Reference`. settings : :class:`~.settings.AuditSettings`.
    rng : ``rng(stage)`` -> a generator seeded by (seed, stage, spec). caveats : appended
    to in place. extras : optional inputs (the watermark detector, the language-model
    scores) by name.
    """

    spec: str
    tally: Any
    cand_pool: Any
    ref_pool: Any
    ref: Any
    settings: Any
    rng: Callable[[str], np.random.Generator]
    caveats: list[dict]
    extras: dict = field(default_factory=dict)
    #: set by the model-based gate of :mod:`.builtin`: whether any document was scored
    model_scored: bool = True


#: name -> spec, in registration order.
SIGNALS: dict[str, SignalSpec] = {}
#: (function, names) in registration order.
FUNCTIONS: list[tuple[Callable[[Context], Any], tuple[str, ...]]] = []
#: Signals reported apart from ``signals`` in the result.
SEPARATE = ("ai_share",)


def signal(*names: str, rule: Rule | dict[str, Rule], definition: str | dict[str, str],
           order: float | dict[str, float]):
    """Register a signal function (module docstring). Re-registering a name replaces it
    (a plugin may refine a built-in)."""
    if not names:
        raise UserError("@signal needs at least one signal name")

    def pick(value, name):
        return value[name] if isinstance(value, dict) else value

    def register(fn: Callable[[Context], Any]):
        for name in names:
            r, d, o = pick(rule, name), pick(definition, name), pick(order, name)
            if not isinstance(r, Rule) or not isinstance(d, str) or not d.strip():
                raise UserError(f"signal '{name}' needs a Rule and a non-empty definition")
            SIGNALS[name] = SignalSpec(name, r, d, float(o))
            RULES[name] = r
        FUNCTIONS[:] = [(f, n) for f, n in FUNCTIONS if not set(n) & set(names)]
        FUNCTIONS.append((fn, tuple(names)))
        return fn
    return register


def compute(ctx: Context) -> dict[str, Any]:
    """Every registered signal of one candidate, in display order (``ai_share`` included)."""
    out: dict[str, Any] = {}
    ctx.extras["computed"] = out   # later functions may read earlier signals (caveats)
    for fn, names in FUNCTIONS:
        got = fn(ctx)
        if got is None:
            continue
        if not isinstance(got, dict):
            got = {names[0]: got}
        unknown = set(got) - set(names)
        if unknown:
            raise RuntimeError(f"signal function {fn.__name__} returned unregistered "
                               f"signals {sorted(unknown)}")
        out.update({k: v for k, v in got.items() if v is not None})
    return dict(sorted(out.items(), key=lambda kv: SIGNALS[kv[0]].order))


def definition(name: str) -> str:
    """The registered definition of a signal."""
    return SIGNALS[name].definition
