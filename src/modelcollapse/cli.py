"""The command line: ``modelcollapse run | sweep | query | report | list | audit | models``.

Every user mistake ends in one sentence on stderr and exit code 2; results already on disk
are never overwritten by a failed or different run.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any

from .errors import UserError


def parse_value(text: str) -> Any:
    """A --set value: a TOML literal (number, bool, list, quoted string) or a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_sets(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects key=value; got '{item}'")
        params[key.strip()] = parse_value(value.strip())
    return params


def _add_run_options(r: argparse.ArgumentParser) -> None:
    r.add_argument("--family", help="model family (see `modelcollapse list`)")
    r.add_argument("--policy", help="policy building each training set")
    r.add_argument("--n-samples", type=int, help="data per generation (default: the family's)")
    r.add_argument("--generations", type=int, help="number of generations, including generation 0")
    r.add_argument("--replicates", type=int, help="independent chains")
    r.add_argument("--seed", type=int, help="study seed")
    r.add_argument("--metrics", help="comma-separated metric names (default: all that apply)")
    r.add_argument("--corpus", help="text families: 'embedded' (default), a file or glob "
                   "(.txt/.jsonl/.csv/.parquet, .gz/.zst), or hf:NAME[:CONFIG]; image "
                   "families: 'digits' (default), a folder of PNG/JPEG images (one subfolder "
                   "per class) or hf:NAME")
    r.add_argument("--text-field", help="text families: the field holding the text in "
                   ".jsonl/.csv/.parquet/hf records (default: text)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a family, policy or loop parameter; a [list] sweeps it")
    r.add_argument("--out", help="result folder (default: runs/<study name>)")
    r.add_argument("--executor", default="local", help="local (process pool) or ray")
    r.add_argument("--workers", type=int, default=1, help="parallel cells (default 1)")
    r.add_argument("--address", help="Ray cluster address (default: start a local one)")
    r.add_argument("--paired", action="store_true", default=None,
                   help="cells that differ only in policy share generation 0 and the real data")
    r.add_argument("--extend", action="store_true",
                   help="--out holds this run with fewer replicates or generations: compute "
                        "only the new ones (stored values stay as they are)")
    r.add_argument("--new-folder", action="store_true",
                   help="if --out holds a different run, write to the next free OUT-2, OUT-3, ...")
    r.add_argument("--mlflow", nargs="?", const="", metavar="URI",
                   help="log each cell as an MLflow run (default store: OUT/mlruns)")
    r.add_argument("--no-plots", action="store_true", help="skip writing PNG plots")
    r.add_argument("--quiet", action="store_true", help="no progress bar or summary")


class _ArgumentError(Exception):
    """A command-line syntax error: reported in one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse without the usage block on errors: one sentence, exit code 2 (``--help``
    still prints the usage)."""

    def error(self, message: str):  # type: ignore[override]
        raise _ArgumentError(f"{message} (see `{self.prog} --help`)")


def _say(message: str) -> None:
    """One line on stderr, whatever the text holds (a lone surrogate from a hostile file
    is shown escaped rather than crashing the print)."""
    text = f"modelcollapse: error: {message}"
    print(text.encode("utf-8", "backslashreplace").decode("utf-8"), file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="modelcollapse", description=__doc__.splitlines()[0])
    p.add_argument("--plugin", action="append", default=[], metavar="FILE_OR_MODULE",
                   help="import user code that registers families, metrics, policies, curation "
                        "blocks, overlays or audit signals (repeatable; see examples/plugins)")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a study file or one setting given by flags")
    r.add_argument("study", nargs="?", help="a study TOML file (flags below override it)")
    _add_run_options(r)
    s = sub.add_parser("sweep", help="run (or resume) a study file's grid, in parallel if asked")
    s.add_argument("study", help="a study TOML file")
    _add_run_options(s)
    q = sub.add_parser("query", help="SQL (DuckDB) over a run folder: views metrics and cells")
    q.add_argument("folder")
    q.add_argument("sql")
    q.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    rep = sub.add_parser("report", help="write DIR/report.html, one self-contained page")
    rep.add_argument("folder")
    sub.add_parser("list", help="list families, policies, metrics and parameters")
    from .audit.cli import add_parser as add_audit_parser
    add_audit_parser(sub)
    from .pretrained.cli import add_parser as add_models_parser
    add_models_parser(sub)
    return p


def _free_folder(out: Path, study) -> Path:
    """``out`` itself when it is new or holds this study, else the next free OUT-k."""
    from .runs.store import RunStore
    k = 1
    candidate = out
    while RunStore(candidate).holds_other(study):
        k += 1
        candidate = out.with_name(f"{out.name}-{k}")
    return candidate


def cmd_run(args: argparse.Namespace) -> int:
    from .api import make_study, run_study
    overrides = {"family": args.family, "policy": args.policy, "n_samples": args.n_samples,
                 "generations": args.generations, "replicates": args.replicates,
                 "seed": args.seed, "paired": args.paired, "params": parse_sets(args.set)}
    for flag, key in ((args.corpus, "corpus"), (args.text_field, "text_field")):
        if flag is not None:
            overrides["params"][key] = flag
    if args.metrics:
        overrides["metrics"] = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if args.study is None and args.family is None:
        raise UserError("give a study file or --family (see `modelcollapse list`)")
    study = make_study(args.study, **overrides)
    if args.study is None:
        study.name = f"{study.cells[0].family}-{study.cells[0].policy}"
    out = Path(args.out) if args.out else Path("runs") / study.name
    if args.new_folder:
        chosen = _free_folder(out, study)
        if chosen != out and not args.quiet:
            print(f"{out} holds a different run; writing to {chosen}")
        out = chosen
    if args.extend and args.new_folder:
        raise UserError("--extend grows the run in --out; it cannot go with --new-folder")
    result = run_study(study, out, quiet=args.quiet, plots=not args.no_plots,
                       executor=args.executor, workers=args.workers, address=args.address,
                       extend=args.extend)
    if args.mlflow is not None and result.ran:
        from .runs.mlflow_log import default_uri, log_cells
        tables = {k: result.metrics[result.metrics.cell == k] for k in result.ran}
        log_cells(study, tables, result.ran, args.mlflow or default_uri(out))
    if not args.quiet:
        print(f"{out}: {len(study.cells)} cell(s), {len(result.ran)} run, "
              f"{len(result.skipped)} already done; {len(result.metrics):,} metric rows in "
              f"{out / 'metrics.parquet'}")
        if result.plots:
            print(f"plots: {out / 'plots'} ({len(result.plots)} PNG files, overview.png first)")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from .runs.query import query
    df = query(args.folder, args.sql)
    print(df.to_csv(index=False) if args.csv else df.to_string(index=False))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report.html import write_report
    path = write_report(args.folder)
    print(f"wrote {path}")
    return 0


def cmd_list() -> int:
    from .catalog import FAMILIES, METRICS, POLICIES
    from .runs.config import LoopParams, fields_of

    def params(cls: type) -> str:
        import dataclasses
        return ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls))

    from .capabilities import describe, provided, satisfies

    print("families (--family); what applies is derived from each family's capabilities:")
    for name, cls in FAMILIES.items():
        print(f"  {name:<20} {cls.description}")
        print(f"  {'':<20} params: {params(cls.Params)}")
        print(f"  {'':<20} provides: {', '.join(c.label for c in provided(cls)) or '-'}")
        pols = [p for p, pcls in POLICIES.items() if satisfies(cls, pcls.requires)]
        print(f"  {'':<20} policies: {', '.join(pols)}")
        mets = [m for m, mt in METRICS.items()
                if mt.implementation(cls) is not None and not mt.policy_requires]
        print(f"  {'':<20} metrics: {', '.join(mets)}")
    print("\npolicies (--policy):")
    for name, cls in POLICIES.items():
        print(f"  {name:<20} {cls.description}")
        if fields_of(cls.Params):
            print(f"  {'':<20} params: {params(cls.Params)}")
    from .curation.pipeline import BLOCKS
    print("\ncuration blocks (params.pipeline of policy curated, in order, e.g. "
          "\"exact_dedup, near_dedup=0.8\"):")
    for name, spec in BLOCKS.items():
        setting = f"={spec.default:g} ({spec.setting})" if spec.default is not None else ""
        needs = f"; needs {describe(spec.requires)}" if spec.requires else ""
        print(f"  {name + setting:<24} drops: {', '.join(spec.reasons)}{needs}")
    print(f"\nloop params (--set): {params(LoopParams)} (top_p is an alias of truncation)")
    print("\nmetrics (direction: which way is better; what the family must provide):")
    for name, m in METRICS.items():
        under = (f"; under a policy with {' + '.join(c.label for c in m.policy_requires)}"
                 if m.policy_requires else "")
        opt = "; opt-in: computed when named" if m.opt_in else ""
        print(f"  {name:<24} [{m.direction:<6}] {m.description}  ({m.requires}{under}{opt})")
    return 0


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it stops a run as Ctrl-C does."""


def _terminate(signum: int, frame: Any) -> None:
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except _ArgumentError as e:
        _say(str(e))
        return 2
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _dispatch(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        if args.plugin:
            from . import plugins
            plugins.add(args.plugin)
        if args.command in ("run", "sweep"):
            return cmd_run(args)
        if args.command == "query":
            return cmd_query(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "audit":
            from .audit.cli import cmd_audit
            return cmd_audit(args)
        if args.command == "models":
            from .pretrained.cli import cmd_models
            return cmd_models(args)
        return cmd_list()
    except UserError as e:
        _say(str(e))
        return 2
    except OSError as e:  # a path the user gave cannot be read or written
        where = f" {e.filename}" if e.filename else ""
        _say(f"cannot use{where}: {e.strerror or e}")
        return 2
    except KeyboardInterrupt as e:   # Ctrl-C (exit code 130) or SIGTERM (143): a clean stop
        print("modelcollapse: interrupted; finished cells are kept and a rerun resumes", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(e, _Terminated) else signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
