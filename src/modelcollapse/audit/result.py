"""What an audit returns: signals with intervals and verdicts, per candidate, and the JSON.

The JSON layout (``AuditResult.to_json``) is the schema documented in
:mod:`modelcollapse.audit`; it is versioned by :data:`SCHEMA_VERSION` (a field renamed or
removed bumps it, a field added does not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .verdicts import NOT_JUDGED, RULES, VERDICTS, worst

SCHEMA_VERSION = 1
#: Characters kept of each example document.
EXAMPLE_CHARS = 600
N_EXAMPLES = 3


def jsonable(x: Any) -> Any:
    """``x`` with numpy scalars and arrays made plain and NaN / infinities made None (strict
    JSON has neither), recursively through dicts, lists and tuples."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


@dataclass
class Signal:
    """One measured signal of one candidate.

    estimate, ci_low, ci_high : the value and its 95% interval. n : the sample size it
    rests on, in ``n_unit`` ("documents" or "tokens"). verdict : ok / watch / alert by
    :data:`~.verdicts.RULES`. definition : one sentence. ci_method : how the interval was
    made. baseline : the value the verdict measures the move from. reference_value : the
    reference's own value, which a relative rule divides the move by (defaults to the
    baseline). extra : further fields (bucket shares, settings, ...), JSON-able.
    """

    name: str
    estimate: float
    ci_low: float
    ci_high: float
    n: int
    n_unit: str
    definition: str
    ci_method: str
    baseline: float
    extra: dict = field(default_factory=dict)
    reference_value: float | None = None
    verdict: str = "ok"
    #: False: the value is reported but not judged (verdict "not judged": it can be neither
    #: ok nor a warning, e.g. an AI share without any language model; a caveat says why).
    judged: bool = True

    def __post_init__(self) -> None:
        self.estimate, self.ci_low, self.ci_high = (float(self.estimate), float(self.ci_low),
                                                    float(self.ci_high))
        self.baseline = float(self.baseline)
        if self.reference_value is None:
            self.reference_value = self.baseline
        self.verdict = RULES[self.name].verdict(self.ci_low, self.ci_high, self.baseline,
                                                float(self.reference_value))
        if not self.judged:
            self.verdict = NOT_JUDGED

    def to_json(self) -> dict:
        # The core fields come last so that no extra field can shadow them.
        out = {**self.extra,
               "estimate": self.estimate, "ci_low": self.ci_low, "ci_high": self.ci_high,
               "n": int(self.n), "n_unit": self.n_unit, "verdict": self.verdict,
               "definition": self.definition, "ci_method": self.ci_method,
               "baseline": self.baseline, "reference_value": self.reference_value}
        return jsonable(out)


@dataclass
class CandidateAudit:
    """The audit of one candidate corpus.

    name : its spec. n_docs, n_tokens : documents and word tokens read (all of them, not
    only the sample). signals : name -> :class:`Signal` (without ``ai_share``). ai_share :
    the AI-written share, or None when it could not be estimated (a caveat says why).
    caveats : dicts with ``kind`` and a one-sentence ``message`` (plus measured values).
    domain : the domain-mismatch measurements (OOV rate, perplexity) with their thresholds.
    examples : a few of its documents (from the sample, cut at EXAMPLE_CHARS characters).
    """

    name: str
    n_docs: int
    n_tokens: int
    signals: dict[str, Signal]
    ai_share: Signal | None
    caveats: list[dict]
    domain: dict
    examples: list[str] = field(default_factory=list)
    #: the language-model side: calibrated detectors, score histograms, the most
    #: machine-like documents (JSON); empty without a language model
    machine: dict = field(default_factory=dict)
    #: per-document columns for ``--scores`` (index, detector scores, flags, occurrence
    #: log-likelihood ratio); not part of the JSON
    doc_scores: dict | None = None

    def all_signals(self) -> dict[str, Signal]:
        """Every signal, ``ai_share`` included when present."""
        out = dict(self.signals)
        if self.ai_share is not None:
            out["ai_share"] = self.ai_share
        return out

    @property
    def verdict(self) -> str:
        """The worst verdict over all signals."""
        return worst(s.verdict for s in self.all_signals().values())

    @property
    def severity(self) -> int:
        """Sum over signals of 0 (ok), 1 (watch), 2 (alert): one number to follow a trend."""
        return sum(VERDICTS.index(s.verdict) for s in self.all_signals().values()
                   if s.verdict in VERDICTS)

    def to_json(self) -> dict:
        counts = {v: sum(s.verdict == v for s in self.all_signals().values()) for v in VERDICTS}
        return {"name": self.name, "n_docs": int(self.n_docs), "n_tokens": int(self.n_tokens),
                "verdict": self.verdict, "severity": self.severity,
                "n_alert": counts["alert"], "n_watch": counts["watch"], "n_ok": counts["ok"],
                "signals": {k: s.to_json() for k, s in self.signals.items()},
                "ai_share": None if self.ai_share is None else self.ai_share.to_json(),
                "caveats": self.caveats,
                "domain": jsonable(self.domain),
                "examples": self.examples, "machine": jsonable(self.machine)}


@dataclass
class AuditResult:
    """An audit of one or more candidates (a trend, in the order given) against a reference.

    reference : spec, n_docs, n_tokens, provenance, splits, caveats. candidates : one
    :class:`CandidateAudit` each. settings : the options the audit ran with.
    """

    reference: dict
    candidates: list[CandidateAudit]
    settings: dict

    @property
    def verdict(self) -> str:
        """The worst verdict over all candidates."""
        return worst(c.verdict for c in self.candidates)

    def to_json(self) -> dict:
        """The documented JSON (see :mod:`modelcollapse.audit`); with a single candidate its
        ``signals``, ``ai_share``, ``caveats`` and ``verdict`` are also at the top level."""
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "verdict": self.verdict,
            "reference": jsonable(self.reference),
            "candidates": [c.to_json() for c in self.candidates],
            "thresholds": {name: rule.as_record() for name, rule in RULES.items()},
            "settings": jsonable(self.settings),
        }
        if len(self.candidates) == 1:
            only = out["candidates"][0]
            for key in ("signals", "ai_share", "caveats", "domain"):
                out[key] = only[key]
        return out
