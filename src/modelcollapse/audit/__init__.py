"""Audit a corpus, or a model's outputs, against a human reference for signs of collapse.

>>> from modelcollapse.audit import audit, write_audit
>>> result = audit(["crawl-2024-05.jsonl", "crawl-2024-06.jsonl"],   # doctest: +SKIP
...                reference="human.jsonl")
>>> write_audit(result, "audit-out", format="both")                   # doctest: +SKIP
>>> result.to_json()["candidates"][1]["ai_share"]["estimate"]         # doctest: +SKIP

Command line: ``modelcollapse audit CANDIDATE [CANDIDATE ...] --reference HUMAN --out DIR``
(:mod:`.cli`; ``--fail-on-alert`` exits with 3 when any signal is at alert, unusable input
exits with 2). The calibration study: ``modelcollapse audit --calibrate
studies/audit_calibration.toml`` (:mod:`.calibration`).

How it works: the reference is split by a hash into a *model* half (trains a trigram
Kneser-Ney model, which scores perplexities and writes the AI reference) and a *held-out*
half (the human side of every comparison) (:mod:`.reference`); each candidate is streamed
once in chunks, sums accumulate and a seeded reservoir keeps a bounded sample
(:mod:`.stream`); signals come from the sums (:mod:`.counted`, :mod:`.occurrence`) and the
sample (:mod:`.lexical`, :mod:`.sampled`); verdicts follow :data:`RULES`
(:mod:`.verdicts`).

Signals (JSON keys), each ``candidate`` vs ``reference``
----------------------------------------------------------
=========================  ===================================================  ============
signal                     definition                                           interval
=========================  ===================================================  ============
distinct_{1,2,3,4}_delta   candidate minus reference distinct-n on equal-size   subsample
                           token samples (``sample_tokens`` each)
entropy_delta              ... unigram entropy (nats)                           subsample
compression_ratio_delta    ... gzip compression ratio (higher = repetitive)     subsample
self_bleu_delta            ... self-BLEU (0-100) on ``bleu_docs`` documents     subsample
tail_coverage              share of a reference sample's rare bigrams the       subsample
                           candidate's equal-size sample contains (baseline:
                           a second reference sample's share)
perplexity_shift           total variation of the candidate's head / middle /   bootstrap
                           tail shares (terciles of the held-out reference's
                           per-document perplexity) from thirds
near_duplicate_rate        MinHash near-duplicate share of sampled documents    Wilson
                           (baseline: the reference's, same count)
detector_positive_rate     share flagged by a likelihood detector calibrated    Wilson
                           to ``target_fpr`` on held-out human documents
watermark_hit_rate         share with green-list z >= 4 (with a watermark)      Wilson
semantic_coverage          embedding coverage of reference documents (extra     Wilson
                           ``embed``; with precision, recall, Vendi)
ai_share                   AI-written share alpha, maximum likelihood on word-  bootstrap
                           occurrence distributions (Liang et al. 2024); "not
                           judged" without a language model or AI reference file
excess_vocabulary          share of documents holding over-used words (cross-   normal
                           fitted selection, after Kobak et al.) minus the
                           reference's share (:mod:`.shift`)
length_shift               TV of the shares in reference length quintiles       bootstrap
{crit}_rate                share flagged by a zero-shot LM criterion (fast_     Wilson
                           detectgpt, log_likelihood, binoculars) calibrated
                           to target_fpr (with ``ai_generator``/``scorer``)
detector_share             the best criterion's rate corrected by its FPR and   bootstrap
                           TPR (:mod:`.lmsignals`)
=========================  ===================================================  ============

"subsample": repeated equal-size samples without replacement (:mod:`.lexical`);
"bootstrap": percentile bootstrap over documents, seeded; "Wilson": the analytic score
interval of a proportion. Thresholds: :data:`RULES` (watch / alert on the conservative end
of the 95% interval; see :mod:`.verdicts`).

JSON schema (``DIR/audit.json``, ``schema_version`` 1)
------------------------------------------------------
::

    {
      "schema_version": 1,
      "verdict": "ok" | "watch" | "alert",          # worst over candidates
      "reference": {"spec", "n_docs", "n_tokens", "model_docs", "heldout_docs",
                    "vocabulary": {...}, "ai_reference", "ai_reference_docs",
                    "heldout_log_perplexity": {"terciles", "p90"}, "heldout_oov_rate",
                    "detector_threshold": {...}, "lexical_pool_docs",
                    "provenance": {...load_corpus provenance, "split"},
                    "caveats": [...]},
      "candidates": [                               # in the order given (a trend)
        {"name", "n_docs", "n_tokens", "verdict", "severity", "n_alert", "n_watch", "n_ok",
         "signals": {NAME: SIGNAL, ...},            # every signal but ai_share
         "ai_share": SIGNAL | null,
         "caveats": [{"kind", "message", ...}],     # reference caveats included
         "domain": {"oov_rate", "reference_oov_rate", "oov_margin",
                    "median_log_perplexity", "reference_log_perplexity_limit",
                    "perplexity_quantile", "detected", "copies_of_reference_docs",
                    "sample_docs"},
         "examples": [up to 3 documents, 600 characters each]}
      ],
      "thresholds": {NAME: {"bad_direction", "watch", "alert", "scale", "baseline",
                            "judged_on"}},
      "settings": {...every option of audit()},
      # with exactly one candidate, also at the top level:
      "signals": {...}, "ai_share": {...}, "caveats": [...], "domain": {...}
    }

    SIGNAL = {"estimate", "ci_low", "ci_high",       # 95% interval
              "n", "n_unit",                         # what it rests on: documents / tokens
              "verdict", "definition", "ci_method",
              "baseline",                            # the verdict's no-change value
              "reference_value",                     # what a relative threshold divides by
              ...signal-specific fields}             # e.g. "candidate", "reference",
                                                     # "buckets", "ci_99", "positives"

Non-finite numbers are written as ``null``. Caveat kinds: ``domain_mismatch``,
``reference_small``, ``reference_truncated``, ``reference_overlap``, ``candidate_small``,
``sample_reduced``, ``signal_unavailable``, ``no_language_model``, ``share_disagreement``.
Signals are registered with their rule, definition and order by :func:`.signals.signal`;
the options are the fields of :class:`.settings.AuditSettings`.
"""

import importlib

from .core import audit
from .output import write_audit
from .result import SCHEMA_VERSION, AuditResult, CandidateAudit, Signal
from .settings import AuditSettings
from .verdicts import RULES

# The built-in signals register themselves (rules, definitions, order) on import; every
# path into the audit goes through this package, so RULES is complete once it is imported.
importlib.import_module(f"{__name__}.builtin")
importlib.import_module(f"{__name__}.lmsignals")
importlib.import_module(f"{__name__}.shift")

__all__ = ["audit", "write_audit", "AuditSettings", "AuditResult", "CandidateAudit", "Signal", "RULES",
           "SCHEMA_VERSION"]
