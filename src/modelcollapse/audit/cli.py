"""``modelcollapse audit``: the command line of the audit.

    modelcollapse audit CANDIDATE [CANDIDATE ...] --reference HUMAN [--out DIR]
        [--format json|html|both] [--text-field F] [--ai-reference PATH] [--target-fpr X]
        [--sample-tokens N] [--n-boot B] [--lexical-replicates R] [--seed S] [--embed]
        [--watermark-key K [--watermark-gamma G] [--watermark-context H]]
        [--fail-on-alert] [--overwrite]
    modelcollapse audit --calibrate studies/audit_calibration.toml [--out DIR]

Exit codes: 0 done; 2 unusable input (one sentence on stderr: an empty, binary or non-UTF-8
file, a reference below the minimum size, a bad option); 3 with ``--fail-on-alert`` when any
signal of any candidate is at alert (the audit is still written), so a data pipeline can
gate on it.

This module imports only argparse at load time; the audit itself is imported when the
command runs, so ``modelcollapse --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from .settings import add_arguments, from_arguments

EXIT_ALERT = 3
DEFAULT_OUT = "runs/audit"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``audit`` sub-command to an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser(
        "audit", help="score candidate corpora against a human reference for collapse signals",
        description="Compare candidate corpora (files, globs, hf:NAME; several = a trend, in "
                    "order) with a human reference: diversity, tails, near duplicates, the "
                    "AI-written share, detector and watermark rates, each with a 95% "
                    "interval and a verdict (ok / watch / alert).")
    p.add_argument("candidates", nargs="*", metavar="CANDIDATE", help="a corpus spec to audit")
    p.add_argument("--reference", metavar="HUMAN", help="the human reference corpus spec")
    p.add_argument("--out", metavar="DIR", help=f"output folder (default: {DEFAULT_OUT})")
    p.add_argument("--format", choices=("json", "html", "both"), default="both",
                   help="DIR/audit.json, DIR/audit.html or both (default)")
    add_arguments(p)   # one flag per AuditSettings field
    p.add_argument("--watermark-key", type=int, metavar="K",
                   help="score a green-list watermark with this key (adds watermark_hit_rate)")
    p.add_argument("--watermark-gamma", type=float, default=0.25, help="green-list share")
    p.add_argument("--watermark-context", type=int, default=1,
                   help="tokens hashed into the green list")
    p.add_argument("--scores", metavar="FILE",
                   help="write one row per candidate document (.parquet or .jsonl): its "
                        "0-based index, every detector score, whether it is flagged, the "
                        "occurrence log-likelihood ratio")
    p.add_argument("--executor", default="local",
                   help="audit the candidates in parallel: local (process pool) or ray")
    p.add_argument("--workers", type=int, default=1, help="parallel candidates (default 1)")
    p.add_argument("--address", help="Ray cluster address (default: start a local one)")
    p.add_argument("--fail-on-alert", action="store_true",
                   help=f"exit with code {EXIT_ALERT} when any signal is at alert")
    p.add_argument("--overwrite", action="store_true", help="replace an audit already in DIR")
    p.add_argument("--calibrate", metavar="STUDY",
                   help="run the calibration study file instead (see "
                        "studies/audit_calibration.toml)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return p


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text)


def _run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from .calibration_study import run as calibrate
    from .core import audit
    from .output import check_scores_path, write_audit, write_scores

    out = args.out or DEFAULT_OUT
    if args.calibrate:
        if args.candidates or args.reference:
            raise UserError("--calibrate builds its own candidates and reference; give no "
                            "CANDIDATE or --reference with it")
        table = calibrate(args.calibrate, out, overwrite=args.overwrite)
        for row in table["mixtures"]:
            _say(args, f"alpha {row['alpha']:.2f}: estimate {row['estimate']:.3f} "
                       f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}]"
                       f"{'' if row['covered'] else '  NOT COVERED'}")
        for row in table["generations"]:
            _say(args, f"generation {row['generation']}: severity {row['severity']} "
                       f"({row['verdict']})")
        _say(args, f"wrote {out}/calibration.json, audit.json and audit.html")
        return 0
    if not args.candidates:
        raise UserError("give at least one CANDIDATE corpus to audit (or --calibrate STUDY)")
    if not args.reference:
        raise UserError("give the human reference with --reference HUMAN (a file, glob, "
                        "'embedded' or hf:NAME)")
    if args.scores:
        check_scores_path(args.scores)
    watermark = None
    if args.watermark_key is not None:
        from ..curation import Watermark
        watermark = Watermark(gamma=args.watermark_gamma, context_width=args.watermark_context,
                              key=args.watermark_key)
    result = audit(args.candidates, args.reference,
                   settings=from_arguments(args, watermark=watermark),
                   executor=args.executor, workers=args.workers, address=args.address)
    paths = write_audit(result, out, args.format, overwrite=args.overwrite)
    if args.scores:
        paths.append(write_scores(result, args.scores))
    for cand in result.candidates:
        worst = [n for n, s in cand.all_signals().items() if s.verdict != "ok"]
        _say(args, f"{cand.name}: {cand.verdict}"
                   + (f" ({', '.join(worst)})" if worst else "")
                   + (f"; {len(cand.caveats)} caveat(s)" if cand.caveats else ""))
    _say(args, "wrote " + ", ".join(map(str, paths)))
    if args.fail_on_alert and result.verdict == "alert":
        print(f"modelcollapse: audit: a signal is at alert (exit code {EXIT_ALERT})",
              file=sys.stderr)
        return EXIT_ALERT
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Run ``modelcollapse audit`` for parsed ``args`` and return the exit code; the main
    command line (:func:`modelcollapse.cli.main`) turns user errors into one sentence and
    exit code 2."""
    return _run(args)
